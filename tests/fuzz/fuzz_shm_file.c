/* SPDX-License-Identifier: MIT */
/*
 * (d) A device file whose bytes come from the fuzzer: the device header
 * (spec/shm-device.md "Device header"), checked by shm_hdr_parse, and the
 * two ports' registers, read by ntbt_shm_inspect and by a claim
 * (ntbt_dev_open of the file's absolute path).
 *
 * Input: the header's first 0x50 bytes (the part an opener reads), a byte
 * choosing the file's size (the header's file_bytes, off by some pages,
 * only the header bytes, or about one register page), a byte choosing what
 * to open, then both ports' registers (sizeof(struct shm_port) bytes each).
 *
 * A refused header gives a negative errno; an accepted one a geometry
 * within the spec's limits that fits the file.  Inspecting and opening the
 * file refuse and accept exactly as the check does; inspection reports the
 * registers as written; a claim takes a free port whenever one is there,
 * leaves our pid in it, and gives it back on close.
 *
 * Two things of a real file would only make the fuzzer slow, and are left
 * out: a file with no magic yet (every opener waits a second for its
 * creator) and, with remote_timeout_ms over 40 ms, a claimed port whose
 * owner an inspection or takeover would watch for that long.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ntbt/shm.h>

#include "dev/shm_regs.h"

#define PORT_BYTES   sizeof(struct shm_port)
#define MAX_FILE     (1ull << 36)
#define QUICK_TMO_MS 40u

static char dir[PATH_MAX - 32];

static void rm_dir(void)
{
        rmdir(dir);
}

static const char *scratch_dir(void)
{
        if (!dir[0]) {
                const char *tmp = getenv("TMPDIR");

                snprintf(dir, sizeof(dir), "%s/ntbt-fuzz-shm-XXXXXX", tmp && *tmp ? tmp : "/tmp");
                FUZZ_CHECK(mkdtemp(dir) != NULL);
                atexit(rm_dir);
        }
        return dir;
}

static int pow2(uint64_t v)
{
        return v && !(v & (v - 1));
}

/* Would an observer watch this port's owner (for up to remote_timeout_ms)? */
static int watched(const uint8_t *port)
{
        uint32_t state = get_le32(port), pid = get_le32(port + 4), kind = get_le32(port + 0x10);

        if (state != SHM_PORT_CLAIMED)
                return 0;
        if (kind != SHM_OWNER_PROCESS)
                return 1;
        return pid && pid <= INT_MAX && (kill((pid_t)pid, 0) == 0 || errno != ESRCH);
}

static void check_geom(const struct shm_geom *g, uint64_t file_size)
{
        uint64_t m = g->db_valid_mask;

        FUZZ_CHECK(g->mw_count >= SHM_MW_COUNT_MIN && g->mw_count <= SHM_MW_COUNT_MAX);
        FUZZ_CHECK(g->spad_count >= SHM_SPAD_MIN && g->spad_count <= SHM_SPAD_MAX);
        FUZZ_CHECK(__builtin_popcountll(m) >= SHM_DB_BITS_MIN && (m & (m + 1)) == 0);
        FUZZ_CHECK(pow2(g->mw_size) && g->mw_size >= SHM_MW_SIZE_MIN &&
                   g->mw_size <= SHM_MW_SIZE_MAX);
        FUZZ_CHECK(pow2(g->xlat_align) && g->xlat_align >= SHM_XLAT_ALIGN_MIN &&
                   g->xlat_align <= g->mw_size);
        FUZZ_CHECK(g->heartbeat_ms >= SHM_HEARTBEAT_MIN && g->heartbeat_ms <= SHM_HEARTBEAT_MAX);
        FUZZ_CHECK(g->remote_timeout_ms >= 2 * g->heartbeat_ms &&
                   g->remote_timeout_ms <= SHM_REMOTE_TMO_MAX);
        /* Registers, then windows, all inside the file. */
        FUZZ_CHECK(SHM_PORT_OFFSET(1) + PORT_BYTES <= SHM_HEADER_BYTES);
        FUZZ_CHECK(g->window_offset >= SHM_HEADER_BYTES && g->window_offset % g->mw_size == 0);
        FUZZ_CHECK(g->window_offset + 2ull * g->mw_count * g->mw_size <= g->file_bytes);
        FUZZ_CHECK(pow2(g->file_bytes) && g->file_bytes == file_size);
}

static void check_inspect(const char *path, int want, const struct shm_geom *g,
                          const uint8_t *ports)
{
        struct ntbt_shm_info info = {.size = sizeof(info)};
        int ret = ntbt_shm_inspect(path, &info), p;
        uint32_t i;

        FUZZ_CHECK(ret == want);
        if (ret)
                return;
        FUZZ_CHECK(info.format == SHM_FORMAT && info.mw_count == g->mw_count &&
                   info.spad_count == g->spad_count && info.db_valid_mask == g->db_valid_mask &&
                   info.mw_size == g->mw_size && info.xlat_align == g->xlat_align &&
                   info.file_bytes == g->file_bytes && info.window_offset == g->window_offset &&
                   info.heartbeat_ms == g->heartbeat_ms &&
                   info.remote_timeout_ms == g->remote_timeout_ms);
        for (p = 0; p < 2; p++) {
                const struct ntbt_shm_port_info *pi = &info.port[p];
                struct shm_port pt;

                memcpy(&pt, ports + p * PORT_BYTES, PORT_BYTES);
                FUZZ_CHECK(pi->state == pt.state && pi->pid == pt.pid &&
                           pi->generation == pt.generation && pi->link_enabled == pt.link_enabled &&
                           pi->owner_kind == pt.owner_kind && pi->heartbeat == pt.heartbeat &&
                           pi->db == pt.db && pi->db_mask == pt.db_mask &&
                           pi->db_seq == pt.db_seq && pi->db_sleepers == pt.db_sleepers);
                for (i = 0; i < g->spad_count; i++)
                        FUZZ_CHECK(pi->spad[i] == pt.spad[i]);
                for (i = 0; i < g->mw_count; i++)
                        FUZZ_CHECK(pi->xlat_size[i] == pt.xlat_size[i]);
                FUZZ_CHECK(pi->alive == 0 || pi->alive == 1);
                FUZZ_CHECK(!pi->alive || pi->state == SHM_PORT_CLAIMED);
        }
        FUZZ_CHECK(info.link_up ==
                   (info.port[0].alive && info.port[1].alive && info.port[0].link_enabled == 1 &&
                    info.port[1].link_enabled == 1));
}

static void check_open(const char *path, int want, const struct shm_geom *g, int port, int fd)
{
        char spec[PATH_MAX + 32];
        struct ntbt_dev *dev = NULL;
        struct shm_port pt;
        int ret, p;

        snprintf(spec, sizeof(spec), "shm:%s%s", path,
                 port < 0 ? ""
                 : port   ? ",port=1"
                          : ",port=0");
        ret = ntbt_dev_open(spec, &dev);
        if (want) {
                FUZZ_CHECK(ret == want && !dev);
                return;
        }
        FUZZ_CHECK(ret == 0 || ret == -EBUSY);
        if (ret) {
                /* Busy only if no port we could take was free. */
                for (p = 0; p < 2; p++) {
                        if (port >= 0 && p != port)
                                continue;
                        FUZZ_CHECK(pread(fd, &pt, PORT_BYTES, SHM_PORT_OFFSET(p)) ==
                                   (ssize_t)PORT_BYTES);
                        FUZZ_CHECK(pt.state != SHM_PORT_FREE);
                }
                return;
        }
        p = ntbt_dev_port(dev);
        FUZZ_CHECK(p == 0 || p == 1);
        FUZZ_CHECK(port < 0 || p == port);
        FUZZ_CHECK(ntbt_dev_mw_count(dev) == (int)g->mw_count &&
                   ntbt_dev_spad_count(dev) == (int)g->spad_count &&
                   ntbt_dev_db_valid_mask(dev) == g->db_valid_mask);
        FUZZ_CHECK(pread(fd, &pt, PORT_BYTES, SHM_PORT_OFFSET(p)) == (ssize_t)PORT_BYTES);
        FUZZ_CHECK(pt.state == SHM_PORT_CLAIMED && pt.pid == (uint32_t)getpid() &&
                   pt.owner_kind == SHM_OWNER_PROCESS && pt.link_enabled == 0);
        ntbt_dev_close(dev);
        FUZZ_CHECK(pread(fd, &pt, PORT_BYTES, SHM_PORT_OFFSET(p)) == (ssize_t)PORT_BYTES);
        FUZZ_CHECK(pt.state == SHM_PORT_FREE && pt.owner_kind == SHM_OWNER_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t raw[SHM_HDR_READ] = {0}, ports[2 * PORT_BYTES] = {0};
        size_t nhdr = size < SHM_HDR_READ ? size : SHM_HDR_READ;
        struct fz f = {data + nhdr, size - nhdr};
        uint8_t size_mode = fz_u8(&f), what = fz_u8(&f);
        int8_t delta = (int8_t)fz_u8(&f);
        uint64_t file_bytes, file_size;
        char path[PATH_MAX];
        struct shm_geom g;
        size_t n, i;
        int ret, fd, quick;

        memcpy(raw, data, nhdr);
        for (i = 0; i < sizeof(ports) && f.n; i++)
                ports[i] = fz_u8(&f);
        file_bytes = (uint64_t)get_le32(raw + 0x30) | (uint64_t)get_le32(raw + 0x34) << 32;
        switch (size_mode % 4) {
        case 0:
                file_size = file_bytes;
                break;
        case 1:
                file_size = file_bytes + (uint64_t)(int64_t)delta * 4096;
                break;
        case 2:
                file_size = nhdr;
                break;
        default:
                file_size = SHM_HEADER_BYTES + (uint64_t)(int64_t)delta * 16;
                break;
        }

        /* The check itself, on what an opener would read. */
        n = file_size < nhdr ? (size_t)file_size : nhdr;
        memset(raw + n, 0, sizeof(raw) - n);
        ret = shm_hdr_parse("fuzz", raw, n, file_size, &g);
        FUZZ_CHECK(ret == 0 || ret == -EAGAIN || ret == -EINVAL || ret == -EPROTO);
        if (ret == 0)
                check_geom(&g, file_size);
        if (ret == -EAGAIN || file_size > MAX_FILE)
                return 0;

        /* The same bytes as a file: inspect it, claim a port. */
        snprintf(path, sizeof(path), "%s/dev", scratch_dir());
        unlink(path);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(ftruncate(fd, (off_t)file_size) == 0);
        FUZZ_CHECK(pwrite(fd, raw, n, 0) == (ssize_t)n);
        for (i = 0; i < 2 && file_size >= SHM_HEADER_BYTES; i++)
                FUZZ_CHECK(pwrite(fd, ports + i * PORT_BYTES, PORT_BYTES, SHM_PORT_OFFSET(i)) ==
                           (ssize_t)PORT_BYTES);
        quick = ret || g.remote_timeout_ms <= QUICK_TMO_MS;
        if (what & 1 && (quick || (!watched(ports) && !watched(ports + PORT_BYTES))))
                check_inspect(path, ret, &g, ports);
        if (what & 6) {
                int port = (what & 6) == 2 ? 0 : (what & 6) == 4 ? 1 : -1;
                int free0 = get_le32(ports) == SHM_PORT_FREE;
                int free1 = get_le32(ports + PORT_BYTES) == SHM_PORT_FREE;

                /* A free port is taken at once; a takeover watches the owner. */
                if (quick || (port == 0 ? free0 : port == 1 ? free1 : free0 || free1))
                        check_open(path, ret, &g, port, fd);
        }
        close(fd);
        unlink(path);
        return 0;
}
