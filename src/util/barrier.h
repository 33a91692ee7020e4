/* SPDX-License-Identifier: MIT */
/*
 * All memory ordering in ntbt goes through this header (as liburing's
 * barrier.h does).  Every register and window word that another process can
 * see is accessed through these macros, never through a plain load or store,
 * so that each access states its ordering where it is made.
 *
 * They work on plain (non-_Atomic) objects, because the shared-memory device
 * maps registers at fixed offsets in a file that other programs also write.
 */
#ifndef NTBT_UTIL_BARRIER_H
#define NTBT_UTIL_BARRIER_H

#include <stdint.h>
#include <string.h>

/* Acquire load: later loads and stores are not moved before it. */
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* Release store: earlier loads and stores are not moved after it. */
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* Relaxed: atomic (no torn value), no ordering; callers say why that is enough. */
#define load_relaxed(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Sequentially consistent: the default that spec/shm-device.md asks for. */
/* Statistics counters shared between threads: atomic, ordering nothing. */
#define fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

#define load_sc(p)         __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_sc(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define fetch_add_sc(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define fetch_sub_sc(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define fetch_or_sc(p, v)  __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define fetch_and_sc(p, v) __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define cas_sc(p, expp, v)                                                                         \
        __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/* Full fence: orders every earlier load and store before every later one. */
#define smp_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* Store fence: earlier stores become visible before later stores. */
#define smp_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

/*
 * 32-bit words in a window (frame header fields, rx_info) sit wherever the
 * geometry puts them: region = size / k keeps them 4-aligned in only some
 * geometries (180 of the 624 spec vectors are not).  Aligned, these are one
 * atomic access.  Unaligned, a fence orders a 4-byte copy as the aligned
 * access would be ordered; x86 performs such a copy as one store, as the
 * kernel's iowrite32 does on the same address.
 */
static inline uint32_t load_acquire_u32(const void *p)
{
        uint32_t v;

        if (!((uintptr_t)p & 3))
                return load_acquire((const uint32_t *)p);
        memcpy(&v, p, 4);
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* later accesses after this load */
        return v;
}

static inline uint32_t load_relaxed_u32(const void *p)
{
        uint32_t v;

        if (!((uintptr_t)p & 3))
                return load_relaxed((const uint32_t *)p);
        memcpy(&v, p, 4);
        return v;
}

static inline void store_release_u32(void *p, uint32_t v)
{
        if (!((uintptr_t)p & 3)) {
                store_release((uint32_t *)p, v);
                return;
        }
        __atomic_thread_fence(__ATOMIC_RELEASE); /* earlier accesses before this store */
        memcpy(p, &v, 4);
}

static inline void store_relaxed_u32(void *p, uint32_t v)
{
        if (!((uintptr_t)p & 3))
                store_relaxed((uint32_t *)p, v);
        else
                memcpy(p, &v, 4);
}

/* Tell the CPU we are spinning (saves power, yields to the sibling thread). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
