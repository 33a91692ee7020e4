/* SPDX-License-Identifier: MIT */
#ifndef NTBT_UTIL_LOG_H
#define NTBT_UTIL_LOG_H

#include <ntbt/log.h>

/* Format a line and hand it to the application's hook, if any.  Internal:
 * hidden from the shared library (applications log through their hook). */
__attribute__((visibility("hidden"))) void ntbt_logf(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   ntbt_logf(NTBT_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ntbt_logf(NTBT_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ntbt_logf(NTBT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ntbt_logf(NTBT_LOG_DEBUG, __VA_ARGS__)

#endif
