/*
 * What send and recv share: the stream header and trailer on the wire, the
 * seeded pattern, SOCKS5 messages, the latency histogram and the progress
 * line.  proto.c and lat.c are pure and unit-tested
 * (tests/unit/test_lab_flow.c).
 *
 * On each TCP connection (one per stream):
 *   send -> recv  header (FLOW_HDR_LEN bytes), then data;
 *                 bulk: the stream's bytes, then a FIN if the length was
 *                 not in the header;
 *                 rpc: requests, each FLOW_RPC_REQ and rpc_req bytes,
 *                 answered with rpc_resp bytes; FLOW_RPC_END at the end.
 *   recv -> send  (rpc: the responses, then) the trailer once the stream is
 *                 complete (length reached, FLOW_RPC_END, or the FIN): what
 *                 recv counted, checked and hashed.  Only streams of
 *                 unknown length need the FIN: some proxies (shadowsocks-
 *                 libev) close both ways on a half-close.
 */
#ifndef SCTPT_LAB_FLOW_INTERNAL_H
#define SCTPT_LAB_FLOW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#define FLOW_MAGIC "SLB1"
#define FLOW_TRAILER_MAGIC "SLBE"
#define FLOW_HDR_LEN 40
#define FLOW_TRAILER_LEN 56
#define FLOW_LEN_UNKNOWN UINT64_MAX
#define FLOW_RPC_MAX (1u << 20)        /* request / response size bound */
#define FLOW_MAX_STREAMS 1024
#define FLOW_RPC_REQ 'Q'               /* a request follows */
#define FLOW_RPC_END 'E'               /* no more requests: send the trailer */

enum flow_mode { FLOW_BULK = 0, FLOW_RPC = 1 };
#define FLOW_F_PATTERN 0x01            /* the data is the seeded pattern: verify it */

struct flow_hdr {
	uint8_t mode;
	uint8_t flags;
	uint32_t stream;
	uint64_t seed;
	uint64_t length;                   /* bulk: bytes, or FLOW_LEN_UNKNOWN */
	uint32_t rpc_req, rpc_resp;
};

enum flow_status { FLOW_OK = 0, FLOW_BAD_PATTERN = 1, FLOW_BAD_LENGTH = 2 };

struct flow_trailer {
	uint32_t status;
	uint64_t bytes;                    /* data bytes received (after the header) */
	uint64_t bad_offset;               /* first byte that differed from the pattern */
	uint8_t sha256[32];
};

void flow_hdr_encode(const struct flow_hdr *h, uint8_t out[FLOW_HDR_LEN]);
/* 0, or -1 with err (wrong magic, unknown mode, sizes out of range). */
int flow_hdr_decode(const uint8_t in[FLOW_HDR_LEN], struct flow_hdr *h, char *err, size_t errlen);
void flow_trailer_encode(const struct flow_trailer *t, uint8_t out[FLOW_TRAILER_LEN]);
int flow_trailer_decode(const uint8_t in[FLOW_TRAILER_LEN], struct flow_trailer *t);

/* The pattern of (seed, stream) at byte offset off, n bytes into out. */
void flow_pattern(uint64_t seed, uint32_t stream, uint64_t off, uint8_t *out, size_t n);
/* Index of the first byte of buf that differs from the pattern, or n. */
size_t flow_pattern_check(uint64_t seed, uint32_t stream, uint64_t off, const uint8_t *buf,
                          size_t n);

/* SOCKS5: the CONNECT request for host:port (numeric or a name) into out. */
int flow_socks5_request(const char *host, uint16_t port, uint8_t *out, size_t outlen);
/*
 * The length of a complete SOCKS5 reply at the start of buf (n bytes), 0 if
 * more is needed, -1 if it is not a success reply (err set).
 */
int flow_socks5_reply_len(const uint8_t *buf, size_t n, char *err, size_t errlen);

/* Sizes with suffixes: k M G (x1000) or KiB MiB GiB (x1024).  0 or -1. */
int flow_parse_size(const char *s, uint64_t max, uint64_t *out);

/* ---- lat.c: a latency histogram, ~1% wide buckets from 1 us to ~100 s */
#define LAT_BUCKETS 1200
struct lat_hist {
	uint64_t n;
	uint64_t sum_us;
	uint64_t max_us, min_us;
	uint32_t b[LAT_BUCKETS];
};
void lat_reset(struct lat_hist *h);
void lat_add(struct lat_hist *h, uint64_t us);
/* The q-quantile (0..1) in microseconds (the bucket's upper edge), 0 if empty. */
uint64_t lat_quantile(const struct lat_hist *h, double q);
/* {"count", "mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "cdf": [[ms, q]...]} */
json_t *lat_to_json(const struct lat_hist *h);

/* ---- progress.c */
struct progress {
	int tty;
	uint64_t last_ms;
	size_t last_len;
};
void progress_init(struct progress *p, FILE *f);
/* total may be 0 (unknown). rate in bytes/s. */
void progress_show(struct progress *p, FILE *f, const char *what, uint64_t done, uint64_t total,
                   double rate, uint64_t elapsed_ms, const char *extra, int final);
/* "12.3 MiB" into buf. */
const char *fmt_bytes(double b, char *buf, size_t len);

/* in[0..n) as lowercase hex into out (2n + 1 bytes, NUL-terminated). */
void flow_hex(const uint8_t *in, size_t n, char *out);

#endif
