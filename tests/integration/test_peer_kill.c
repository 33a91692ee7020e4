/* SPDX-License-Identifier: MIT */
/*
 * The sending peer is SIGKILLed mid-stream: the receiver reports the loss
 * (link lost, not a clean close), everything it delivered is intact and in
 * order, and a restarted peer links up again and its traffic goes through.
 */
#include "../harness.h"

#include <signal.h>

#include "../support/session.h"

static const char *name;

static void sender(uint64_t frames)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        struct ntbt_transport *t;
        struct ntbt_dev *dev;
        struct ntbt_qp *qp;
        char spec[96];

        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_transport_open(dev, NULL, &t), 0);
        CHECK_EQ(ntbt_qp_create(t, &qo, NULL, NULL, &qp), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
        CHECK_EQ(ntbt_qp_wait_link(qp, 10 * 1000000000LL), 0);
        session_send(qp, frames, SIZES_RANDOM, 30 * 1000000000LL);
        /* Every frame taken, then a clean close. */
        CHECK_EQ(ntbt_qp_wait_tx(qp, ntbt_qp_tx_entries(qp) - 1, 30 * 1000000000LL), 0);
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
}

static pid_t spawn_sender(const char *frames)
{
        char *args[] = {"peer_kill", "sender", (char *)name, (char *)frames, NULL};
        pid_t pid = test_spawn(args);

        CHECK(pid > 0);
        return pid;
}

int main(int argc, char **argv)
{
        struct ntbt_qp_stats st = {.size = sizeof(st)};
        struct session_rx s;
        struct ntbt_transport *t;
        struct ntbt_dev *dev;
        struct ntbt_qp *qp;
        static uint8_t bufs[16][65536];
        char spec[96];
        int64_t t0, deadline;
        uint64_t frames;
        pid_t pid;
        int i;

        ntbt_set_log(test_log_hook, NULL);
        if (argc == 4 && !strcmp(argv[1], "sender")) {
                name = argv[2];
                sender(strtoull(argv[3], NULL, 0));
                return 0;
        }
        name = test_dev_name("kill");
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, NULL), 0);
        snprintf(spec, sizeof(spec), "shm:%s,port=0", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_transport_open(dev, NULL, &t), 0);
        session_init(&s, 65536 - 12, SIZES_RANDOM);
        CHECK_EQ(ntbt_qp_create(t, NULL, &session_handlers, &s, &qp), 0);
        for (i = 0; i < 16; i++)
                CHECK_EQ(ntbt_qp_rx_enqueue(qp, NULL, bufs[i], sizeof(bufs[i])), 0);
        CHECK_EQ(ntbt_qp_link_up(qp), 0);

        /* A sender that never stops; killed once 2000 frames have arrived. */
        pid = spawn_sender("0xffffffffffffffff");
        deadline = test_now_ns() + 60 * 1000000000LL;
        while (session_get(&s, &s.total_frames) < 2000)
                CHECK(test_now_ns() < deadline);
        t0 = test_now_ns();
        CHECK_EQ(kill(pid, SIGKILL), 0);
        while (session_get_int(&s, &s.downs) < 1)
                CHECK(test_now_ns() - t0 < 5 * 1000000000LL);
        printf("loss reported after %.1f ms\n", (test_now_ns() - t0) / 1e6);
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_LINK_LOST);
        CHECK_EQ(ntbt_qp_link_is_up(qp), 0);
        frames = session_get(&s, &s.total_frames);
        CHECK(frames >= 2000);
        {
                int st_;
                CHECK(waitpid(pid, &st_, 0) == pid);
                CHECK(WIFSIGNALED(st_));
        }

        /* A restarted peer: links up again, 3000 frames from frame 0, clean close. */
        pid = spawn_sender("3000");
        deadline = test_now_ns() + 60 * 1000000000LL;
        while (session_get_int(&s, &s.downs) < 2)
                CHECK(test_now_ns() < deadline);
        test_reap_ok(pid);
        CHECK_EQ(session_get_int(&s, &s.ups), 2);
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(s.frames_at_down[1], 3000);
        CHECK_EQ(ntbt_qp_stats(qp, &st), 0);
        CHECK_EQ(st.rx_err_ver, 0);
        CHECK_EQ(st.rx_err_oflow, 0);
        CHECK_EQ(st.resets, 0);
        ntbt_qp_free(qp);
        ntbt_transport_close(t);
        ntbt_dev_close(dev);
        session_destroy(&s);
        CHECK_EQ(ntbt_shm_remove(name), 0);
        printf("peer kill: ok (%llu frames before the kill)\n", (unsigned long long)frames);
        return 0;
}
