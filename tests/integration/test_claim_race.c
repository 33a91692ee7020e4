/* SPDX-License-Identifier: MIT */
/*
 * Takeover races: both ports of a device are held by processes that were
 * SIGKILLed, then several processes open the device at the same moment.
 * Exactly two of them get a port, one port each, and each still owns it
 * afterwards; the others are told the device is busy.  (A CI run once saw
 * two claimants both win the takeover of one port, so that `ntbt send`
 * failed with ENODEV: the second read the dead owner's pid after the first
 * had moved the generation on but before it wrote its own pid.)
 *
 * The window is a few instructions wide, so the rounds find it only now and
 * then; the first part holds it open on purpose: this process plays a
 * takeover winner stopped between its generation swap and its pid store,
 * as an ntbt process does it (under the claim lock), and a claimant started
 * then must wait for it and then find the port taken, not take it too.
 */
#include "../harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <ntbt/shm.h>

#include "../support/pair.h"
#include "dev/shm_regs.h"

#define ROUNDS     100
#define CONTENDERS 6

enum { R_PORT0, R_PORT1, R_BUSY, R_LOST, R_ERROR };

/* Hold port p until killed. */
static void holder(const char *name, int p, int ready_fd)
{
        struct ntbt_dev *dev = NULL;
        char spec[128];

        snprintf(spec, sizeof(spec), "shm:%s,port=%d", name, p);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(write(ready_fd, "h", 1), 1);
        for (;;)
                pause();
}

/* Wait for the start signal, open, report, and hold until told to go. */
static void contender(const char *name, int go_fd, int report_fd, int done_fd)
{
        struct ntbt_dev *dev = NULL;
        char spec[128], c, r;
        int ret;

        snprintf(spec, sizeof(spec), "shm:%s", name);
        CHECK_EQ(read(go_fd, &c, 1), 0); /* EOF: the parent closed it */
        ret = ntbt_dev_open(spec, &dev);
        if (ret == -EBUSY)
                r = R_BUSY;
        else if (ret)
                r = R_ERROR;
        else if (ntbt_dev_link_enable(dev) != 0)
                r = R_LOST; /* opened, but the port is someone else's */
        else
                r = ntbt_dev_port(dev) == 0 ? R_PORT0 : R_PORT1;
        CHECK_EQ(write(report_fd, &r, 1), 1);
        CHECK_EQ(read(done_fd, &c, 1), 0);
        /* Still ours after the others finished their claims? */
        if (dev && r <= R_PORT1 && ntbt_dev_link_enable(dev) != 0)
                _exit(3);
        if (dev)
                ntbt_dev_close(dev);
        _exit(0);
}

/* A child dies with this process: a failed CHECK leaves no holder behind. */
static pid_t fork_or_die(void)
{
        pid_t parent = getpid(), pid = fork();

        CHECK(pid >= 0);
        if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent))
                _exit(1);
        return pid;
}

/* Fork a holder of port p; it says when it holds it. */
static pid_t start_holder(const char *name, int p)
{
        int ready[2];
        pid_t pid;
        char c;

        CHECK_EQ(pipe(ready), 0);
        pid = fork_or_die();
        if (pid == 0)
                holder(name, p, ready[1]);
        CHECK_EQ(read(ready[0], &c, 1), 1);
        close(ready[0]);
        close(ready[1]);
        return pid;
}

static void kill_and_reap(pid_t pid)
{
        int st;

        CHECK_EQ(kill(pid, SIGKILL), 0);
        CHECK(waitpid(pid, &st, 0) == pid);
}

static void held_open_window(const char *name)
{
        pid_t live = start_holder(name, 1), pid;
        struct shm_port *pt;
        struct pollfd pfd;
        char path[256];
        int fd, rep[2], st;
        uint32_t gen;
        void *base;
        char r;

        kill_and_reap(start_holder(name, 0)); /* port 0: a dead owner */
        CHECK_EQ(ntbt_shm_path(name, path, sizeof(path)), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        base = mmap(NULL, SHM_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(base != MAP_FAILED);
        pt = (struct shm_port *)(void *)((char *)base + SHM_PORT_OFFSET(0));

        /* The winner's first step: the claim lock, the generation swap. */
        CHECK_EQ(flock(fd, LOCK_EX), 0);
        gen = __atomic_load_n(&pt->generation, __ATOMIC_SEQ_CST);
        CHECK(__atomic_compare_exchange_n(&pt->generation, &gen, gen + 1, 0, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));

        CHECK_EQ(pipe(rep), 0);
        pid = fork_or_die();
        if (pid == 0) {
                struct ntbt_dev *dev = NULL;
                char spec[128];
                int ret;

                snprintf(spec, sizeof(spec), "shm:%s", name);
                ret = ntbt_dev_open(spec, &dev);
                r = ret == -EBUSY ? R_BUSY : ret ? R_ERROR : R_PORT0 + ntbt_dev_port(dev);
                CHECK_EQ(write(rep[1], &r, 1), 1);
                if (dev)
                        ntbt_dev_close(dev);
                _exit(0);
        }
        /* The claimant must wait: it has nothing to say for 300 ms. */
        pfd = (struct pollfd){.fd = rep[0], .events = POLLIN};
        if (poll(&pfd, 1, 300) != 0) {
                CHECK_EQ(read(rep[0], &r, 1), 1);
                fprintf(stderr, "a claimant did not wait for a takeover in progress (result %d)\n",
                        r);
                CHECK(0);
        }
        /* The winner's second step, then the lock goes. */
        __atomic_store_n(&pt->owner_kind, SHM_OWNER_PROCESS, __ATOMIC_SEQ_CST);
        __atomic_store_n(&pt->pid, (uint32_t)getpid(), __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&pt->heartbeat, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(flock(fd, LOCK_UN), 0);
        CHECK_EQ(read(rep[0], &r, 1), 1);
        CHECK_EQ(r, R_BUSY); /* port 0 is ours now, port 1 the live holder's */
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

        /* Release port 0 as the spec says, and let the holder go. */
        __atomic_store_n(&pt->owner_kind, SHM_OWNER_NONE, __ATOMIC_SEQ_CST);
        __atomic_store_n(&pt->state, SHM_PORT_FREE, __ATOMIC_SEQ_CST);
        kill_and_reap(live);
        munmap(base, SHM_HEADER_BYTES);
        close(rep[0]);
        close(rep[1]);
        close(fd);
}

/* A port whose state is neither free nor claimed (a hostile writer's) is
 * refused at once: the takeover pass once looked at it again for ever. */
static void hostile_state(const char *name)
{
        struct ntbt_dev *dev = NULL;
        struct shm_port *pt[2];
        char path[256], spec[128];
        void *base;
        int fd;

        CHECK_EQ(ntbt_shm_path(name, path, sizeof(path)), 0);
        fd = open(path, O_RDWR | O_CLOEXEC);
        CHECK(fd >= 0);
        base = mmap(NULL, SHM_HEADER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(base != MAP_FAILED);
        for (int p = 0; p < 2; p++) {
                pt[p] = (struct shm_port *)(void *)((char *)base + SHM_PORT_OFFSET(p));
                __atomic_store_n(&pt[p]->state, 7, __ATOMIC_SEQ_CST);
        }
        snprintf(spec, sizeof(spec), "shm:%s", name);
        alarm(20); /* a hang fails the test (SIGALRM) */
        CHECK_EQ(ntbt_dev_open(spec, &dev), -EBUSY);
        alarm(0);
        for (int p = 0; p < 2; p++)
                __atomic_store_n(&pt[p]->state, SHM_PORT_FREE, __ATOMIC_SEQ_CST);
        munmap(base, SHM_HEADER_BYTES);
        close(fd);
}

/* A claimant waits for a takeover in progress, then finds the port taken. */
static void takeover_in_progress(void)
{
        struct pair p;

        pair_create(&p, "race", NULL);
        held_open_window(p.name);
        pair_destroy(&p);
}

/* A port in neither state is refused with EBUSY, at once. */
static void bad_state_refused(void)
{
        struct pair p;

        pair_create(&p, "race", NULL);
        hostile_state(p.name);
        pair_destroy(&p);
}

/* ROUNDS times: both owners SIGKILLed, CONTENDERS claimants at once;
 * exactly one gets each port and keeps it, the others are told busy. */
static void dead_owners_rounds(void)
{
        struct pair p;
        const char *name = p.name;
        int round;

        pair_create(&p, "race", NULL);
        for (round = 0; round < ROUNDS; round++) {
                int go[2], report[2], done[2], count[R_ERROR + 1] = {0};
                pid_t holders[2], pids[CONTENDERS];
                int i, st;
                char c;

                /* Both owners die holding their ports: no release. */
                for (i = 0; i < 2; i++)
                        holders[i] = start_holder(name, i);
                for (i = 0; i < 2; i++)
                        kill_and_reap(holders[i]);

                CHECK_EQ(pipe(go), 0);
                CHECK_EQ(pipe(report), 0);
                CHECK_EQ(pipe(done), 0);
                for (i = 0; i < CONTENDERS; i++) {
                        pids[i] = fork_or_die();
                        if (pids[i] == 0) {
                                close(go[1]);
                                close(report[0]);
                                close(done[1]);
                                contender(name, go[0], report[1], done[0]);
                        }
                }
                close(go[0]);
                close(report[1]);
                close(done[0]);
                close(go[1]); /* all start now */
                for (i = 0; i < CONTENDERS; i++) {
                        CHECK_EQ(read(report[0], &c, 1), 1);
                        CHECK(c >= R_PORT0 && c <= R_ERROR);
                        count[(int)c]++;
                }
                close(done[1]); /* all may check and close */
                for (i = 0; i < CONTENDERS; i++) {
                        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
                        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                                fprintf(stderr, "round %d: a winner lost its port later\n", round);
                        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
                }
                close(report[0]);
                if (count[R_PORT0] != 1 || count[R_PORT1] != 1 || count[R_LOST] || count[R_ERROR])
                        fprintf(stderr,
                                "round %d: port0 %d, port1 %d, busy %d, lost %d, error %d\n", round,
                                count[R_PORT0], count[R_PORT1], count[R_BUSY], count[R_LOST],
                                count[R_ERROR]);
                CHECK_EQ(count[R_PORT0], 1);
                CHECK_EQ(count[R_PORT1], 1);
                CHECK_EQ(count[R_BUSY], CONTENDERS - 2);
        }
        pair_destroy(&p);
        printf("%d rounds of %d claimants on two dead owners' ports\n", ROUNDS, CONTENDERS);
}

static const struct test_case cases[] = {
    TEST_CASE(bad_state_refused),
    TEST_CASE(takeover_in_progress),
    TEST_CASE(dead_owners_rounds),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
