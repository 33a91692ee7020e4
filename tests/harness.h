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

#include "util/clock.h" /* now_ns(): the library's clock */

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

static inline void test_sleep_ms(int ms)
{
        sleep_ns((int64_t)ms * NS_PER_MS);
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

/*
 * Named cases.  A test file holds one static function per behaviour and a
 * table of them; its main hands the table to test_main, which runs every
 * case, or one (`--case NAME`, as ctest runs them: tests/CMakeLists.txt
 * registers FILE.NAME for each), or lists the names (`--list`, which the
 * case_lists test compares with the CMake list).  A failing CHECK exits
 * with the case's name on stderr.  A test that re-executes itself as a peer
 * (test_spawn) reads the child's arguments before calling test_main.
 */
struct test_case {
        const char *name;
        void (*fn)(void);
};

#define TEST_CASE(fn)                                                                              \
        {                                                                                          \
#fn, fn                                                                            \
        }
#define TEST_CASES(table) (table), sizeof(table) / sizeof((table)[0])

static const char *test_current_case;
static pid_t test_main_pid;

static inline void test_say_failed(void)
{
        /* Only the process that runs the case names it: a forked peer's
         * failure reaches it through test_reap_ok. */
        if (test_current_case && getpid() == test_main_pid)
                fprintf(stderr, "%s: FAILED\n", test_current_case);
}

static inline void test_run_case(const struct test_case *c)
{
        int64_t t0 = now_ns();

        test_current_case = c->name;
        c->fn();
        test_current_case = NULL;
        printf("%s: ok (%.2f s)\n", c->name, (double)(now_ns() - t0) / 1e9);
        fflush(stdout);
}

static inline int test_main(int argc, char **argv, const struct test_case *cases, size_t n)
{
        size_t i;

        ntbt_set_log(test_log_hook, NULL);
        test_main_pid = getpid();
        atexit(test_say_failed);
        if (argc == 2 && !strcmp(argv[1], "--list")) {
                for (i = 0; i < n; i++)
                        printf("%s\n", cases[i].name);
                return 0;
        }
        if (argc == 3 && !strcmp(argv[1], "--case")) {
                for (i = 0; i < n; i++)
                        if (!strcmp(cases[i].name, argv[2])) {
                                test_run_case(&cases[i]);
                                return 0;
                        }
                fprintf(stderr, "%s: no case named %s (--list names them)\n", argv[0], argv[2]);
                return 2;
        }
        if (argc != 1) {
                fprintf(stderr, "usage: %s [--list | --case NAME]\n", argv[0]);
                return 2;
        }
        for (i = 0; i < n; i++)
                test_run_case(&cases[i]);
        return 0;
}

#endif
