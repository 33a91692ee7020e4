/* SPDX-License-Identifier: MIT */
/*
 * The sending peer is SIGKILLed mid-stream: the receiver reports the loss
 * (link lost, not a clean close), everything it delivered is intact and in
 * order, and a restarted peer links up again and its traffic goes through.
 */
#include "../harness.h"

#include <signal.h>

#include "../support/pair.h"
#include "../support/session.h"

/* The sender, a re-executed child on port 1: `frames` frames, then a clean close. */
static void sender(const char *name, uint64_t frames)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        struct ntbt_qp *qp;
        struct pair me;

        pair_attach(&me, name);
        pair_open(&me, 1, NULL);
        qp = pair_qp(&me, 1, &qo, NULL, NULL);
        pair_wait_link(qp);
        session_send(qp, frames, SIZES_RANDOM, 30 * 1000000000LL);
        /* Every frame taken, then a clean close. */
        CHECK_EQ(ntbt_qp_wait_tx(qp, ntbt_qp_tx_entries(qp) - 1, 30 * 1000000000LL), 0);
        ntbt_qp_free(qp);
        pair_close(&me, 1);
}

static struct pair p;
static struct session_rx s;
static struct ntbt_qp *qp;
static uint8_t bufs[16][65536];

static void spawn_sender(const char *frames)
{
        char *args[] = {"peer_kill", "sender", p.name, (char *)frames, NULL};

        pair_spawn(&p, args);
}

/* The checking receiver on port 0, then a sender that never stops, killed
 * once 2000 frames have arrived: the receiver reports the loss (link lost,
 * not a clean close) and what it delivered was intact and in order. */
static uint64_t receive_then_kill(void)
{
        int64_t t0, deadline;
        uint64_t frames;

        pair_create(&p, "kill", NULL);
        pair_open(&p, 0, NULL);
        session_init(&s, 65536 - 12, SIZES_RANDOM);
        CHECK_EQ(ntbt_qp_create(p.t[0], NULL, &session_handlers, &s, &qp), 0);
        pair_post(qp, bufs, 16, sizeof(bufs[0]));
        CHECK_EQ(ntbt_qp_link_up(qp), 0);

        spawn_sender("0xffffffffffffffff");
        deadline = now_ns() + 60 * 1000000000LL;
        while (session_get(&s, &s.total_frames) < 2000)
                CHECK(now_ns() < deadline);
        t0 = now_ns();
        CHECK_EQ(kill(p.peer, SIGKILL), 0);
        p.killed = 1;
        while (session_get_int(&s, &s.downs) < 1)
                CHECK(now_ns() - t0 < 5 * 1000000000LL);
        printf("loss reported after %.1f ms\n", (now_ns() - t0) / 1e6);
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_LINK_LOST);
        CHECK_EQ(ntbt_qp_link_is_up(qp), 0);
        frames = session_get(&s, &s.total_frames);
        CHECK(frames >= 2000);
        {
                int st_;
                CHECK(waitpid(p.peer, &st_, 0) == p.peer);
                CHECK(WIFSIGNALED(st_));
                p.peer = 0;
        }
        return frames;
}

static void teardown(void)
{
        session_check_clean(qp);
        ntbt_qp_free(qp);
        pair_destroy(&p);
        session_destroy(&s);
}

/* A SIGKILLed sender is reported as a lost link. */
static void kill_reported_as_loss(void)
{
        uint64_t frames = receive_then_kill();

        teardown();
        printf("%llu frames before the kill\n", (unsigned long long)frames);
}

/* After the kill, a restarted peer links up again and its 3000 frames
 * arrive from frame 0, then its clean close. */
static void restarted_peer_relinks(void)
{
        int64_t deadline;

        receive_then_kill();
        spawn_sender("3000");
        deadline = now_ns() + 60 * 1000000000LL;
        while (session_get_int(&s, &s.downs) < 2)
                CHECK(now_ns() < deadline);
        pair_reap(&p);
        CHECK_EQ(session_get_int(&s, &s.ups), 2);
        CHECK_EQ(session_get_int(&s, &s.last_reason), NTBT_QP_DOWN_PEER);
        CHECK_EQ(s.frames_at_down[1], 3000);
        teardown();
}

static const struct test_case cases[] = {
    TEST_CASE(kill_reported_as_loss),
    TEST_CASE(restarted_peer_relinks),
};

int main(int argc, char **argv)
{
        if (argc == 4 && !strcmp(argv[1], "sender")) {
                ntbt_set_log(test_log_hook, NULL);
                sender(argv[2], strtoull(argv[3], NULL, 0));
                return 0;
        }
        return test_main(argc, argv, TEST_CASES(cases));
}
