/* SPDX-License-Identifier: MIT */
/* The "pcie" model device (spec/pcie-model.md). */
#ifndef NTBT_DEV_PCIE_H
#define NTBT_DEV_PCIE_H

#include <stdint.h>

#include <ntbt/dev.h>

/*
 * For tests: the first call starts recording the order in which posted
 * lines become visible (window << 56 | line offset) and returns 0; later
 * calls copy up to cap entries into buf and return how many.
 */
int pcie_trace(struct ntbt_dev *dev, uint64_t *buf, uint32_t cap);

#endif
