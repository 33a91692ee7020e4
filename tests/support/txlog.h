/* SPDX-License-Identifier: MIT */
/*
 * A tx handler that logs completions: buf_ctx carries the buffer's index
 * (0, 1, 2, ...), so the log counts completions, errors and any that came
 * out of order.
 */
#ifndef NTBT_TESTS_TXLOG_H
#define NTBT_TESTS_TXLOG_H

#include <pthread.h>

#include <ntbt/ntbt.h>

struct txlog {
        pthread_mutex_t lock;
        int n, errors, out_of_order, last;
        int first_error; /* index of the first failed completion */
};

#define TXLOG_INIT                                                                                 \
        {                                                                                          \
                .lock = PTHREAD_MUTEX_INITIALIZER, .last = -1                                      \
        }

/* The tx handler; ctx is the struct txlog. */
void txlog_on_tx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len);
/* Read a field of l under its lock. */
int txlog_get(struct txlog *l, int *field);

#endif
