/*
 * CRC32c (Castagnoli, RFC 3309 / RFC 9260 Appendix A), the SCTP checksum.
 *
 * The native engine keeps the checksum so that it can talk to stock
 * usrsctp; between two sctpt engines, inside the AEAD of the wire layer,
 * it may later be negotiated away (RFC 9653).  A table-driven slicing-by-8
 * routine is always available; on x86-64 CPUs with SSE4.2 the crc32
 * instruction is chosen at run time.
 */
#ifndef SCTPT_SCTP_CRC32C_H
#define SCTPT_SCTP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extends crc (the result of a previous call, 0 to start) over n bytes.
 * crc32c(0, "123456789", 9) == 0xe3069283.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t n);

/* The portable table-driven routine, whatever the CPU (for tests). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n);

/* 1 if crc32c() uses the CPU's crc32 instruction. */
int crc32c_hw_available(void);

#endif
