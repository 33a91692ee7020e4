/* SPDX-License-Identifier: MIT */
/*
 * ntb_user_test DEV: drives every ioctl, mmap and file operation of the
 * ntb_user bridge (include/ntbt/ntb_user.h) with valid and invalid
 * arguments and checks each result.
 * ntb_user_test DEV removal: holds the device open, a translation set, every
 * region mapped and a WAIT asleep, prints "HOLDING", and checks what the
 * bridge promises when the NTB device goes away under it (the caller
 * unbinds it or unloads the hardware driver): the WAIT ends with ENODEV,
 * every later call fails with ENODEV, poll says POLLERR|POLLHUP, and every
 * old mapping faults (SIGBUS) instead of reaching freed memory.
 * Runs in a VM guest (tests/vm/guest/kdev.sh) on a bridge bound to
 * ntb_hw_ntbt.  Prints one line per failed check and a summary; exits 0
 * only if every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntb_user.h>

static const char *path;
static int checks, failures;

#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                checks++;                                                                          \
                if (!(cond)) {                                                                     \
                        failures++;                                                                \
                        printf("FAIL %s:%d: ", __func__, __LINE__);                                \
                        printf(__VA_ARGS__);                                                       \
                        printf("\n");                                                              \
                }                                                                                  \
        } while (0)

/* The errno of a call that should fail: 0 if it succeeded. */
static int err_of(int ret)
{
        return ret < 0 ? errno : 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int open_dev(void)
{
        return open(path, O_RDWR | O_CLOEXEC);
}

static void *map(int fd, size_t len, int prot, uint64_t off)
{
        return mmap(NULL, len, prot, MAP_SHARED, fd, (off_t)off);
}

static void test_info(int fd, struct ntbt_user_info *in)
{
        long page = sysconf(_SC_PAGESIZE);

        CHECK(ioctl(fd, NTBT_USER_INFO, in) == 0, "INFO: %s", strerror(errno));
        CHECK(in->abi == NTBT_USER_ABI, "abi %u", in->abi);
        CHECK(in->mw_count >= 1 && in->mw_count <= NTBT_USER_MAX_MW, "mw_count %u", in->mw_count);
        CHECK(in->peer_mw_count >= 1, "peer_mw_count %u", in->peer_mw_count);
        CHECK(in->spad_count >= 1, "spad_count %u", in->spad_count);
        CHECK(in->db_valid_mask != 0, "db_valid_mask 0");
        CHECK(in->status_size >= sizeof(struct ntbt_user_status) && in->status_size <= page,
              "status_size %u", in->status_size);
        CHECK(memchr(in->name, 0, sizeof(in->name)) && in->name[0], "name not terminated");
        CHECK(strcmp(in->driver, "ntb_hw_ntbt") == 0, "driver '%.32s'", in->driver);
        printf("info: %s (%s) port %u peer %u; %u/%u windows, %u scratchpads, doorbells 0x%llx\n",
               in->name, in->driver, in->port, in->peer_port, in->mw_count, in->peer_mw_count,
               in->spad_count, (unsigned long long)in->db_valid_mask);
}

static void test_second_open(void)
{
        int fd2 = open_dev();

        CHECK(fd2 < 0 && errno == EBUSY, "second open: %d (%s), want EBUSY", fd2,
              fd2 < 0 ? strerror(errno) : "opened");
        if (fd2 >= 0)
                close(fd2);
}

static void test_status_map(int fd, const struct ntbt_user_info *in)
{
        void *p = map(fd, in->status_size, PROT_READ, NTBT_USER_MMAP_STATUS);

        CHECK(p != MAP_FAILED, "status mmap: %s", strerror(errno));
        if (p != MAP_FAILED) {
                CHECK(mprotect(p, in->status_size, PROT_READ | PROT_WRITE) != 0,
                      "the status page became writable");
                munmap(p, in->status_size);
        }
        p = map(fd, in->status_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_STATUS);
        CHECK(p == MAP_FAILED, "status page mapped writable");
        if (p != MAP_FAILED)
                munmap(p, in->status_size);
        p = map(fd, 2 * (size_t)sysconf(_SC_PAGESIZE), PROT_READ, NTBT_USER_MMAP_STATUS);
        CHECK(p == MAP_FAILED, "two pages of status mapped");
        if (p != MAP_FAILED)
                munmap(p, 2 * (size_t)sysconf(_SC_PAGESIZE));
        p = map(fd, 4096, PROT_READ, (uint64_t)0x7f << NTBT_USER_MMAP_SHIFT);
        CHECK(p == MAP_FAILED && errno == EINVAL, "mmap of an unknown region: %s",
              p == MAP_FAILED ? strerror(errno) : "mapped");
}

static void test_windows(int fd, const struct ntbt_user_info *in)
{
        struct ntbt_user_mw mi = {.widx = in->mw_count};
        struct ntbt_user_mw_set ms;
        long page = sysconf(_SC_PAGESIZE);
        uint32_t idx;
        uint8_t *p;
        size_t i;

        CHECK(err_of(ioctl(fd, NTBT_USER_MW_INFO, &mi)) == EINVAL, "MW_INFO out of range");
        mi.widx = 1000;
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_INFO, &mi)) == EINVAL, "MW_INFO 1000");
        memset(&mi, 0, sizeof(mi));
        CHECK(ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0, "MW_INFO 0: %s", strerror(errno));
        CHECK(mi.out_size > 0 && mi.size_max > 0 && mi.size_align > 0 && mi.addr_align > 0,
              "window 0 geometry out %llu max %llu", (unsigned long long)mi.out_size,
              (unsigned long long)mi.size_max);
        CHECK(!(mi.flags & NTBT_USER_MW_IN_SET), "window 0 set before MW_SET");

        /* Outbound: the whole window, and nothing past it. */
        p = map(fd, mi.out_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(0));
        CHECK(p != MAP_FAILED, "outbound mmap: %s", strerror(errno));
        if (p != MAP_FAILED) {
                memset(p, 0x5a, 64);
                __atomic_thread_fence(__ATOMIC_SEQ_CST); /* mfence drains WC buffers too */
                CHECK(p[63] == 0x5a, "outbound read-back");
                munmap(p, mi.out_size);
        }
        p = map(fd, mi.out_size + (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(0));
        CHECK(p == MAP_FAILED && errno == EINVAL, "outbound mmap past the window: %s",
              p == MAP_FAILED ? strerror(errno) : "mapped");
        p = map(fd, (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(0) + mi.out_size);
        CHECK(p == MAP_FAILED, "outbound mmap starting past the window");
        p = map(fd, (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(in->peer_mw_count));
        CHECK(p == MAP_FAILED, "outbound mmap of window %u", in->peer_mw_count);
        /* Never executable, never grown past the checks by mremap. */
        p = map(fd, (size_t)page, PROT_READ | PROT_EXEC, NTBT_USER_MMAP_OUT(0));
        CHECK(p == MAP_FAILED, "an executable mapping of a window");
        p = map(fd, (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(0));
        CHECK(p != MAP_FAILED, "one page of the outbound window: %s", strerror(errno));
        if (p != MAP_FAILED) {
                void *q = mremap(p, (size_t)page, 2 * (size_t)page, MREMAP_MAYMOVE);

                CHECK(q == MAP_FAILED, "mremap grew a window mapping");
                CHECK(mprotect(p, (size_t)page, PROT_READ | PROT_EXEC) != 0,
                      "mprotect made a window mapping executable");
                munmap(q == MAP_FAILED ? p : q, q == MAP_FAILED ? (size_t)page : 2 * (size_t)page);
        }

        /* Inbound: nothing to map before MW_SET. */
        p = map(fd, (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0));
        CHECK(p == MAP_FAILED, "inbound mmap before MW_SET");

        ms = (struct ntbt_user_mw_set){.widx = in->mw_count, .size = mi.size_align};
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EINVAL, "MW_SET window out of range");
        ms = (struct ntbt_user_mw_set){.widx = 0, .size = 0};
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EINVAL, "MW_SET size 0");
        ms.size = mi.size_max + mi.size_align;
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EINVAL, "MW_SET past size_max");
        if (mi.size_align > 1) {
                ms.size = mi.size_align + 1;
                CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EINVAL, "MW_SET unaligned size");
        }
        ms = (struct ntbt_user_mw_set){.widx = 0, .pad = 1, .size = mi.size_max};
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EINVAL, "MW_SET pad != 0");
        ms.pad = 0;
        CHECK(ioctl(fd, NTBT_USER_MW_SET, &ms) == 0, "MW_SET: %s", strerror(errno));
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_SET, &ms)) == EBUSY, "MW_SET twice");
        memset(&mi, 0, sizeof(mi));
        CHECK(ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0, "MW_INFO after set");
        CHECK((mi.flags & NTBT_USER_MW_IN_SET) && mi.in_size == ms.size &&
                  mi.in_offset + mi.in_size <= mi.in_map_size && mi.in_offset % page == 0,
              "after set: flags %u in_size %llu offset %llu map %llu", mi.flags,
              (unsigned long long)mi.in_size, (unsigned long long)mi.in_offset,
              (unsigned long long)mi.in_map_size);
        p = map(fd, mi.in_map_size + (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0));
        CHECK(p == MAP_FAILED, "inbound mmap past the buffer");
        p = map(fd, mi.in_map_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0));
        CHECK(p != MAP_FAILED, "inbound mmap: %s", strerror(errno));
        if (p != MAP_FAILED) {
                uint8_t *b = p + mi.in_offset;
                int zero = 1;

                for (i = 0; i < mi.in_size; i++)
                        zero &= b[i] == 0;
                CHECK(zero, "a new inbound buffer is not zeroed");
                b[0] = 0xa5;
                CHECK(b[0] == 0xa5, "inbound write/read");
                memset(&mi, 0, sizeof(mi));
                ioctl(fd, NTBT_USER_MW_INFO, &mi);
                CHECK(mi.flags & NTBT_USER_MW_IN_MAPPED, "MW_IN_MAPPED not set while mapped");
                idx = 0;
                CHECK(err_of(ioctl(fd, NTBT_USER_MW_CLEAR, &idx)) == EBUSY,
                      "MW_CLEAR while mapped");
                munmap(p, mi.in_map_size);
        }
        idx = in->mw_count;
        CHECK(err_of(ioctl(fd, NTBT_USER_MW_CLEAR, &idx)) == EINVAL, "MW_CLEAR out of range");
        idx = 0;
        CHECK(ioctl(fd, NTBT_USER_MW_CLEAR, &idx) == 0, "MW_CLEAR: %s", strerror(errno));
        memset(&mi, 0, sizeof(mi));
        CHECK(ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0 && !(mi.flags & NTBT_USER_MW_IN_SET) &&
                  mi.in_size == 0,
              "after clear: flags %u in_size %llu", mi.flags, (unsigned long long)mi.in_size);
        p = map(fd, (size_t)page, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0));
        CHECK(p == MAP_FAILED, "inbound mmap after MW_CLEAR");
}

static void test_spads(int fd, const struct ntbt_user_info *in)
{
        struct ntbt_user_spad sp = {.idx = in->spad_count};

        CHECK(err_of(ioctl(fd, NTBT_USER_SPAD_READ, &sp)) == EINVAL, "SPAD_READ out of range");
        CHECK(err_of(ioctl(fd, NTBT_USER_SPAD_WRITE, &sp)) == EINVAL, "SPAD_WRITE out of range");
        CHECK(err_of(ioctl(fd, NTBT_USER_PEER_SPAD_READ, &sp)) == EINVAL,
              "PEER_SPAD_READ out of range");
        CHECK(err_of(ioctl(fd, NTBT_USER_PEER_SPAD_WRITE, &sp)) == EINVAL,
              "PEER_SPAD_WRITE out of range");
        sp = (struct ntbt_user_spad){.idx = in->spad_count - 1, .val = 0xdeadbeef};
        CHECK(ioctl(fd, NTBT_USER_SPAD_WRITE, &sp) == 0, "SPAD_WRITE: %s", strerror(errno));
        sp.val = 0;
        CHECK(ioctl(fd, NTBT_USER_SPAD_READ, &sp) == 0 && sp.val == 0xdeadbeef,
              "SPAD_READ gave 0x%x", sp.val);
        sp.val = 0;
        CHECK(ioctl(fd, NTBT_USER_SPAD_WRITE, &sp) == 0, "SPAD_WRITE 0");
        sp.val = 0x12345678;
        CHECK(ioctl(fd, NTBT_USER_PEER_SPAD_WRITE, &sp) == 0, "PEER_SPAD_WRITE: %s",
              strerror(errno));
        CHECK(ioctl(fd, NTBT_USER_PEER_SPAD_READ, &sp) == 0, "PEER_SPAD_READ: %s", strerror(errno));
        sp.val = 0;
        ioctl(fd, NTBT_USER_PEER_SPAD_WRITE, &sp);
}

struct waiter {
        int fd;
        struct ntbt_user_wait w;
        int err;
        int64_t ms;
};

static void *wait_thread(void *arg)
{
        struct waiter *wt = arg;
        int64_t t0 = now_ms();

        wt->err = err_of(ioctl(wt->fd, NTBT_USER_WAIT, &wt->w));
        wt->ms = now_ms() - t0;
        return NULL;
}

static void test_doorbells(int fd, const struct ntbt_user_info *in)
{
        const struct ntbt_user_status *st =
            map(fd, in->status_size, PROT_READ, NTBT_USER_MMAP_STATUS);
        uint64_t bad = ~in->db_valid_mask, one = in->db_valid_mask & -in->db_valid_mask;
        struct ntbt_user_wait w;
        struct waiter wt;
        pthread_t th;
        int64_t t0;

        if (st == MAP_FAILED) {
                CHECK(0, "status mmap: %s", strerror(errno));
                return;
        }
        if (bad) {
                CHECK(err_of(ioctl(fd, NTBT_USER_DB_CLEAR, &bad)) == EINVAL, "DB_CLEAR bad bits");
                CHECK(err_of(ioctl(fd, NTBT_USER_DB_SET_MASK, &bad)) == EINVAL,
                      "DB_SET_MASK bad bits");
                CHECK(err_of(ioctl(fd, NTBT_USER_DB_CLEAR_MASK, &bad)) == EINVAL,
                      "DB_CLEAR_MASK bad bits");
                CHECK(err_of(ioctl(fd, NTBT_USER_PEER_DB_SET, &bad)) == EINVAL,
                      "PEER_DB_SET bad bits");
        }
        CHECK(ioctl(fd, NTBT_USER_DB_SET_MASK, &one) == 0, "DB_SET_MASK: %s", strerror(errno));
        CHECK(st->db_mask & one, "db_mask not in the status page");
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR_MASK, &one) == 0, "DB_CLEAR_MASK");
        CHECK(!(st->db_mask & one), "db_mask not cleared");
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR, &in->db_valid_mask) == 0, "DB_CLEAR all");

        w = (struct ntbt_user_wait){
            .db_bits = one, .timeout_ns = 1, .kick_seq = st->kick_seq, .pad = 1};
        CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == EINVAL, "WAIT pad != 0");
        w.pad = 0;
        w.flags = 0x80;
        CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == EINVAL, "WAIT unknown flag");
        w.flags = 0;
        w.db_bits = bad;
        if (bad)
                CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == EINVAL, "WAIT bad bits");
        w.db_bits = one;
        w.timeout_ns = 100 * 1000000LL;
        t0 = now_ms();
        CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == ETIMEDOUT, "WAIT did not time out");
        CHECK(now_ms() - t0 >= 90, "WAIT returned after %lld ms of 100",
              (long long)(now_ms() - t0));
        w.kick_seq = st->kick_seq + 1;
        CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == EINTR, "WAIT with a stale kick_seq");

        /* A kick ends a wait with no timeout. */
        wt = (struct waiter){.fd = fd,
                             .w = {.db_bits = one, .timeout_ns = -1, .kick_seq = st->kick_seq}};
        pthread_create(&th, NULL, wait_thread, &wt);
        usleep(200 * 1000);
        CHECK(ioctl(fd, NTBT_USER_KICK) == 0, "KICK: %s", strerror(errno));
        pthread_join(th, NULL);
        CHECK(wt.err == EINTR && wt.ms >= 150, "kicked wait: %s after %lld ms", strerror(wt.err),
              (long long)wt.ms);

        /* A link change ends a WAIT_LINK wait (here: none, so it times out). */
        w = (struct ntbt_user_wait){.timeout_ns = 50 * 1000000LL,
                                    .kick_seq = st->kick_seq,
                                    .link_seq = st->link_seq,
                                    .flags = NTBT_USER_WAIT_LINK};
        CHECK(err_of(ioctl(fd, NTBT_USER_WAIT, &w)) == ETIMEDOUT, "WAIT_LINK with no change");
        w.link_seq = st->link_seq - 1;
        CHECK(ioctl(fd, NTBT_USER_WAIT, &w) == 0, "WAIT_LINK with an old link_seq: %s",
              strerror(errno));
        munmap((void *)st, in->status_size);
}

static void test_read_poll(int fd)
{
        struct ntbt_user_event ev;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        char small[4];
        int i, fl = fcntl(fd, F_GETFL);

        CHECK(err_of((int)read(fd, small, sizeof(small))) == EINVAL, "read of 4 bytes");
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        for (i = 0; i < 10 && read(fd, &ev, sizeof(ev)) == sizeof(ev); i++)
                ; /* the link events since open */
        CHECK(i < 10, "read never runs dry");
        CHECK(err_of((int)read(fd, &ev, sizeof(ev))) == EAGAIN, "non-blocking read: want EAGAIN");
        CHECK(poll(&pf, 1, 0) == 0, "poll reports an event with none pending");
        fcntl(fd, F_SETFL, fl);
        CHECK(err_of(ioctl(fd, _IO(NTBT_USER_IOC, 0x7f))) == ENOTTY, "unknown ioctl");
        CHECK(err_of(ioctl(fd, _IOW('x', 1, int), &i)) == ENOTTY, "foreign ioctl");
}

/* close() while another thread sleeps in a doorbell wait: the wait ends on
 * its own terms and the device can be opened again afterwards. */
static void test_close_while_waiting(void)
{
        int fd = open_dev();
        struct waiter wt = {.fd = fd, .w = {.db_bits = 1, .timeout_ns = 500 * 1000000LL}};
        pthread_t th;

        CHECK(fd >= 0, "open: %s", strerror(errno));
        if (fd < 0)
                return;
        {
                struct ntbt_user_status *st = map(fd, 4096, PROT_READ, NTBT_USER_MMAP_STATUS);

                if (st != MAP_FAILED) {
                        wt.w.kick_seq = st->kick_seq;
                        munmap(st, 4096);
                }
        }
        pthread_create(&th, NULL, wait_thread, &wt);
        usleep(100 * 1000);
        close(fd);
        pthread_join(th, NULL);
        CHECK(wt.err == ETIMEDOUT || wt.err == EINTR, "wait across close: %s", strerror(wt.err));
        fd = open_dev();
        CHECK(fd >= 0, "open after close-while-waiting: %s", strerror(errno));
        if (fd >= 0)
                close(fd);
}

/* A process that dies holding a translation, a mapping and the link. */
static void test_process_death(void)
{
        struct ntbt_user_mw mi = {0};
        pid_t pid = fork();
        int st = 0, fd;

        if (pid == 0) {
                struct ntbt_user_mw_set ms = {.widx = 0};
                struct ntbt_user_mw m = {0};
                int cfd = open_dev();

                if (cfd < 0 || ioctl(cfd, NTBT_USER_MW_INFO, &m))
                        _exit(2);
                ms.size = m.size_max;
                if (ioctl(cfd, NTBT_USER_MW_SET, &ms) || ioctl(cfd, NTBT_USER_MW_INFO, &m))
                        _exit(3);
                if (map(cfd, m.in_map_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0)) ==
                    MAP_FAILED)
                        _exit(4);
                ioctl(cfd, NTBT_USER_LINK_ENABLE);
                raise(SIGKILL);
                _exit(5);
        }
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child ended with status 0x%x", st);
        fd = open_dev();
        CHECK(fd >= 0, "open after the holder was killed: %s", strerror(errno));
        if (fd < 0)
                return;
        CHECK(ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0 && !(mi.flags & NTBT_USER_MW_IN_SET),
              "the dead process's translation survived (flags %u)", mi.flags);
        /* Its buffer was given back: window 0 can be set up again. */
        {
                struct ntbt_user_mw_set ms = {.widx = 0, .size = mi.size_max};
                uint32_t idx = 0;

                CHECK(ioctl(fd, NTBT_USER_MW_SET, &ms) == 0,
                      "MW_SET after the holder was killed: %s", strerror(errno));
                CHECK(ioctl(fd, NTBT_USER_MW_CLEAR, &idx) == 0, "MW_CLEAR: %s", strerror(errno));
        }
        close(fd);
}

/* Does touching p kill a child with SIGBUS (the mapping was torn down)? */
static int faults(volatile uint8_t *p, int write)
{
        pid_t pid = fork();
        int st = 0;

        if (pid == 0) {
                if (write)
                        p[0] = 1;
                else
                        (void)p[0];
                _exit(0);
        }
        waitpid(pid, &st, 0);
        return WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS;
}

static int test_removal(void)
{
        struct ntbt_user_info in = {0};
        struct ntbt_user_mw mi = {0};
        struct ntbt_user_mw_set ms = {0};
        struct ntbt_user_event ev;
        struct ntbt_user_wait w;
        const struct ntbt_user_status *st;
        struct pollfd pf;
        uint8_t *out, *inb;
        int fd = open_dev(), ret;

        CHECK(fd >= 0, "open: %s", strerror(errno));
        if (fd < 0)
                return 1;
        CHECK(ioctl(fd, NTBT_USER_INFO, &in) == 0 && ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0,
              "INFO: %s", strerror(errno));
        ms.size = mi.size_max;
        CHECK(ioctl(fd, NTBT_USER_MW_SET, &ms) == 0 && ioctl(fd, NTBT_USER_MW_INFO, &mi) == 0,
              "MW_SET: %s", strerror(errno));
        st = map(fd, in.status_size, PROT_READ, NTBT_USER_MMAP_STATUS);
        out = map(fd, mi.out_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_OUT(0));
        inb = map(fd, mi.in_map_size, PROT_READ | PROT_WRITE, NTBT_USER_MMAP_IN(0));
        CHECK(st != MAP_FAILED && out != MAP_FAILED && inb != MAP_FAILED, "mmap: %s",
              strerror(errno));
        if (st == MAP_FAILED || out == MAP_FAILED || inb == MAP_FAILED)
                return 1;
        printf("HOLDING\n");
        fflush(stdout);
        w = (struct ntbt_user_wait){.db_bits = 1, .timeout_ns = -1, .kick_seq = st->kick_seq};
        ret = ioctl(fd, NTBT_USER_WAIT, &w);
        CHECK(ret < 0 && errno == ENODEV, "WAIT across the removal: %d (%s)", ret, strerror(errno));
        CHECK(err_of(ioctl(fd, NTBT_USER_INFO, &in)) == ENODEV, "INFO after the removal");
        CHECK(err_of(ioctl(fd, NTBT_USER_KICK)) == ENODEV, "KICK after the removal");
        CHECK(err_of((int)read(fd, &ev, sizeof(ev))) == ENODEV, "read after the removal");
        pf = (struct pollfd){.fd = fd, .events = POLLIN};
        CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & (POLLERR | POLLHUP)),
              "poll after the removal: revents 0x%x", pf.revents);
        CHECK(map(fd, 4096, PROT_READ, NTBT_USER_MMAP_STATUS) == MAP_FAILED && errno == ENODEV,
              "mmap after the removal");
        CHECK(faults((volatile uint8_t *)st, 0), "the status page is still readable");
        CHECK(faults(out, 1), "the outbound window is still mapped");
        CHECK(faults(inb + mi.in_offset, 1), "the inbound buffer is still mapped");
        close(fd);
        printf("ntb_user_test removal: %d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
}

static double cpu_seconds(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* One event by read() (blocking unless the file is O_NONBLOCK). */
static int next_event(int fd, struct ntbt_user_event *ev)
{
        ssize_t n = read(fd, ev, sizeof(*ev));

        return n == (ssize_t)sizeof(*ev) ? 0 : -1;
}

static int test_events(void)
{
        struct ntbt_user_info in = {0};
        struct ntbt_user_event ev = {0};
        struct ntbt_user_spad sp;
        const struct ntbt_user_status *st;
        struct pollfd pf;
        uint64_t bits;
        double cpu;
        int fd = open_dev(), i, n;

        CHECK(fd >= 0, "open: %s", strerror(errno));
        if (fd < 0)
                return 1;
        CHECK(ioctl(fd, NTBT_USER_INFO, &in) == 0, "INFO: %s", strerror(errno));
        st = map(fd, in.status_size, PROT_READ, NTBT_USER_MMAP_STATUS);
        if (st == MAP_FAILED)
                return 1;
        CHECK(ioctl(fd, NTBT_USER_LINK_ENABLE) == 0, "LINK_ENABLE: %s", strerror(errno));
        /* The link comes up as a read() event (the peer has enabled too). */
        for (i = 0; i < 20 && !ev.link_up; i++)
                if (next_event(fd, &ev))
                        break;
        CHECK(ev.link_up && st->link_up, "no link-up event (link_up %u)", ev.link_up);
        printf("EVENTS-READY\n");
        fflush(stdout);

        /* 1: the host rings bit 0; poll() reports it. */
        pf = (struct pollfd){.fd = fd, .events = POLLIN};
        n = poll(&pf, 1, 60000);
        CHECK(n == 1 && (pf.revents & POLLIN), "poll for the first ring: %d", n);
        CHECK(next_event(fd, &ev) == 0 && (ev.db & 1), "the first ring's event: db 0x%llx",
              (unsigned long long)ev.db);
        sp = (struct ntbt_user_spad){.idx = 3};
        CHECK(ioctl(fd, NTBT_USER_SPAD_READ, &sp) == 0 && sp.val == 0x1234,
              "the host's scratchpad write: 0x%x", sp.val);
        bits = 1;
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR, &bits) == 0 && !(st->db & 1), "DB_CLEAR 1");
        printf("EVENTS-GOT 0x1 (poll)\n");
        fflush(stdout);

        /* 2: bit 1, by a blocking read(). */
        do
                CHECK(next_event(fd, &ev) == 0, "read: %s", strerror(errno));
        while (!(ev.db & 2) && !failures);
        bits = 2;
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR, &bits) == 0, "DB_CLEAR 2");
        printf("EVENTS-GOT 0x2 (read)\n");
        fflush(stdout);

        /* 3: bit 2 masked: its ring wakes nobody and costs no CPU, stays
         * pending, and is reported once unmasked. */
        bits = 4;
        CHECK(ioctl(fd, NTBT_USER_DB_SET_MASK, &bits) == 0, "DB_SET_MASK 4");
        printf("EVENTS-MASKED\n");
        fflush(stdout);
        cpu = cpu_seconds();
        /* The host rings, then sets our scratchpad 5: the ring is in. */
        sp = (struct ntbt_user_spad){.idx = 5};
        for (i = 0; i < 3000 && sp.val != 1; i++) {
                usleep(10000);
                ioctl(fd, NTBT_USER_SPAD_READ, &sp);
        }
        CHECK(sp.val == 1, "the host never said it rang the masked bit");
        pf = (struct pollfd){.fd = fd, .events = POLLIN};
        n = poll(&pf, 1, 500);
        CHECK(n == 0, "poll woke for a masked doorbell (revents 0x%x)", pf.revents);
        cpu = cpu_seconds() - cpu;
        CHECK(cpu < 0.3, "waiting on a masked doorbell took %.3f s of CPU", cpu);
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR_MASK, &bits) == 0, "DB_CLEAR_MASK 4");
        pf = (struct pollfd){.fd = fd, .events = POLLIN};
        n = poll(&pf, 1, 5000);
        CHECK(n == 1 && next_event(fd, &ev) == 0 && (ev.db & 4),
              "the unmasked ring: poll %d, db 0x%llx", n, (unsigned long long)ev.db);
        CHECK(ioctl(fd, NTBT_USER_DB_CLEAR, &bits) == 0, "DB_CLEAR 4");
        printf("EVENTS-GOT 0x4 (unmasked) cpu %.3f s\n", cpu);

        /* 4: to the peer: a scratchpad and a doorbell. */
        sp = (struct ntbt_user_spad){.idx = 4, .val = 0xbeef};
        CHECK(ioctl(fd, NTBT_USER_PEER_SPAD_WRITE, &sp) == 0, "PEER_SPAD_WRITE");
        bits = 8;
        CHECK(ioctl(fd, NTBT_USER_PEER_DB_SET, &bits) == 0, "PEER_DB_SET 8");
        printf("EVENTS-SENT\n");
        fflush(stdout);
        /* Hold the port until the host has read them (it says so in our
         * scratchpad 6): the next step's handshake rewrites its scratchpads. */
        sp = (struct ntbt_user_spad){.idx = 6};
        for (i = 0; i < 6000 && sp.val != 0xacc; i++) {
                usleep(10000);
                ioctl(fd, NTBT_USER_SPAD_READ, &sp);
        }
        CHECK(sp.val == 0xacc, "the host never said it read scratchpad 4 and doorbell 8");
        printf("ntb_user_test events: %d checks, %d failed\n", checks, failures);
        printf("EVENTS-DONE\n");
        fflush(stdout);
        close(fd);
        return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
        struct ntbt_user_info in;
        int fd;

        if (argc == 3 && !strcmp(argv[2], "events")) {
                path = argv[1];
                return test_events();
        }
        if (argc == 3 && !strcmp(argv[2], "removal")) {
                path = argv[1];
                return test_removal();
        }
        if (argc != 2) {
                fprintf(stderr, "usage: ntb_user_test /dev/ntbt-userN [removal|events]\n");
                return 2;
        }
        path = argv[1];
        fd = open_dev();
        if (fd < 0) {
                printf("FAIL: open %s: %s\n", path, strerror(errno));
                return 1;
        }
        memset(&in, 0, sizeof(in));
        test_info(fd, &in);
        test_second_open();
        test_status_map(fd, &in);
        test_windows(fd, &in);
        test_spads(fd, &in);
        test_doorbells(fd, &in);
        test_read_poll(fd);
        close(fd);
        test_close_while_waiting();
        test_process_death();
        printf("ntb_user_test: %d checks, %d failed\n", checks, failures);
        return failures ? 1 : 0;
}
