/*
 * The --prefix syntax (docs/PROTOCOL.md, "Prefix"): bytes a client puts
 * in front of its first packet(s) so that they do not look fully
 * encrypted.  Strict and pure, so the fuzzer can drive it:
 *
 *   NAME            a preset: tls, http-get, http-post, dns, ssh
 *   hex:HEX         2..128 hex digits, an even number
 *   TEMPLATE        printable ASCII (0x20-0x7e) with the escapes \xHH,
 *                   \\, \r, \n, \t; no other backslash sequence
 *
 * At most PREFIX_MAX bytes after decoding, at least one.
 */
#ifndef SCTPT_UTIL_PREFIX_H
#define SCTPT_UTIL_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#define PREFIX_MAX 64
#define PREFIX_SPEC_MAX 512     /* longest accepted spec text (64 x "\xHH" fits) */

/*
 * Decode spec (len bytes, not necessarily terminated) into out
 * (PREFIX_MAX bytes).  Returns the number of bytes (1..PREFIX_MAX), or -1
 * with *err set to a static message.
 */
int prefix_parse(const char *spec, size_t len, uint8_t out[PREFIX_MAX], const char **err);

#endif
