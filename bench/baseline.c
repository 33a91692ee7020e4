/* SPDX-License-Identifier: MIT */
/*
 * The yardsticks bench/run holds ntbt against, measured the same way on the
 * same machine in the same run:
 *
 *   baseline memcpy SIZE SECS          one core copying SIZE-byte messages
 *                                      into a 4 MiB ring (ntbt's window size)
 *   baseline xcopy SIZE SECS           the same data movement as ntbt with
 *                                      nothing else: one thread copies each
 *                                      message into a 4 MiB ring, another
 *                                      copies it out (a bare SPSC ring)
 *   baseline xread SIZE SECS           xcopy whose consumer only loads one
 *                                      byte of each cache line of a message
 *                                      and copies nothing: what moving the
 *                                      lines between cores costs by itself
 *   baseline stream|seqpacket|pipe SIZE SECS
 *                                      AF_UNIX SOCK_STREAM / SOCK_SEQPACKET or
 *                                      a pipe between two processes, one-way
 *   baseline pingpong SIZE COUNT       AF_UNIX SOCK_SEQPACKET round trips
 *   baseline cacheline COUNT           two threads bouncing one cache line
 *
 * Each prints one JSON object.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
        fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
        exit(1);
}

static int cmp64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static void bench_memcpy(size_t size, double secs)
{
        size_t ring = 4u << 20, slots = ring / size ? ring / size : 1, i = 0;
        uint8_t *src = malloc(size), *dst = malloc(slots * size);
        uint64_t n = 0;
        int64_t t0, end;

        if (!src || !dst)
                die("malloc");
        memset(src, 0x5a, size);
        memset(dst, 0, slots * size);
        t0 = now_ns();
        end = t0 + (int64_t)(secs * 1e9);
        do {
                for (int k = 0; k < 64; k++, n++) {
                        memcpy(dst + i * size, src, size);
                        src[0]++; /* a new message each time */
                        if (++i == slots)
                                i = 0;
                }
        } while (now_ns() < end);
        secs = (double)(now_ns() - t0) / 1e9;
        printf("{\"kind\":\"memcpy\",\"size\":%zu,\"msgs\":%llu,\"seconds\":%.6f,"
               "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f}\n",
               size, (unsigned long long)n, secs, (double)n * size / secs, (double)n / secs);
        free(src);
        free(dst);
}

/*
 * xcopy: a single-producer single-consumer ring of SIZE-byte slots in 4 MiB.
 * head (messages written) and tail (messages taken) sit on their own lines;
 * each side keeps a cached copy of the other's index and reloads it only
 * when the ring looks full (producer) or empty (consumer).
 */
struct xring {
        uint8_t *slots;
        size_t size, n;
        _Alignas(64) uint64_t head;
        _Alignas(64) uint64_t tail;
        _Alignas(64) int stop;
        int read_only; /* xread: touch each line instead of copying out */
        uint64_t taken;
        uint8_t sum;
};

static void *xcopy_consumer(void *arg)
{
        struct xring *r = arg;
        uint8_t *out = malloc(r->size), sum = 0;
        uint64_t tail = 0, head = 0;

        if (!out)
                die("malloc");
        for (;;) {
                if (tail == head) {
                        /* Acquire: the producer's copy into these slots is visible. */
                        head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
                        if (tail == head) {
                                if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) &&
                                    tail == __atomic_load_n(&r->head, __ATOMIC_ACQUIRE))
                                        break;
                                continue;
                        }
                }
                if (r->read_only) {
                        const volatile uint8_t *in = r->slots + (tail % r->n) * r->size;

                        for (size_t i = 0; i < r->size; i += 64)
                                sum += in[i]; /* volatile: every line is fetched */
                        sum += in[r->size - 1];
                } else {
                        memcpy(out, r->slots + (tail % r->n) * r->size, r->size);
                        sum += out[0];
                }
                /* Release: our copy-out is done before the slot is reused. */
                __atomic_store_n(&r->tail, ++tail, __ATOMIC_RELEASE);
        }
        r->taken = tail;
        r->sum = sum;
        free(out);
        return NULL;
}

static void bench_xcopy(size_t size, double secs, int read_only)
{
        struct xring r = {.size = size, .read_only = read_only};
        uint8_t *src = malloc(size);
        uint64_t head = 0, tail = 0;
        int64_t t0, end;
        pthread_t t;

        r.n = (4u << 20) / size ? (4u << 20) / size : 1;
        r.slots = malloc(r.n * size);
        if (!src || !r.slots)
                die("malloc");
        memset(src, 0x5a, size);
        memset(r.slots, 0, r.n * size);
        if (pthread_create(&t, NULL, xcopy_consumer, &r))
                die("pthread_create");
        t0 = now_ns();
        end = t0 + (int64_t)(secs * 1e9);
        do {
                for (int k = 0; k < 64; k++) {
                        while (head - tail == r.n) /* Acquire: pairs with the consumer's release. */
                                tail = __atomic_load_n(&r.tail, __ATOMIC_ACQUIRE);
                        src[0] = (uint8_t)head; /* a new message each time */
                        memcpy(r.slots + (head % r.n) * size, src, size);
                        /* Release: the copy is visible before the index moves. */
                        __atomic_store_n(&r.head, ++head, __ATOMIC_RELEASE);
                }
        } while (now_ns() < end);
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        secs = (double)(now_ns() - t0) / 1e9; /* until the consumer took the last one */
        if (r.taken != head)
                die("xcopy lost messages");
        printf("{\"kind\":\"%s\",\"size\":%zu,\"msgs\":%llu,\"seconds\":%.6f,"
               "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f}\n",
               read_only ? "xread" : "xcopy", size, (unsigned long long)head, secs,
               (double)head * size / secs, (double)head / secs);
        free(src);
        free(r.slots);
}

/* Read exactly len bytes (stream) or one message (seqpacket). */
static ssize_t read_msg(int fd, uint8_t *buf, size_t len, int stream)
{
        size_t got = 0;

        if (!stream)
                return read(fd, buf, len);
        while (got < len) {
                ssize_t r = read(fd, buf + got, len - got);

                if (r <= 0)
                        return got ? (ssize_t)got : r;
                got += (size_t)r;
        }
        return (ssize_t)got;
}

static void bench_oneway(const char *kind, size_t size, double secs)
{
        int stream = strcmp(kind, "seqpacket") != 0, fds[2];
        uint8_t *buf = calloc(1, size);
        uint64_t n = 0, got = 0;
        int64_t t0, end;
        pid_t pid;
        int st;

        if (!buf)
                die("calloc");
        if (!strcmp(kind, "pipe")) {
                if (pipe(fds))
                        die("pipe");
                fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
        } else if (socketpair(AF_UNIX, stream ? SOCK_STREAM : SOCK_SEQPACKET, 0, fds)) {
                die("socketpair");
        }
        pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                uint64_t msgs = 0;

                close(fds[1]);
                while (read_msg(fds[0], buf, size, stream) == (ssize_t)size)
                        msgs++;
                /* Report the count back through the exit path: a pipe of one word. */
                _exit(msgs ? 0 : 1);
        }
        close(fds[0]);
        t0 = now_ns();
        end = t0 + (int64_t)(secs * 1e9);
        do {
                for (int k = 0; k < 16; k++, n++) {
                        size_t off = 0;

                        buf[0] = (uint8_t)n;
                        while (off < size) {
                                ssize_t w = write(fds[1], buf + off, size - off);

                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w < 0)
                                        die("write");
                                off += (size_t)w;
                        }
                }
        } while (now_ns() < end);
        close(fds[1]);
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
                die("receiver");
        got = n;
        secs = (double)(now_ns() - t0) / 1e9; /* until the receiver took the last one */
        printf("{\"kind\":\"%s\",\"size\":%zu,\"msgs\":%llu,\"seconds\":%.6f,"
               "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f}\n",
               kind, size, (unsigned long long)got, secs, (double)got * size / secs,
               (double)got / secs);
        free(buf);
}

static void bench_pingpong(size_t size, long count)
{
        int64_t *rtt = calloc((size_t)count, sizeof(*rtt));
        uint8_t *buf = calloc(1, size);
        int fds[2];
        pid_t pid;
        long i;

        if (!rtt || !buf)
                die("calloc");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds))
                die("socketpair");
        pid = fork();
        if (pid == 0) {
                ssize_t r;

                close(fds[0]);
                while ((r = read(fds[1], buf, size)) > 0)
                        if (write(fds[1], buf, (size_t)r) != r)
                                _exit(1);
                _exit(0);
        }
        close(fds[1]);
        for (i = -1000; i < count; i++) { /* 1000 warm-up round trips */
                int64_t t0 = now_ns();

                if (write(fds[0], buf, size) != (ssize_t)size ||
                    read(fds[0], buf, size) != (ssize_t)size)
                        die("pingpong");
                if (i >= 0)
                        rtt[i] = now_ns() - t0;
        }
        close(fds[0]);
        waitpid(pid, NULL, 0);
        qsort(rtt, (size_t)count, sizeof(*rtt), cmp64);
        printf("{\"kind\":\"unix_pingpong\",\"size\":%zu,\"count\":%ld,\"rtt_ns_min\":%lld,"
               "\"rtt_ns_p50\":%lld,\"rtt_ns_p99\":%lld}\n",
               size, count, (long long)rtt[0], (long long)rtt[count / 2],
               (long long)rtt[count * 99 / 100]);
        free(rtt);
        free(buf);
}

/* One cache line, two threads: each waits for the other's value, then
 * writes its own.  Round trip = two line transfers. */
static _Alignas(64) volatile uint64_t line[8];
static long pp_count;

static void *pong(void *arg)
{
        (void)arg;
        for (long i = 0; i < pp_count; i++) {
                /* Acquire/release: the line's value is the whole message. */
                while (__atomic_load_n(&line[0], __ATOMIC_ACQUIRE) != (uint64_t)(2 * i + 1))
                        ;
                __atomic_store_n(&line[0], (uint64_t)(2 * i + 2), __ATOMIC_RELEASE);
        }
        return NULL;
}

static void bench_cacheline(long count)
{
        int64_t *rtt = calloc((size_t)(count / 100 + 1), sizeof(*rtt));
        pthread_t t;
        long i, n = 0;
        int64_t t0;

        if (!rtt)
                die("calloc");
        pp_count = count;
        if (pthread_create(&t, NULL, pong, NULL))
                die("pthread_create");
        t0 = now_ns();
        for (i = 0; i < count; i++) {
                __atomic_store_n(&line[0], (uint64_t)(2 * i + 1), __ATOMIC_RELEASE);
                while (__atomic_load_n(&line[0], __ATOMIC_ACQUIRE) != (uint64_t)(2 * i + 2))
                        ;
                if (i % 100 == 99) { /* batches of 100: the clock costs as much as a trip */
                        int64_t t1 = now_ns();

                        rtt[n++] = (t1 - t0) / 100;
                        t0 = t1;
                }
        }
        pthread_join(t, NULL);
        qsort(rtt, (size_t)n, sizeof(*rtt), cmp64);
        printf("{\"kind\":\"cacheline_pingpong\",\"count\":%ld,\"rtt_ns_min\":%lld,"
               "\"rtt_ns_p50\":%lld}\n",
               count, (long long)rtt[0], (long long)rtt[n / 2]);
        free(rtt);
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        if (argc == 4 && !strcmp(argv[1], "memcpy"))
                bench_memcpy(strtoul(argv[2], NULL, 0), atof(argv[3]));
        else if (argc == 4 && !strcmp(argv[1], "xcopy"))
                bench_xcopy(strtoul(argv[2], NULL, 0), atof(argv[3]), 0);
        else if (argc == 4 && !strcmp(argv[1], "xread"))
                bench_xcopy(strtoul(argv[2], NULL, 0), atof(argv[3]), 1);
        else if (argc == 4 && (!strcmp(argv[1], "stream") || !strcmp(argv[1], "seqpacket") ||
                               !strcmp(argv[1], "pipe")))
                bench_oneway(argv[1], strtoul(argv[2], NULL, 0), atof(argv[3]));
        else if (argc == 4 && !strcmp(argv[1], "pingpong"))
                bench_pingpong(strtoul(argv[2], NULL, 0), atol(argv[3]));
        else if (argc == 3 && !strcmp(argv[1], "cacheline"))
                bench_cacheline(atol(argv[2]));
        else {
                fprintf(stderr,
                        "usage: baseline memcpy|xcopy|xread|stream|seqpacket|pipe SIZE SECS\n"
                        "       baseline pingpong SIZE COUNT\n"
                        "       baseline cacheline COUNT\n");
                return 2;
        }
        return 0;
}
