/* SPDX-License-Identifier: MIT */
/*
 * A file made by `ntbt dev create` matches docs/spec/shm-device.md at every
 * offset.  The expected bytes are written here from the spec's tables
 * (offsets and little-endian values), not from the implementation's structs.
 */
#include "../harness.h"

#include <fcntl.h>
#include <sys/stat.h>

static uint8_t *read_all(const char *path, size_t *len)
{
        struct stat st;
        int fd = open(path, O_RDONLY);
        uint8_t *buf;
        size_t got = 0;

        CHECK(fd >= 0);
        CHECK(fstat(fd, &st) == 0);
        buf = malloc((size_t)st.st_size);
        CHECK(buf);
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                CHECK(n > 0);
                got += (size_t)n;
        }
        close(fd);
        *len = got;
        return buf;
}

static void check_file(const char *name, const char *args, uint32_t mw_count, uint32_t spad_count,
                       uint64_t db_mask, uint64_t mw_size, uint64_t xlat_align, uint32_t hb_ms,
                       uint32_t tmo_ms)
{
        char cmd[512], path[256];
        /* Spec: windows from the first multiple of mw_size at or past 0x3000;
         * the file the smallest power of two that holds them. */
        uint64_t window_offset =
            mw_size >= 0x3000 ? mw_size : (0x3000 + mw_size - 1) / mw_size * mw_size;
        uint64_t file_bytes = 1;
        uint8_t *expect, *got;
        size_t len, i;

        while (file_bytes < window_offset + 2ull * mw_count * mw_size)
                file_bytes <<= 1;
        snprintf(cmd, sizeof(cmd), "%s dev create %s %s", NTBT_BIN, name, args);
        CHECK_EQ(system(cmd), 0);
        snprintf(path, sizeof(path), "/dev/shm/ntbt-%s", name);
        got = read_all(path, &len);
        CHECK_EQ(len, file_bytes);

        expect = calloc(1, file_bytes);
        CHECK(expect);
        memcpy(expect, "NTBTSHM2", 8);
        test_put32(expect, 0x08, 2);          /* format */
        test_put32(expect, 0x0C, 0x3000);     /* header_bytes */
        test_put32(expect, 0x10, mw_count);   /* mw_count */
        test_put32(expect, 0x14, spad_count); /* spad_count */
        test_put64(expect, 0x18, db_mask);    /* db_valid_mask */
        test_put64(expect, 0x20, mw_size);    /* mw_size */
        test_put64(expect, 0x28, xlat_align); /* xlat_align */
        test_put64(expect, 0x30, file_bytes); /* file_bytes */
        test_put32(expect, 0x38, 0);          /* link_seq: nothing changed yet */
        test_put32(expect, 0x3C, hb_ms);      /* heartbeat_ms */
        test_put32(expect, 0x40, tmo_ms);     /* remote_timeout_ms */
        test_put64(expect, 0x48, window_offset);
        /* Port pages and windows: all zero (free ports, no doorbells...). */
        for (i = 0; i < len; i++) {
                if (expect[i] != got[i]) {
                        fprintf(stderr, "%s: offset 0x%zx: expected 0x%02x, got 0x%02x\n", name, i,
                                expect[i], got[i]);
                        CHECK(0);
                }
        }
        /* Mode 0600, as the spec says. */
        {
                struct stat st;
                CHECK(stat(path, &st) == 0);
                CHECK_EQ(st.st_mode & 0777, 0600);
                /* The header pages and the windows are allocated at creation
                 * (no SIGBUS on a full file system later). */
                CHECK((uint64_t)st.st_blocks * 512 >= 0x3000 + 2ull * mw_count * mw_size);
        }
        /* A second create of the same name fails with the spec's O_EXCL. */
        CHECK(system(cmd) != 0);
        CHECK_EQ(ntbt_shm_create(name, NULL), -EEXIST);
        snprintf(cmd, sizeof(cmd), "%s dev rm %s", NTBT_BIN, name);
        CHECK_EQ(system(cmd), 0);
        CHECK(access(path, F_OK) != 0);
        free(expect);
        free(got);
}

/* A refused value is named by its option and creates nothing. */
static void check_refusal(const char *args, const char *want)
{
        char cmd[512], out[512] = "";
        size_t n;
        FILE *p;

        snprintf(cmd, sizeof(cmd), "%s dev create fmt-bad-%d %s 2>&1", NTBT_BIN, (int)getpid(),
                 args);
        p = popen(cmd, "r");
        CHECK(p != NULL);
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        CHECK(pclose(p) != 0);
        if (!strstr(out, want))
                fprintf(stderr, "dev create %s said '%s', wanted '%s'\n", args, out, want);
        CHECK(strstr(out, want) != NULL);
        snprintf(cmd, sizeof(cmd), "/dev/shm/ntbt-fmt-bad-%d", (int)getpid());
        CHECK(access(cmd, F_OK) != 0);
}

/* Refused values are named by their option and create nothing. */
static void refusals_named(void)
{
        check_refusal("--mw-count 65", "--mw-count 65 is out of range");
        check_refusal("--heartbeat-ms 60001", "--heartbeat-ms 60001 is out of range");
        check_refusal("--heartbeat-ms 5", "--heartbeat-ms 5 is out of range (10-10000)");
        check_refusal("--heartbeat-ms 100 --remote-timeout-ms 150", "remote_timeout_ms");
        check_refusal("--mw-size x", "--mw-size: 'x' is not a number (4K-1G)");
}

static void default_geometry(void)
{
        char name[64];

        snprintf(name, sizeof(name), "fmt-def-%d", (int)getpid());
        check_file(name, "", 2, 16, 0xFFFF, 4ull << 20, 4096, 100, 1000);
}

static void odd_geometry(void)
{
        char name[64];

        snprintf(name, sizeof(name), "fmt-odd-%d", (int)getpid());
        check_file(name, "--mw-count 3 --mw-size 64K --spad-count 20 --db-bits 24 --xlat-align 8K",
                   3, 20, 0xFFFFFF, 65536, 8192, 100, 1000);
}

static void small_windows_timing(void)
{
        char name[64];

        snprintf(name, sizeof(name), "fmt-8k-%d", (int)getpid());
        check_file(name, "--mw-size 8K --heartbeat-ms 50 --remote-timeout-ms 300", 2, 16, 0xFFFF,
                   8192, 4096, 50, 300);
}

static void max_geometry(void)
{
        char name[64];

        snprintf(name, sizeof(name), "fmt-max-%d", (int)getpid());
        check_file(name, "--mw-count 8 --mw-size 4K --spad-count 64 --db-bits 64", 8, 64, ~0ull,
                   4096, 4096, 100, 1000);
}

static const struct test_case cases[] = {
    TEST_CASE(refusals_named),       TEST_CASE(default_geometry), TEST_CASE(odd_geometry),
    TEST_CASE(small_windows_timing), TEST_CASE(max_geometry),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
