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
	/* Remote forwards (docs/forwarding.md): 8..11. */
	MUX_LISTEN = 8,    /* client -> server, odd id: listen for me */
	MUX_LISTEN_OK = 9, /* server -> client: listening, on this port */
	MUX_FWD_OPEN = 10, /* server -> client, even id: a connection came in */
	/* The UDP relay (docs/udp-relay.md): 12..15. */
	MUX_UDP_OPEN = 12, /* client -> server: open a UDP association */
	MUX_UDP_OK = 13,   /* server -> client: the association is ready */
	MUX_UDP_DGRAM = 14,/* both, unordered: udp header + one datagram */
};

/* RST codes: 1..8 are the SOCKS5 reply codes with the same meaning. */
enum mux_err {
	MUX_ERR_GENERAL = 0x01,
	MUX_ERR_NOT_ALLOWED = 0x02,
	MUX_ERR_NET_UNREACH = 0x03,
	MUX_ERR_HOST_UNREACH = 0x04,
	MUX_ERR_REFUSED = 0x05,
	MUX_ERR_TIMEOUT = 0x06,
	MUX_ERR_UNSUPPORTED = 0x07, /* not offered by the peer: an unknown message type,
	                            * the UDP relay off (SOCKS5: command not supported) */
	MUX_ERR_ATYP = 0x08,
	MUX_ERR_RESET = 0x10,      /* the application side reset its connection */
	MUX_ERR_PROTOCOL = 0x11,   /* the peer broke this protocol */
	MUX_ERR_LIMIT = 0x12,      /* a configured limit was reached */
	MUX_ERR_SHUTDOWN = 0x13,   /* the peer process is shutting down */
	/* LISTEN refusals (docs/forwarding.md). */
	MUX_ERR_NO_PERMIT = 0x14,  /* no --permit-listen rule matches */
	MUX_ERR_GATEWAY = 0x15,    /* non-loopback address without --gateway-ports */
	MUX_ERR_BIND = 0x16,       /* the server could not listen (address in use, ...) */
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
#define MUX_START_WINDOW (256 * 1024)   /* sctpt's window right after OPEN */
#define MUX_CTRL_MAX 300                /* largest control message */
#define MUX_OPEN_MAX (4 + 1 + 255)

/* Encode an OPEN payload; returns its length, or -1 if dest is invalid. */
int proto_encode_open(const struct mux_dest *d, uint8_t *out, size_t outlen);
/* Decode an OPEN payload strictly.  0, or -1 (malformed), -2 (bad type). */
int proto_decode_open(const uint8_t *p, size_t n, struct mux_dest *out);

/*
 * UDP relay (docs/udp-relay.md).  UDP_OPEN carries `ver=1` and one
 * reserved zero byte; UDP_OK one zero byte.  A UDP_DGRAM is a header --
 * `type` (1) . address . `port` (2), the OPEN address encoding -- then the
 * datagram (0..MUX_UDP_PAYLOAD_MAX bytes).  Client to server the address
 * is the destination (IPv4, IPv6 or a name); server to client the source
 * of a reply (IPv4 or IPv6).
 */
#define MUX_UDP_HDR_MAX (1 + 1 + 255 + 2)
#define MUX_UDP_PAYLOAD_MAX 65507        /* the largest IPv4 UDP payload */
#define MUX_UDP_MSG_MAX (MUX_UDP_HDR_MAX + MUX_UDP_PAYLOAD_MAX)
int proto_encode_udp_open(uint8_t out[2]);
int proto_decode_udp_open(const uint8_t *p, size_t n);
/* Encode a datagram header; its length, or -1 (bad dest, port 0, too small). */
int proto_encode_udp_hdr(const struct mux_dest *d, uint8_t *out, size_t outlen);
/*
 * Decode the header at the start of a UDP_DGRAM strictly: *hdrlen gets its
 * length (the datagram follows).  0, -1 (malformed, port 0, or more than
 * MUX_UDP_PAYLOAD_MAX bytes follow), -2 (unknown address type).
 */
int proto_decode_udp_hdr(const uint8_t *p, size_t n, struct mux_dest *out, size_t *hdrlen);

/* CREDIT: a 4-byte big-endian increment, never 0. */
void proto_encode_credit(uint32_t inc, uint8_t out[4]);
int proto_decode_credit(const uint8_t *p, size_t n, uint32_t *inc);

/* RST: one code byte. */
int proto_decode_rst(const uint8_t *p, size_t n, uint8_t *code);

/* OPEN_OK, FIN and CLOSE carry one reserved zero byte (SCTP has no empty messages). */
int proto_decode_empty(const uint8_t *p, size_t n);

/*
 * LISTEN (client -> server): ver=1 (1) . id (4) . flags (1) . atyp (1) .
 * address . port (2).  flags bit 0: reverse SOCKS (no destination); other
 * bits must be 0.  atyp 0: the server's loopback (no address), 1 IPv4 (4
 * bytes; 0.0.0.0 = every interface), 4 IPv6 (16 bytes).  Port 0: any.
 */
#define MUX_LISTEN_SOCKS 0x01
#define MUX_LISTEN_MAX (1 + 4 + 1 + 1 + 16 + 2)

struct mux_listen_req {
	uint32_t id;           /* the client's number for this forward */
	uint8_t flags;         /* MUX_LISTEN_SOCKS */
	uint8_t atyp;          /* MUX_DEST_NONE (loopback), _IPV4 or _IPV6 */
	uint8_t addr[16];
	uint16_t port;
};

int proto_encode_listen(const struct mux_listen_req *r, uint8_t *out, size_t outlen);
/* 0, or -1 if malformed. */
int proto_decode_listen(const uint8_t *p, size_t n, struct mux_listen_req *out);

/* LISTEN_OK: the port listened on (2), never 0. */
void proto_encode_listen_ok(uint16_t port, uint8_t out[2]);
int proto_decode_listen_ok(const uint8_t *p, size_t n, uint16_t *port);

/*
 * FWD_OPEN (server -> client): id (4), then an OPEN payload: type 0 (no
 * address) for the forward's own destination, an address for reverse
 * SOCKS.  The OPEN rules apply to that part.
 */
#define MUX_FWD_OPEN_MAX (4 + MUX_OPEN_MAX)
int proto_encode_fwd_open(uint32_t id, const struct mux_dest *d, uint8_t *out, size_t outlen);
/* 0, or -1 (malformed), -2 (bad address type). */
int proto_decode_fwd_open(const uint8_t *p, size_t n, uint32_t *id, struct mux_dest *out);

/* Short name of an error code, for logs. */
const char *proto_err_str(uint8_t code);
/* "host:port" of a destination, for logs. */
const char *proto_dest_str(const struct mux_dest *d, char *buf, size_t len);

#endif
