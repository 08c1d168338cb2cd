/*
 * Per-stream credit accounting (docs/streams.md, "Credit").  Pure
 * arithmetic, no I/O: the mux calls these as bytes are sent, received,
 * written to TCP and granted, and unit tests drive them directly.
 */
#ifndef SCTPT_MUX_CREDIT_H
#define SCTPT_MUX_CREDIT_H

#include <stddef.h>
#include <stdint.h>

#define CREDIT_MAX 0x7fffffffu   /* a sender's credit never exceeds this */

struct mux_credit {
	uint32_t tx;           /* bytes we may still send */
	uint32_t rx_allowed;   /* bytes the peer may still send us: granted and sent */
	uint32_t rx_consumed;  /* received bytes delivered since our last grant */
	uint32_t pending;      /* grant decided but not yet sent (not in rx_allowed) */
	uint32_t window;       /* our receive window for this stream */
	uint32_t epoch_bytes;  /* consumed since epoch_ms (auto-tuning) */
	uint64_t epoch_ms;     /* 0: no epoch yet */
};

/*
 * Start a stream: both sides begin with `initial`; we enlarge our receive
 * window by `extra`, which is pending until its CREDIT is sent.
 * Invariant: rx_allowed + pending + rx_consumed + bytes held == window.
 */
void credit_init(struct mux_credit *c, uint32_t initial, uint32_t extra);
/* n bytes arrived from the peer.  0, or -1 if that exceeds its credit. */
int credit_receive(struct mux_credit *c, size_t n);
/* n received bytes were written to the TCP side. */
void credit_consumed(struct mux_credit *c, size_t n);
/*
 * Turn consumed bytes into a pending grant when at least a quarter window
 * has been consumed, or any amount if force.  Returns 1 if pending grew.
 */
int credit_grant(struct mux_credit *c, int force);
/*
 * Window auto-tuning (docs/streams.md, "Credit"): n more bytes were
 * written to the TCP side at now_ms.  Once a whole window has been
 * consumed, if that took less than four round trips (rtt_ms) the window
 * is under four times what the stream moves per round trip, too little
 * to keep the peer sending through a loss's repair (the data behind a
 * hole is held, so no grant goes out until the hole is filled): returns
 * how much the window should grow (it doubles, up to max), else 0.
 */
uint32_t credit_autotune(struct mux_credit *c, size_t n, uint64_t now_ms,
                         uint32_t rtt_ms, uint32_t max);
/* Enlarge the window by n; the peer learns of it with the next grant. */
void credit_grow(struct mux_credit *c, uint32_t n);
/* The pending grant was sent: from now on the peer may spend it. */
void credit_grant_sent(struct mux_credit *c);
/* The peer granted inc more.  0, or -1 if inc is 0 or overflows CREDIT_MAX. */
int credit_add(struct mux_credit *c, uint32_t inc);
/* How many of avail bytes may go in the next DATA message (<= max_msg). */
size_t credit_sendable(const struct mux_credit *c, size_t avail, size_t max_msg);
/* n bytes were sent. */
void credit_sent(struct mux_credit *c, size_t n);

#endif
