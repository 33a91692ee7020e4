/* SPDX-License-Identifier: MIT */
#include "txlog.h"

#include <stdint.h>

void txlog_on_tx(struct ntbt_qp *qp, void *ctx, void *buf_ctx, const void *data, int len)
{
        struct txlog *l = ctx;
        int idx = (int)(intptr_t)buf_ctx;

        (void)qp, (void)data;
        pthread_mutex_lock(&l->lock);
        if (idx != l->last + 1)
                l->out_of_order++;
        l->last = idx;
        if (len < 0 && !l->errors++)
                l->first_error = idx;
        l->n++;
        pthread_mutex_unlock(&l->lock);
}

int txlog_get(struct txlog *l, int *field)
{
        int v;

        pthread_mutex_lock(&l->lock);
        v = *field;
        pthread_mutex_unlock(&l->lock);
        return v;
}
