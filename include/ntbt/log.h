/* SPDX-License-Identifier: MIT */
/*
 * The library never prints.  It reports through one hook that the
 * application installs; with none installed, messages are dropped.
 */
#ifndef NTBT_LOG_H
#define NTBT_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum ntbt_log_level {
        NTBT_LOG_ERR = 3,
        NTBT_LOG_WARN = 4,
        NTBT_LOG_INFO = 6,
        NTBT_LOG_DEBUG = 7,
};

/*
 * Called from whichever library thread has something to say (an event thread,
 * a copy thread, or the caller's own thread), possibly from several at once:
 * the hook must be thread-safe.  msg is a complete line without a newline and
 * is only valid during the call.
 */
typedef void (*ntbt_log_fn)(void *ctx, int level, const char *msg);

/* Install (or, with fn NULL, remove) the process-wide log hook. */
void ntbt_set_log(ntbt_log_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
