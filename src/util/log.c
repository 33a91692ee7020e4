/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "barrier.h"

/*
 * The hook and its context are set together; a reader may see a new fn with
 * an old ctx only if the application swaps hooks while the library logs,
 * which ntbt_set_log's contract leaves to the application.  Acquire/release
 * makes a hook's own setup (before ntbt_set_log) visible to the thread that
 * calls it.
 */
static ntbt_log_fn log_fn;
static void *log_ctx;

void ntbt_set_log(ntbt_log_fn fn, void *ctx)
{
        store_release(&log_ctx, ctx);
        store_release(&log_fn, fn);
}

void ntbt_logf(int level, const char *fmt, ...)
{
        ntbt_log_fn fn = load_acquire(&log_fn);
        char buf[512];
        va_list ap;

        if (!fn)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fn(load_acquire(&log_ctx), level, buf);
}
