/* SPDX-License-Identifier: MIT */
/* The size-field rule (src/util/abi.h, <ntbt/ntbt.h>): an older caller's
 * smaller struct, a newer caller's larger one, and what is refused. */
#include "../harness.h"

#include "util/abi.h"

#include <ntbt/stats.h>

/* Ours: three fields.  An older caller's has two, a newer one's four. */
struct v2 {
        uint32_t size;
        uint32_t a;
        uint64_t b;
};
struct v1 {
        uint32_t size;
        uint32_t a;
};
struct v3 {
        uint32_t size;
        uint32_t a;
        uint64_t b;
        uint64_t c;
};

static void options_in(void)
{
        struct v2 ours;
        struct v1 old = {.size = sizeof(old), .a = 7};
        struct v3 newer = {.size = sizeof(newer), .a = 1, .b = 2};
        uint32_t bare = 4, tiny = 2;

        /* Older: the fields it lacks keep our defaults; size says ours. */
        ours = (struct v2){.size = sizeof(ours), .a = 3, .b = 4};
        CHECK_EQ(abi_in(&ours, sizeof(ours), &old, 4), 0);
        CHECK_EQ(ours.size, sizeof(ours));
        CHECK_EQ(ours.a, 7);
        CHECK_EQ(ours.b, 4);
        /* The size field alone: every option takes its default. */
        ours = (struct v2){.size = sizeof(ours), .a = 3, .b = 4};
        CHECK_EQ(abi_in(&ours, sizeof(ours), &bare, 4), 0);
        CHECK_EQ(ours.a, 3);
        CHECK_EQ(ours.b, 4);
        /* Newer, its extra field zero: taken. */
        CHECK_EQ(abi_in(&ours, sizeof(ours), &newer, 4), 0);
        CHECK_EQ(ours.size, sizeof(ours));
        CHECK_EQ(ours.a, 1);
        CHECK_EQ(ours.b, 2);
        /* Newer, asking for an option this build does not know. */
        newer.c = 1;
        CHECK_EQ(abi_in(&ours, sizeof(ours), &newer, 4), -E2BIG);
        /* Under 4 bytes, or under the struct's first version. */
        CHECK_EQ(abi_in(&ours, sizeof(ours), &tiny, 4), -EINVAL);
        CHECK_EQ(abi_in(&ours, sizeof(ours), &old, sizeof(struct v2)), -EINVAL);
}

static void results_out(void)
{
        struct v2 ours = {.size = sizeof(ours), .a = 5, .b = 6};
        struct v1 old = {.size = sizeof(old)};
        struct v3 newer;
        uint32_t tiny = 3;

        /* Older: what it has room for, and size says how much. */
        CHECK_EQ(abi_out_ok(&old, 4), 0);
        CHECK_EQ(abi_out(&old, &ours, sizeof(ours), 4), 0);
        CHECK_EQ(old.size, sizeof(old));
        CHECK_EQ(old.a, 5);
        /* Newer: ours written, its extra field untouched, size says ours. */
        memset(&newer, 0xee, sizeof(newer));
        newer.size = sizeof(newer);
        CHECK_EQ(abi_out(&newer, &ours, sizeof(ours), 4), 0);
        CHECK_EQ(newer.size, sizeof(ours));
        CHECK_EQ(newer.a, 5);
        CHECK_EQ(newer.b, 6);
        CHECK(newer.c == 0xeeeeeeeeeeeeeeeeull);
        /* Refused, untouched: under 4 bytes, or under the first version. */
        CHECK_EQ(abi_out_ok(&tiny, 4), -EINVAL);
        CHECK_EQ(abi_out(&tiny, &ours, sizeof(ours), 4), -EINVAL);
        CHECK_EQ(tiny, 3);
        old.size = sizeof(old);
        old.a = 9;
        CHECK_EQ(abi_out(&old, &ours, sizeof(ours), sizeof(struct v2)), -EINVAL);
        CHECK_EQ(old.a, 9);
}

/* ntbt_stats_read follows the rule (it had no size field before
 * libntbt.so.1): a size under the whole struct is refused before any file
 * is looked at, and a snapshot says how much it wrote. */
static void stats_read_size(void)
{
        struct ntbt_stats st;

        memset(&st, 0xa5, sizeof(st));
        st.size = 4;
        CHECK_EQ(ntbt_stats_read("t-abi-none", 0, &st), -EINVAL);
        CHECK_EQ(st.size, 4);
        CHECK_EQ(st.pid, (int)0xa5a5a5a5);
        st.size = sizeof(st);
        CHECK_EQ(ntbt_stats_read(test_dev_name("abi-none"), 0, &st), -ENOENT);
        CHECK_EQ(st.size, sizeof(st));
}

static const struct test_case cases[] = {
    TEST_CASE(options_in),
    TEST_CASE(results_out),
    TEST_CASE(stats_read_size),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
