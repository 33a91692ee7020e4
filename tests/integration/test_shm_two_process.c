/* SPDX-License-Identifier: MIT */
/*
 * Two processes on one shm device: both ports claimed, a third claimant
 * refused, link up, scratchpads cross, a doorbell wakes a sleeping peer and
 * a masked one does not, window writes are seen across, link goes down on
 * release and on SIGKILL (timed), and the killed port can be claimed again.
 */
#include "../harness.h"

#include <signal.h>

static int to_child[2], to_parent[2];

static void say(int fd, char c)
{
        CHECK_EQ(write(fd, &c, 1), 1);
}

static void hear(int fd, char want)
{
        char c = 0;

        CHECK_EQ(read(fd, &c, 1), 1);
        if (c != want)
                fprintf(stderr, "[pid %d] sync: wanted '%c', got '%c'\n", (int)getpid(), want, c);
        CHECK(c == want);
}

static struct ntbt_dev *open_dev(const char *name, const char *extra)
{
        struct ntbt_dev *dev = NULL;
        char spec[128];

        snprintf(spec, sizeof(spec), "shm:%s%s", name, extra);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        return dev;
}

static void wait_link(struct ntbt_dev *dev, int want)
{
        CHECK_EQ(ntbt_dev_link_wait(dev, !want, 5 * 1000000000LL), want);
}

/* Port 1's side: driven by the parent through the pipes. */
static void child_main(const char *name)
{
        struct ntbt_dev *dev = open_dev(name, ",port=1");
        uint32_t v = 0;
        uint64_t size;
        void *in;
        int64_t t0;

        CHECK_EQ(ntbt_dev_port(dev), 1);
        CHECK_EQ(ntbt_dev_link_enable(dev), 0);
        wait_link(dev, 1);
        say(to_parent[1], 'U');

        /* Scratchpads cross: the parent wrote our spad[3]. */
        hear(to_child[0], 'S');
        CHECK_EQ(ntbt_dev_spad_read(dev, 3, &v), 0);
        CHECK_EQ(v, 0xabcd0003u);
        CHECK_EQ(ntbt_dev_peer_spad_write(dev, 5, 0x55aa0005u), 0);
        CHECK_EQ(ntbt_dev_spad_read(dev, 99, &v), -EINVAL);
        say(to_parent[1], 's');

        /* A doorbell wakes us from sleep. */
        CHECK_EQ(ntbt_dev_db_read(dev), 0);
        say(to_parent[1], 'D');
        t0 = test_now_ns();
        CHECK_EQ(ntbt_dev_db_wait(dev, 1u << 0, 5 * 1000000000LL), 0);
        CHECK(test_now_ns() - t0 > 20 * 1000000LL); /* we really slept */
        CHECK_EQ(ntbt_dev_db_read(dev), 1u << 0);
        CHECK_EQ(ntbt_dev_db_clear(dev, 1u << 0), 0);
        CHECK_EQ(ntbt_dev_db_read(dev), 0);

        /* A masked doorbell does not wake us; unmasking it does. */
        CHECK_EQ(ntbt_dev_db_set_mask(dev, 1u << 1), 0);
        CHECK_EQ(ntbt_dev_db_mask(dev), 1u << 1);
        say(to_parent[1], 'M');
        CHECK_EQ(ntbt_dev_db_wait(dev, 1u << 1, 300 * 1000000LL), -ETIMEDOUT);
        CHECK_EQ(ntbt_dev_db_read(dev), 1u << 1); /* set, but masked */
        CHECK_EQ(ntbt_dev_db_clear_mask(dev, 1u << 1), 0);
        CHECK_EQ(ntbt_dev_db_wait(dev, 1u << 1, 0), 0);
        CHECK_EQ(ntbt_dev_db_clear(dev, 1u << 1), 0);

        /* Window writes are seen across, in both directions. */
        hear(to_child[0], 'W');
        CHECK_EQ(ntbt_dev_mw_inbound(dev, 1, &in, &size), 0);
        CHECK(size >= 4096);
        CHECK(memcmp((char *)in + 100, "from port 0", 12) == 0);
        CHECK_EQ(ntbt_dev_peer_mw_write(dev, 0, 4000, "from port 1", 12), 0);
        CHECK_EQ(ntbt_dev_peer_mw_write32(dev, 0, 4092, 0xfeedbeefu), 0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(dev, 0, 4092), 0);
        /* Out-of-window writes are refused, not performed. */
        CHECK_EQ(ntbt_dev_peer_mw_write(dev, 0, size - 4, "12345678", 8), -EINVAL);
        CHECK_EQ(ntbt_dev_peer_mw_write32(dev, 0, size, 1), -EINVAL);
        CHECK_EQ(ntbt_dev_peer_mw_write(dev, 7, 0, "x", 1), -EINVAL);
        say(to_parent[1], 'w');

        /* Clean release: the parent sees the link go down. */
        hear(to_child[0], 'R');
        ntbt_dev_close(dev);
        say(to_parent[1], 'r');

        /* Reclaim and link up again; then the parent kills us. */
        hear(to_child[0], 'A');
        dev = open_dev(name, ",port=1");
        CHECK_EQ(ntbt_dev_link_enable(dev), 0);
        wait_link(dev, 1);
        say(to_parent[1], 'a');
        for (;;)
                pause();
}

int main(void)
{
        const char *name = test_dev_name("2p");
        struct ntbt_shm_info info = {.size = sizeof(info)};
        struct ntbt_dev *dev, *third = NULL, *again;
        char spec[128];
        uint32_t v = 0;
        uint64_t size;
        int64_t t0, dt;
        void *in;
        pid_t pid;

        ntbt_set_log(test_log_hook, NULL);
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, NULL), 0);
        CHECK_EQ(pipe(to_child), 0);
        CHECK_EQ(pipe(to_parent), 0);

        /* Fork before opening: a device handle has a heartbeat thread, and
         * the child starts threads of its own (TSan forbids that after a
         * multi-threaded fork). */
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                child_main(name);
                _exit(0);
        }
        dev = open_dev(name, ",port=0");
        CHECK_EQ(ntbt_dev_link_is_up(dev), 0);
        CHECK_EQ(ntbt_dev_link_enable(dev), 0);
        wait_link(dev, 1);
        hear(to_parent[0], 'U');

        /* A third claimant is refused. */
        snprintf(spec, sizeof(spec), "shm:%s", name);
        CHECK_EQ(ntbt_dev_open(spec, &third), -EBUSY);

        /* Scratchpads. */
        CHECK_EQ(ntbt_dev_peer_spad_write(dev, 3, 0xabcd0003u), 0);
        say(to_child[1], 'S');
        hear(to_parent[0], 's');
        CHECK_EQ(ntbt_dev_spad_read(dev, 5, &v), 0);
        CHECK_EQ(v, 0x55aa0005u);
        CHECK_EQ(ntbt_dev_peer_spad_read(dev, 3, &v), 0);
        CHECK_EQ(v, 0xabcd0003u);

        /* Ring once the child is asleep (db_sleepers says so). */
        hear(to_parent[0], 'D');
        t0 = test_now_ns();
        do {
                test_sleep_ms(5);
                CHECK_EQ(ntbt_shm_inspect(name, &info), 0);
                CHECK(test_now_ns() - t0 < 5 * 1000000000LL);
        } while (info.port[1].db_sleepers == 0);
        test_sleep_ms(30);
        CHECK_EQ(ntbt_dev_peer_db_set(dev, 1u << 0), 0);

        /* Ring a bit the child masked. */
        hear(to_parent[0], 'M');
        test_sleep_ms(50);
        CHECK_EQ(ntbt_dev_peer_db_set(dev, 1u << 1), 0);

        /* Windows. */
        CHECK_EQ(ntbt_dev_peer_mw_write(dev, 1, 100, "from port 0", 12), 0);
        CHECK_EQ(ntbt_dev_peer_mw_flush(dev, 1, 100), 0);
        say(to_child[1], 'W');
        hear(to_parent[0], 'w');
        CHECK_EQ(ntbt_dev_mw_inbound(dev, 0, &in, &size), 0);
        CHECK(memcmp((char *)in + 4000, "from port 1", 12) == 0);
        CHECK_EQ(*(uint32_t *)(void *)((char *)in + 4092), 0xfeedbeefu);
        /* Translation sizes: a multiple of xlat_align, at most mw_size. */
        CHECK_EQ(ntbt_dev_mw_set_trans(dev, 0, 8192), 0);
        CHECK_EQ(ntbt_dev_mw_set_trans(dev, 0, 8193), -EINVAL);
        CHECK_EQ(ntbt_dev_mw_set_trans(dev, 0, size * 2), -EINVAL);
        CHECK_EQ(ntbt_shm_inspect(name, &info), 0);
        CHECK_EQ(info.port[0].xlat_size[0], 8192);
        CHECK_EQ(info.link_up, 1);

        /* Release: link down, seen promptly through link_seq. */
        say(to_child[1], 'R');
        t0 = test_now_ns();
        CHECK_EQ(ntbt_dev_link_wait(dev, 1, 5 * 1000000000LL), 0);
        dt = test_now_ns() - t0;
        hear(to_parent[0], 'r');
        printf("link down after release: %.1f ms\n", dt / 1e6);
        CHECK_EQ(ntbt_shm_inspect(name, &info), 0);
        CHECK_EQ(info.port[1].state, 0);

        /* Reclaim (generation moves on), then SIGKILL. */
        {
                uint32_t gen = info.port[1].generation;

                say(to_child[1], 'A');
                hear(to_parent[0], 'a');
                wait_link(dev, 1);
                CHECK_EQ(ntbt_shm_inspect(name, &info), 0);
                CHECK_EQ(info.port[1].generation, gen + 1);
        }
        t0 = test_now_ns();
        CHECK_EQ(kill(pid, SIGKILL), 0);
        /* Not reaped yet: a zombie must count as dead. */
        CHECK_EQ(ntbt_dev_link_wait(dev, 1, 5 * 1000000000LL), 0);
        dt = test_now_ns() - t0;
        printf("link down after SIGKILL: %.1f ms (spec: within 100 ms)\n", dt / 1e6);
        /* The spec bound is 100 ms; this machine is shared and noisy, so the
         * test allows 1 s and prints the figure. */
        CHECK(dt < 1000 * 1000000LL);

        /* The killed port can be claimed again, even before the zombie is reaped. */
        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &again), 0);
        CHECK_EQ(ntbt_dev_port(again), 1);
        {
                int st;
                CHECK(waitpid(pid, &st, 0) == pid);
                CHECK(WIFSIGNALED(st));
        }
        /* Both handles in one process: link up between them. */
        CHECK_EQ(ntbt_dev_link_enable(again), 0);
        wait_link(dev, 1);
        ntbt_dev_close(again);
        wait_link(dev, 0);
        ntbt_dev_close(dev);
        CHECK_EQ(ntbt_shm_inspect(name, &info), 0);
        CHECK_EQ(info.port[0].state, 0);
        CHECK_EQ(info.port[1].state, 0);
        CHECK_EQ(ntbt_shm_remove(name), 0);
        printf("shm two processes: ok\n");
        return 0;
}
