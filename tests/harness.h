/* SPDX-License-Identifier: MIT */
/* A tiny test harness: CHECK aborts the test with file:line and the failed expression. */
#ifndef NTBT_TESTS_HARNESS_H
#define NTBT_TESTS_HARNESS_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ntbt/ntbt.h>

/* ctest treats this exit code as "skipped" (SKIP_RETURN_CODE). */
#define TEST_SKIP 77

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: [pid %d] CHECK failed: %s\n", __FILE__, __LINE__,  \
                                (int)getpid(), #cond);                                             \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

/* CHECK that an int expression equals an expected value, printing both. */
#define CHECK_EQ(a, b)                                                                             \
        do {                                                                                       \
                long long a_ = (long long)(a), b_ = (long long)(b);                                \
                if (a_ != b_) {                                                                    \
                        fprintf(stderr, "%s:%d: [pid %d] CHECK failed: %s == %s (%lld != %lld)\n", \
                                __FILE__, __LINE__, (int)getpid(), #a, #b, a_, b_);                \
                        exit(1);                                                                   \
                }                                                                                  \
        } while (0)

static inline int64_t test_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void test_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

        nanosleep(&ts, NULL);
}

/* A device name unique to this process and tag. */
static inline const char *test_dev_name(const char *tag)
{
        static char buf[64];

        snprintf(buf, sizeof(buf), "t-%s-%d", tag, (int)getpid());
        return buf;
}

/* Keep the last library log line so tests can assert on messages.  The
 * library logs from several threads: the lock keeps the copy whole. */
static char test_last_log[512];
static pthread_mutex_t test_log_lock = PTHREAD_MUTEX_INITIALIZER;
static inline void test_log_hook(void *ctx, int level, const char *msg)
{
        (void)ctx;
        pthread_mutex_lock(&test_log_lock);
        if (getenv("NTBT_TEST_VERBOSE") || level <= NTBT_LOG_WARN)
                fprintf(stderr, "[pid %d] log(%d): %s\n", (int)getpid(), level, msg);
        snprintf(test_last_log, sizeof(test_last_log), "%s", msg);
        pthread_mutex_unlock(&test_log_lock);
}

/*
 * Start this test binary again as a child with the given arguments.  A
 * child forked from a process that already runs threads may inherit a lock
 * held by one of them (stdio's, malloc's) and TSan refuses to start threads
 * in it, so two-sided tests whose parent has threads exec a fresh child.
 */
static inline pid_t test_spawn(char *const args[])
{
        pid_t pid = fork();

        if (pid == 0) {
                execv("/proc/self/exe", args);
                _exit(127);
        }
        return pid;
}

/* Little-endian stores, for tests that write device bytes from the spec. */
static inline void test_put32(uint8_t *b, size_t off, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                b[off + i] = (uint8_t)(v >> (8 * i));
}

static inline void test_put64(uint8_t *b, size_t off, uint64_t v)
{
        test_put32(b, off, (uint32_t)v);
        test_put32(b, off + 4, (uint32_t)(v >> 32));
}

/* Wait for a child and CHECK that it exited 0. */
static inline void test_reap_ok(pid_t pid)
{
        int st = 0;

        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                fprintf(stderr, "child %d: status 0x%x\n", (int)pid, st);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

#endif
