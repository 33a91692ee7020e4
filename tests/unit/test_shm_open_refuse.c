/* SPDX-License-Identifier: MIT */
/*
 * Opening a malformed device file is refused with an errno and a message
 * naming what is wrong, never a crash or an access outside the mapping (run
 * under ASan in CI).  Each file is written byte by byte from the spec.
 */
#include "../harness.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

static char dir[PATH_MAX];

struct hdr {
        const char *magic;
        uint32_t format, header_bytes, mw_count, spad_count;
        uint64_t db_valid_mask, mw_size, xlat_align, file_bytes;
        uint32_t heartbeat_ms, remote_timeout_ms;
        uint64_t window_offset;
};

/* The spec's file size: a power of two holding the header and the windows. */
static uint64_t pow2_file(uint64_t window_offset, uint32_t mw_count, uint64_t mw_size)
{
        uint64_t need = window_offset + 2ull * mw_count * mw_size, b = 1;

        while (b < need)
                b <<= 1;
        return b;
}

/* One 4 KiB window: window_offset 0x3000, 0x3000 + 2 x 4 KiB -> 32 KiB. */
static struct hdr good(void)
{
        struct hdr h = {"NTBTSHM2", 2, 0x3000, 1, 8, 0xF, 4096, 4096, 0, 100, 1000, 0x3000};

        h.file_bytes = pow2_file(h.window_offset, h.mw_count, h.mw_size);
        return h;
}

/* Write a device file with header h and `size` bytes in all. */
static const char *write_file(const char *tag, const struct hdr *h, uint64_t size)
{
        static char path[PATH_MAX + 64];
        uint8_t raw[0x50] = {0};
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, tag);
        unlink(path);
        memcpy(raw, h->magic, 8);
        test_put32(raw, 0x08, h->format);
        test_put32(raw, 0x0C, h->header_bytes);
        test_put32(raw, 0x10, h->mw_count);
        test_put32(raw, 0x14, h->spad_count);
        test_put64(raw, 0x18, h->db_valid_mask);
        test_put64(raw, 0x20, h->mw_size);
        test_put64(raw, 0x28, h->xlat_align);
        test_put64(raw, 0x30, h->file_bytes);
        test_put32(raw, 0x3C, h->heartbeat_ms);
        test_put32(raw, 0x40, h->remote_timeout_ms);
        test_put64(raw, 0x48, h->window_offset);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        CHECK(fd >= 0);
        CHECK_EQ(ftruncate(fd, (off_t)size), 0);
        CHECK_EQ(pwrite(fd, raw, size < sizeof(raw) ? size : sizeof(raw), 0),
                 size < sizeof(raw) ? size : sizeof(raw));
        close(fd);
        return path;
}

static void expect_refused(const char *tag, const struct hdr *h, uint64_t size, int err,
                           const char *word)
{
        const char *path = write_file(tag, h, size);
        char spec[PATH_MAX + 80];
        struct ntbt_dev *dev = NULL;
        struct ntbt_shm_info info = {.size = sizeof(info)};
        int ret;

        snprintf(spec, sizeof(spec), "shm:%s", path);
        test_last_log[0] = '\0';
        ret = ntbt_dev_open(spec, &dev);
        if (ret != -err)
                fprintf(stderr, "%s: open returned %d (%s), wanted -%d; log: %s\n", tag, ret,
                        strerror(-ret), err, test_last_log);
        CHECK_EQ(ret, -err);
        CHECK(dev == NULL);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: log line '%s' does not name '%s'\n", tag, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
        /* Inspection (ntbt dev show) refuses it the same way. */
        CHECK_EQ(ntbt_shm_inspect(path, &info), -err);
        unlink(path);
}

/* Opening spec fails with err, and the log says word. */
static void open_refused(const char *spec, int err, const char *word)
{
        struct ntbt_dev *dev = NULL;

        test_last_log[0] = '\0';
        CHECK_EQ(ntbt_dev_open(spec, &dev), err);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: the log said '%s', wanted '%s'\n", spec, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
}

/* A private folder for the case's files. */
static void fixture_up(void)
{
        snprintf(dir, sizeof(dir), "/tmp/ntbt-refuse-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
}

static void fixture_down(void)
{
        rmdir(dir);
}

/* A good file named tag in the folder. */
static const char *good_file(const char *tag)
{
        struct hdr h = good();

        return write_file(tag, &h, h.file_bytes);
}

/* Control: the good file opens, so the refusals below mean something. */
static void good_file_opens(void)
{
        struct ntbt_dev *dev = NULL;
        char spec[PATH_MAX + 80];
        const char *path;

        fixture_up();
        path = good_file("good");
        snprintf(spec, sizeof(spec), "shm:%s", path);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_dev_mw_count(dev), 1);
        CHECK_EQ(ntbt_dev_spad_count(dev), 8);
        ntbt_dev_close(dev);
        unlink(path);
        fixture_down();
}

/* Each header field out of its range is refused, naming the field. */
static void bad_header_refused(void)
{
        struct hdr h;

        fixture_up();
        CHECK_EQ(good().file_bytes, 32768);
        h = good(), h.magic = "NTBTSHM3";
        expect_refused("magic", &h, h.file_bytes, EINVAL, "magic");
        /* A format-1 file (an older ntbt) is named as such, with what to do. */
        h = good(), h.magic = "NTBTSHM1", h.format = 1;
        expect_refused("format1", &h, h.file_bytes, EPROTO, "create it again");
        h = good(), h.format = 3;
        expect_refused("format", &h, h.file_bytes, EPROTO, "format");
        h = good(), h.header_bytes = 0x2000;
        expect_refused("header_bytes", &h, h.file_bytes, EINVAL, "header_bytes");
        h = good();
        expect_refused("size-bigger", &h, h.file_bytes + 4096, EINVAL, "size mismatch");
        h = good();
        expect_refused("truncated", &h, h.file_bytes - 4096, EINVAL, "size mismatch");
        h = good();
        expect_refused("truncated-header", &h, 0x20, EINVAL, "truncated");
        h = good();
        expect_refused("truncated-page", &h, 0x1000, EINVAL, "truncated");
        h = good(), h.mw_count = 0;
        expect_refused("mw0", &h, 0x3000, EINVAL, "mw_count");
        h = good(), h.mw_count = 9, h.file_bytes = pow2_file(0x3000, 9, 4096);
        expect_refused("mw9", &h, h.file_bytes, EINVAL, "mw_count");
        h = good(), h.spad_count = 5;
        expect_refused("spad5", &h, h.file_bytes, EINVAL, "spad_count");
        h = good(), h.spad_count = 65;
        expect_refused("spad65", &h, h.file_bytes, EINVAL, "spad_count");
        h = good(), h.mw_size = 12288, h.file_bytes = pow2_file(0x3000, 1, 12288);
        expect_refused("mw-npow2", &h, h.file_bytes, EINVAL, "mw_size");
        h = good(), h.mw_size = 2048, h.file_bytes = pow2_file(0x3000, 1, 2048);
        expect_refused("mw-small", &h, h.file_bytes, EINVAL, "mw_size");
        h = good(), h.xlat_align = 8192;
        expect_refused("xlat-big", &h, h.file_bytes, EINVAL, "xlat_align");
        h = good(), h.db_valid_mask = 0x5;
        expect_refused("db-holes", &h, h.file_bytes, EINVAL, "db_valid_mask");
        h = good(), h.db_valid_mask = 0xFFFE;
        expect_refused("db-not-bit0", &h, h.file_bytes, EINVAL, "db_valid_mask");
        h = good(), h.db_valid_mask = 0x1;
        expect_refused("db-one-bit", &h, h.file_bytes, EINVAL, "db_valid_mask");
        h = good(), h.file_bytes = 1ull << 40;
        expect_refused("file-bytes", &h, good().file_bytes, EINVAL, "file_bytes");
        /* Format 1's size (no power of two) is not format 2's. */
        h = good(), h.file_bytes = 0x3000 + 2 * 4096;
        expect_refused("file-not-pow2", &h, h.file_bytes, EINVAL, "file_bytes");
        /* Windows must start at the first multiple of mw_size past the header. */
        h = good(), h.mw_size = 16384, h.xlat_align = 4096, h.window_offset = 0x3000;
        h.file_bytes = pow2_file(16384, 1, 16384);
        expect_refused("window-offset", &h, h.file_bytes, EINVAL, "window_offset");
        h = good(), h.heartbeat_ms = 9;
        expect_refused("hb-fast", &h, h.file_bytes, EINVAL, "heartbeat_ms");
        h = good(), h.heartbeat_ms = 10001, h.remote_timeout_ms = 60000;
        expect_refused("hb-slow", &h, h.file_bytes, EINVAL, "heartbeat_ms");
        h = good(), h.remote_timeout_ms = 199;
        expect_refused("tmo-short", &h, h.file_bytes, EINVAL, "remote_timeout_ms");
        h = good(), h.remote_timeout_ms = 60001;
        expect_refused("tmo-long", &h, h.file_bytes, EINVAL, "remote_timeout_ms");
        fixture_down();
}

/* A FIFO at the path neither blocks the open nor is accepted. */
static void fifo_refused(void)
{
        char spec[PATH_MAX + 80];
        char link[PATH_MAX + 64];

        fixture_up();
        snprintf(link, sizeof(link), "%s/fifo", dir);
        CHECK_EQ(mkfifo(link, 0600), 0);
        snprintf(spec, sizeof(spec), "shm:%s", link);
        open_refused(spec, -EINVAL, "not a regular file");
        unlink(link);
        fixture_down();
}

/* A symlink to a good file is refused (O_NOFOLLOW). */
static void symlink_refused(void)
{
        char spec[PATH_MAX + 80];
        const char *path;
        char link[PATH_MAX + 64];

        fixture_up();
        path = good_file("target");
        snprintf(link, sizeof(link), "%s/link", dir);
        CHECK_EQ(symlink(path, link), 0);
        snprintf(spec, sizeof(spec), "shm:%s", link);
        open_refused(spec, -ELOOP, "symbolic link");
        unlink(link);
        unlink(path);
        fixture_down();
}

/* A file that others may write, or that another user owns: refused unless
 * the device string says shared=1 (issue: another local user could capture
 * or inject data). */
static void others_writable_refused(void)
{
        struct ntbt_dev *dev = NULL;
        char spec[PATH_MAX + 80];
        const char *path;

        fixture_up();
        path = good_file("groupw");
        CHECK_EQ(chmod(path, 0620), 0);
        snprintf(spec, sizeof(spec), "shm:%s", path);
        open_refused(spec, -EPERM, "the group");
        CHECK(strstr(test_last_log, "shared=1") != NULL);
        CHECK_EQ(chmod(path, 0602), 0);
        open_refused(spec, -EPERM, "others");
        snprintf(spec, sizeof(spec), "shm:%s,shared=1", path);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        ntbt_dev_close(dev);
        snprintf(spec, sizeof(spec), "pcie:%s,shared=1", path);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        ntbt_dev_close(dev);
        snprintf(spec, sizeof(spec), "shm:%s,shared=2", path);
        CHECK_EQ(ntbt_dev_open(spec, &dev), -EINVAL);
        CHECK_EQ(chmod(path, 0600), 0);
        if (geteuid() == 0) {
                CHECK_EQ(chown(path, 65534, 65534), 0);
                snprintf(spec, sizeof(spec), "shm:%s", path);
                open_refused(spec, -EPERM, "owned by uid 65534");
                snprintf(spec, sizeof(spec), "shm:%s,shared=1", path);
                CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
                ntbt_dev_close(dev);
        } else {
                printf("not root: the other-owner case is left out\n");
        }
        unlink(path);
        fixture_down();
}

/* A missing file: -ENOENT. */
static void missing_file(void)
{
        struct ntbt_dev *dev = NULL;
        char spec[PATH_MAX + 80];

        fixture_up();
        snprintf(spec, sizeof(spec), "shm:%s/none", dir);
        CHECK_EQ(ntbt_dev_open(spec, &dev), -ENOENT);
        fixture_down();
}

static const struct test_case cases[] = {
    TEST_CASE(good_file_opens), TEST_CASE(bad_header_refused),      TEST_CASE(fifo_refused),
    TEST_CASE(symlink_refused), TEST_CASE(others_writable_refused), TEST_CASE(missing_file),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
