/*
 * The stream protocol spoken on each SCTP stream (docs/streams.md): message
 * types are carried in the SCTP PPID, payloads are encoded and decoded here.
 * Pure functions, no I/O.
 */
#ifndef SCTPT_MUX_PROTO_H
#define SCTPT_MUX_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum mux_ppid {
	MUX_OPEN = 1,      /* opener -> acceptor: destination */
	MUX_OPEN_OK = 2,   /* acceptor -> opener: connected */
	MUX_DATA = 3,      /* bytes of the proxied connection */
	MUX_FIN = 4,       /* no more DATA in this direction (half-close) */
	MUX_CREDIT = 5,    /* grant: the peer may send this many more bytes */
	MUX_RST = 6,       /* abort / refusal, with a code; terminal */
	MUX_CLOSE = 7,     /* sender is done with this stream; terminal */
};

/* RST codes: 1..8 are the SOCKS5 reply codes with the same meaning. */
enum mux_err {
	MUX_ERR_GENERAL = 0x01,
	MUX_ERR_NOT_ALLOWED = 0x02,
	MUX_ERR_NET_UNREACH = 0x03,
	MUX_ERR_HOST_UNREACH = 0x04,
	MUX_ERR_REFUSED = 0x05,
	MUX_ERR_TIMEOUT = 0x06,
	MUX_ERR_ATYP = 0x08,
	MUX_ERR_RESET = 0x10,      /* the application side reset its connection */
	MUX_ERR_PROTOCOL = 0x11,   /* the peer broke this protocol */
	MUX_ERR_LIMIT = 0x12,      /* a configured limit was reached */
	MUX_ERR_SHUTDOWN = 0x13,   /* the peer process is shutting down */
};

enum mux_dest_type {
	MUX_DEST_NONE = 0,     /* the server's fixed target */
	MUX_DEST_IPV4 = 1,
	MUX_DEST_DOMAIN = 3,
	MUX_DEST_IPV6 = 4,
};

struct mux_dest {
	uint8_t type;          /* enum mux_dest_type */
	uint8_t addr[16];      /* IPv4 in the first 4 bytes, or IPv6 */
	char domain[256];      /* NUL-terminated, 1..255 bytes */
	uint16_t port;
};

#define MUX_PROTO_VERSION 1
#define MUX_INITIAL_WINDOW (32 * 1024)  /* credit each side starts with */
#define MUX_CTRL_MAX 300                /* largest control message */
#define MUX_OPEN_MAX (4 + 1 + 255)

/* Encode an OPEN payload; returns its length, or -1 if dest is invalid. */
int proto_encode_open(const struct mux_dest *d, uint8_t *out, size_t outlen);
/* Decode an OPEN payload strictly.  0, or -1 (malformed), -2 (bad type). */
int proto_decode_open(const uint8_t *p, size_t n, struct mux_dest *out);

/* CREDIT: a 4-byte big-endian increment, never 0. */
void proto_encode_credit(uint32_t inc, uint8_t out[4]);
int proto_decode_credit(const uint8_t *p, size_t n, uint32_t *inc);

/* RST: one code byte. */
int proto_decode_rst(const uint8_t *p, size_t n, uint8_t *code);

/* OPEN_OK, FIN and CLOSE carry one reserved zero byte (SCTP has no empty messages). */
int proto_decode_empty(const uint8_t *p, size_t n);

/* Short name of an error code, for logs. */
const char *proto_err_str(uint8_t code);
/* "host:port" of a destination, for logs. */
const char *proto_dest_str(const struct mux_dest *d, char *buf, size_t len);

#endif
