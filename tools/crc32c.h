/* SPDX-License-Identifier: MIT */
#ifndef NTBT_TOOLS_CRC32C_H
#define NTBT_TOOLS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C (Castagnoli), as iSCSI and ext4 use; SSE4.2 when the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
