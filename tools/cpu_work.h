/*
 * tools/cpu_work.h: the CPU-bound work behind eddy-httpd's /cpu route and
 * the threaded server of the benchmarks (bench/macro/threaded_httpd.c), so
 * both do exactly the same work per request.
 *
 * One round hashes a 64-byte block with FNV-1a (64-bit) and writes the hash
 * back into the block, so each round depends on the one before: the
 * compiler can neither skip rounds nor run them side by side. The cost is
 * linear in the rounds, about 70 ns per round (64 dependent multiplies) on
 * this project's machines.
 */
#ifndef EDDY_TOOLS_CPU_WORK_H
#define EDDY_TOOLS_CPU_WORK_H

#include <stdint.h>
#include <string.h>

#define CPU_WORK_MAX_ROUNDS 100000000ULL
#define CPU_WORK_FNV_OFFSET 0xcbf29ce484222325ULL
#define CPU_WORK_FNV_PRIME 0x100000001b3ULL

/* The hash after n rounds (n = 0 gives the hash of nothing). */
static inline uint64_t cpu_work_rounds(uint64_t n)
{
    unsigned char block[64];
    memset(block, 0x5a, sizeof(block));
    uint64_t h = CPU_WORK_FNV_OFFSET;
    for (uint64_t r = 0; r < n; r++) {
        h = CPU_WORK_FNV_OFFSET;
        for (size_t i = 0; i < sizeof(block); i++) {
            h ^= block[i];
            h *= CPU_WORK_FNV_PRIME;
        }
        memcpy(block + (r % 8) * 8, &h, sizeof(h));
    }
    return h;
}

#endif
