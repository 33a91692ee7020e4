/* SPDX-License-Identifier: MIT */
/* Shared (inter-process) futexes: no FUTEX_PRIVATE_FLAG, because the words live in a shared file.
 */
#ifndef NTBT_UTIL_FUTEX_H
#define NTBT_UTIL_FUTEX_H

#include <stdint.h>

/*
 * Sleep while *word == expected, for at most timeout_ns (< 0: forever).
 * Returns 0 when woken (or spuriously), -EAGAIN if *word != expected,
 * -ETIMEDOUT, or -EINTR on a signal.
 */
int futex_wait_shared(uint32_t *word, uint32_t expected, int64_t timeout_ns);
/* Wake up to n sleepers on word; returns how many were woken or a negative errno. */
int futex_wake_shared(uint32_t *word, int n);

/* Process-private futexes (FUTEX_PRIVATE_FLAG), for words no other process maps. */
int futex_wait_private(uint32_t *word, uint32_t expected);
int futex_wake_private(uint32_t *word);

#endif
