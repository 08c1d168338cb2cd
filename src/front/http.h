/*
 * HTTP/1.x proxy requests (RFC 9110, RFC 9112) as a pure parser: bytes in,
 * a destination and the bytes to send upstream out.  No I/O happens here,
 * so every path is unit-testable with raw bytes and fuzzable.
 *
 * Two forms are accepted: CONNECT with an authority ("host:port"), after
 * which the connection is a byte tunnel, and absolute-form requests
 * ("GET http://host[:port]/path HTTP/1.1", any method), which are rewritten
 * to origin-form for the server with the hop-by-hop headers removed and
 * "Connection: close" added: one request per client connection, because
 * following keep-alive requests to other hosts would need a full HTTP
 * parser on the body too.
 *
 * Usage: call http_head_end() on the bytes received so far until it finds
 * the end of the header block (or the block is too long: answer 400), then
 * http_parse() on exactly that block.
 */
#ifndef SCTPT_FRONT_HTTP_H
#define SCTPT_FRONT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "front/socks.h"

#define HTTP_HEAD_MAX 16384       /* request line and headers, with the blank line */
#define HTTP_HEADERS_MAX 100      /* header fields in one request */
#define HTTP_METHOD_MAX 32
/* The rewritten head is never longer than this (Host line, CRLFs, Connection). */
#define HTTP_OUT_MAX (HTTP_HEAD_MAX + 1024)

struct http_request {
	int connect;                  /* 1: CONNECT tunnel; 0: absolute-form request */
	char method[HTTP_METHOD_MAX + 1];
	int minor;                    /* HTTP/1.minor */
	struct socks_dest dest;
	size_t head_len;              /* bytes of the client's header block */
	/* Absolute-form only: the request to send upstream instead of the head. */
	uint8_t out[HTTP_OUT_MAX];
	size_t out_len;
	const char *error;            /* static description when http_parse fails */
};

/* Can c start an HTTP request (a method's first character)? */
int http_may_start(uint8_t c);

/*
 * Look for the blank line that ends the header block in in[0..n).  *scan
 * holds where the previous call stopped (start at 0) so that a client
 * trickling bytes costs linear time.  Returns the head's length including
 * the blank line, 0 if it has not arrived yet, or -1 if it cannot fit in
 * HTTP_HEAD_MAX bytes.
 */
long http_head_end(const uint8_t *in, size_t n, size_t *scan);

/*
 * Parse one complete header block (the head_len bytes http_head_end()
 * found).  Returns 0, or an HTTP status code to answer with (400, 501,
 * 505) and sets req->error.
 */
int http_parse(const uint8_t *head, size_t len, struct http_request *req);

/*
 * The response for a status code (a one-line body, Connection: close).
 * Returns its length; out must hold HTTP_RESPONSE_MAX bytes.
 */
#define HTTP_RESPONSE_MAX 256
size_t http_response(int status, char *out);

/* The status for a SOCKS5 reply code from the owner (enum socks5_rep). */
int http_status_for_socks(uint8_t rep);

#endif
