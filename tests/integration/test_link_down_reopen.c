/* SPDX-License-Identifier: MIT */
/*
 * LINK_DOWN and reopen, repeated: the peer sends a burst, closes its QP
 * (LINK_DOWN frame), reopens at once and sends again, 30 times, sometimes
 * freeing and re-creating the QP.  Every burst arrives whole and in order,
 * every close is reported as the peer's, and no protocol error is counted.
 */
#include "../harness.h"

#include "../support/pair.h"
#include "../support/session.h"

#define ROUNDS 30
#define FRAMES 200

static void peer(const char *name)
{
        struct ntbt_qp_opts qo = {.size = sizeof(qo), .qp_num = 0, .poll = 1};
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = 4096};
        struct ntbt_transport *t;
        struct ntbt_qp *qp;
        struct pair me;
        int r;

        pair_attach(&me, name);
        t = pair_open(&me, 1, &o);
        CHECK_EQ(ntbt_qp_create(t, &qo, NULL, NULL, &qp), 0);
        for (r = 0; r < ROUNDS; r++) {
                CHECK_EQ(ntbt_qp_link_up(qp), 0);
                CHECK_EQ(ntbt_qp_wait_link(qp, 10 * 1000000000LL), 0);
                session_send(qp, FRAMES, SIZES_RANDOM, 10 * 1000000000LL);
                /* Close without waiting for the peer to drain: the LINK_DOWN
                 * frame queues behind the data and must not overtake it. */
                if (r % 5 == 4) {
                        ntbt_qp_free(qp);
                        CHECK_EQ(ntbt_qp_create(t, &qo, NULL, NULL, &qp), 0);
                } else {
                        CHECK_EQ(ntbt_qp_link_down(qp), 0);
                        CHECK_EQ(ntbt_qp_link_is_up(qp), 0);
                        CHECK_EQ(ntbt_qp_tx_enqueue(qp, NULL, "x", 1, 0), -ENOLINK);
                }
        }
        ntbt_qp_free(qp);
        pair_close(&me, 1);
}

/* Every burst arrives whole and in order, every close is the peer's, and
 * no protocol error is counted. */
static void reopen_30_rounds(void)
{
        struct ntbt_transport_opts o = {.size = sizeof(o), .transport_mtu = 4096};
        struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 64 << 10};
        static uint8_t bufs[32][4096];
        struct session_rx s;
        struct ntbt_qp *qp;
        int64_t deadline;
        struct pair p;
        int i;

        pair_create(&p, "reopen", &g); /* 15-frame rings: the close often waits */
        pair_open(&p, 0, &o);
        session_init(&s, 4096 - 12, SIZES_RANDOM);
        CHECK_EQ(ntbt_qp_create(p.t[0], NULL, &session_handlers, &s, &qp), 0);
        pair_post(qp, bufs, 32, sizeof(bufs[0]));
        CHECK_EQ(ntbt_qp_link_up(qp), 0);
        {
                char *args[] = {"link_down_reopen", "peer", p.name, NULL};

                pair_spawn(&p, args);
        }
        deadline = now_ns() + 120 * 1000000000LL;
        while (session_get_int(&s, &s.downs) < ROUNDS)
                CHECK(now_ns() < deadline);
        pair_reap(&p);
        CHECK_EQ(session_get_int(&s, &s.ups), ROUNDS);
        for (i = 0; i < ROUNDS; i++) {
                if (s.frames_at_down[i] != FRAMES)
                        fprintf(stderr, "round %d: %llu frames\n", i,
                                (unsigned long long)s.frames_at_down[i]);
                CHECK_EQ(s.frames_at_down[i], FRAMES);
        }
        CHECK_EQ(session_get(&s, &s.total_frames), (uint64_t)ROUNDS * FRAMES);
        session_check_clean(qp);
        ntbt_qp_free(qp);
        pair_destroy(&p);
        session_destroy(&s);
}

static const struct test_case cases[] = {
    TEST_CASE(reopen_30_rounds),
};

int main(int argc, char **argv)
{
        if (argc == 3 && !strcmp(argv[1], "peer")) {
                ntbt_set_log(test_log_hook, NULL);
                peer(argv[2]);
                return 0;
        }
        return test_main(argc, argv, TEST_CASES(cases));
}
