/*
 * mux_abuse: a deliberately misbehaving sctpt client for the abuse tests
 * (tests/integration/test_abuse.py).  It holds a real cert and does the
 * real handshake and SCTP association, then speaks the stream protocol of
 * docs/streams.md badly on purpose:
 *
 *   flood    open --count streams on fresh odd ids and never answer the
 *            RST that refuses or resets one; with --outstanding N, at most
 *            N opens wait for an answer at a time
 *   cycle    --count opens, answering every RST and opening again on the
 *            same id (a refused-open flood by an otherwise correct client)
 *   sink     open --count streams and fill every window the server grants;
 *            the target is expected never to read
 *   overrun  open one stream and send --count bytes at once, ignoring credit
 *
 * Streams go to --dest HOST:PORT (an IPv4 OPEN, for a --proxy server) or,
 * without it, to the server's fixed target.  Output on stdout, one line per
 * event: "up N" (usable streams), "rst SID CODE", "down WHY", and every
 * half second "stat opened=.. ok=.. refused=.. reset=.. proto=.. sent=..".
 * It keeps the association until stdin reaches EOF or --hold seconds pass.
 *
 * A test tool only: it is built with the unit tests and never installed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/event.h>

#include "mux/proto.h"
#include "sctp/sctp.h"
#include "util/bytes.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/opt.h"
#include "wire/wire.h"

#define MAX_SID 65536
#define CHUNK (16 * 1024)

enum mode { FLOOD, CYCLE, SINK, OVERRUN };

enum sstate { IDLE = 0, OPENING, OPEN_OK, DEAD };

struct abuse {
	struct event_base *base;
	struct sctp_assoc *a;
	struct wire_link *link;
	enum mode mode;
	unsigned long count;
	uint8_t open_msg[MUX_OPEN_MAX];
	int open_len;
	unsigned nstreams;
	unsigned next_sid;         /* flood, sink: the next fresh odd id */
	unsigned cursor;           /* sink: where the last send stopped */
	unsigned long opened, ok, refused, reset, proto;
	unsigned long outstanding;  /* flood: most opens without an answer, 0 = all */
	uint64_t sent, credit_in;
	uint8_t state[MAX_SID];
	uint32_t credit[MAX_SID];  /* sink: what we may still send */
	uint8_t owe_rst[MAX_SID];  /* cycle: answer and reopen */
	unsigned nowe;
	int up;
};

static struct abuse ab;
static uint8_t chunk[CHUNK];

static int send_msg(uint16_t sid, uint32_t ppid, const void *p, size_t n)
{
	return sctp_assoc_send(ab.a, sid, ppid, p, n);
}

static int open_stream(uint16_t sid)
{
	int r = send_msg(sid, MUX_OPEN, ab.open_msg, (size_t)ab.open_len);

	if (r == 0) {
		ab.state[sid] = OPENING;
		ab.credit[sid] = MUX_INITIAL_WINDOW;
		ab.opened++;
	}
	return r;
}

/* Sink: fill the windows of every open stream, round-robin. 0 or SCTP_AGAIN. */
static int fill_windows(void)
{
	for (unsigned k = 0; k < ab.nstreams; k++) {
		unsigned sid = (ab.cursor + k) % ab.nstreams;

		while ((ab.state[sid] == OPENING || ab.state[sid] == OPEN_OK) && ab.credit[sid] > 0) {
			size_t n = ab.credit[sid] < CHUNK ? ab.credit[sid] : CHUNK;
			int r = send_msg((uint16_t)sid, MUX_DATA, chunk, n);

			if (r != 0) {
				ab.cursor = sid;
				return r;
			}
			ab.credit[sid] -= (uint32_t)n;
			ab.sent += n;
		}
	}
	return 0;
}

/* Do as much of the mode's work as the association takes now. */
static void pump(void)
{
	static const uint8_t reset_code = MUX_ERR_RESET;

	if (!ab.up)
		return;
	switch (ab.mode) {
	case FLOOD:
	case SINK:
		while (ab.opened < ab.count && ab.next_sid < ab.nstreams) {
			if (ab.outstanding > 0 &&
			    ab.opened - (ab.ok + ab.refused + ab.reset + ab.proto) >= ab.outstanding)
				return;
			if (open_stream((uint16_t)ab.next_sid) != 0)
				return;
			ab.next_sid += 2;
		}
		/* Sink: every stream open first, then fill what they were granted. */
		if (ab.mode == SINK)
			(void)fill_windows();
		return;
	case CYCLE:
		/* Keep up to 64 opens outstanding; answer and reuse refused ids. */
		for (unsigned sid = 1; sid < ab.nstreams && sid < 129; sid += 2) {
			if (ab.owe_rst[sid]) {
				if (send_msg((uint16_t)sid, MUX_RST, &reset_code, 1) != 0)
					return;
				ab.owe_rst[sid] = 0;
				ab.state[sid] = IDLE;
			}
			if (ab.state[sid] == IDLE && ab.opened < ab.count &&
			    open_stream((uint16_t)sid) != 0)
				return;
		}
		return;
	case OVERRUN:
		if (ab.opened == 0 && open_stream(1) != 0)
			return;
		while (ab.sent < ab.count && ab.state[1] != DEAD) {
			size_t n = ab.count - ab.sent < CHUNK ? (size_t)(ab.count - ab.sent) : CHUNK;

			if (send_msg(1, MUX_DATA, chunk, n) != 0)
				return;
			ab.sent += n;
		}
		return;
	}
}

static void on_up(struct sctp_assoc *a, void *arg)
{
	ab.nstreams = sctp_assoc_streams(a);
	if (ab.nstreams > MAX_SID)
		ab.nstreams = MAX_SID;
	ab.up = 1;
	printf("up %u\n", ab.nstreams);
	fflush(stdout);
	pump();
}

static void on_down(struct sctp_assoc *a, const char *why, void *arg)
{
	printf("down %s\n", why);
	fflush(stdout);
	ab.up = 0;
	event_base_loopexit(ab.base, NULL);
}

static void on_message(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
                       const uint8_t *data, size_t len, int eor, void *arg)
{
	if (!eor)
		return;   /* control messages are tiny; DATA from the server is ignored */
	switch (ppid) {
	case MUX_OPEN_OK:
		if (ab.state[sid] == OPENING) {
			ab.state[sid] = OPEN_OK;
			ab.ok++;
			if (ab.mode == FLOOD)
				pump();
		}
		break;
	case MUX_CREDIT:
		if (len == 4) {
			uint32_t inc = get_u32be(data);

			ab.credit[sid] += inc;
			ab.credit_in += inc;
			if (ab.mode == SINK && (ab.opened == ab.count || ab.next_sid >= ab.nstreams))
				(void)fill_windows();
		}
		break;
	case MUX_RST:
		if (len != 1)
			break;
		ab.state[sid] = DEAD;
		if (data[0] == MUX_ERR_LIMIT)
			ab.refused++;
		else if (data[0] == MUX_ERR_PROTOCOL)
			ab.proto++;
		else
			ab.reset++;
		if (ab.mode == OVERRUN || ab.mode == SINK) {
			printf("rst %u 0x%02x\n", sid, data[0]);
			fflush(stdout);
		}
		if (ab.mode == CYCLE)
			ab.owe_rst[sid] = 1;
		if (ab.mode == CYCLE || ab.mode == FLOOD)
			pump();
		break;
	default:
		break;
	}
}

static void on_writable(struct sctp_assoc *a, void *arg)
{
	pump();
}

static const struct sctp_assoc_cbs cbs = {
	.up = on_up,
	.down = on_down,
	.message = on_message,
	.writable = on_writable,
};

static void on_ready(struct wire_link *l, int ok, const char *why, void *arg)
{
	if (!ok) {
		printf("down handshake: %s\n", why);
		fflush(stdout);
		event_base_loopexit(ab.base, NULL);
		return;
	}
	ab.link = NULL;
	ab.a = sctp_assoc_connect(l, &cbs, NULL);
	if (ab.a == NULL) {
		printf("down cannot start the association\n");
		fflush(stdout);
		event_base_loopexit(ab.base, NULL);
	}
}

static void on_stat(evutil_socket_t fd, short what, void *arg)
{
	printf("stat opened=%lu ok=%lu refused=%lu reset=%lu proto=%lu sent=%llu credit=%llu\n",
	       ab.opened, ab.ok, ab.refused, ab.reset, ab.proto,
	       (unsigned long long)ab.sent, (unsigned long long)ab.credit_in);
	fflush(stdout);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	char buf[256];

	if (read(fd, buf, sizeof(buf)) <= 0)
		event_base_loopexit(ab.base, NULL);
}

static void on_hold(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(ab.base, NULL);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: mux_abuse --server udp://HOST:PORT --cert CERT --mode "
	        "flood|cycle|sink|overrun\n"
	        "                 [--count N] [--dest IPV4:PORT] [--outstanding N] [--hold SECS]"
	        " [-v]\n");
	exit(2);
}

static int parse_dest(const char *s, struct mux_dest *d)
{
	char host[64];
	uint16_t port;

	memset(d, 0, sizeof(*d));
	if (netaddr_parse_hostport(s, host, sizeof(host), &port, 0) < 0 ||
	    inet_pton(AF_INET, host, d->addr) != 1 || port == 0)
		return -1;
	d->type = MUX_DEST_IPV4;
	d->port = port;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "cert", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'n' },
		{ "dest", required_argument, NULL, 'd' },
		{ "hold", required_argument, NULL, 'H' },
		{ "outstanding", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	const char *server = NULL, *certs = NULL, *mode = NULL;
	struct mux_dest dest = { .type = MUX_DEST_NONE };
	struct wire_endpoint ep;
	struct wire_config wc;
	struct wire_cert cert;
	struct sctp_tuning t;
	char scheme[16], host[NETADDR_HOST_MAX];
	uint16_t port;
	unsigned long hold = 60;
	int opt, verbose = 0;
	struct timeval half = { 0, 500000 }, holdtv;
	struct event *stat_ev, *stdin_ev, *hold_ev;

	ab.count = 1;
	while ((opt = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (opt) {
		case 's': server = optarg; break;
		case 'c': certs = optarg; break;
		case 'm': mode = optarg; break;
		case 'n':
			if (opt_parse_uint(optarg, 1, 1ul << 40, &ab.count) < 0)
				usage();
			break;
		case 'd':
			if (parse_dest(optarg, &dest) < 0)
				usage();
			break;
		case 'H':
			if (opt_parse_uint(optarg, 1, 3600, &hold) < 0)
				usage();
			break;
		case 'o':
			if (opt_parse_uint(optarg, 1, 65535, &ab.outstanding) < 0)
				usage();
			break;
		case 'v': verbose++; break;
		default: usage();
		}
	}
	if (server == NULL || certs == NULL || mode == NULL)
		usage();
	if (strcmp(mode, "flood") == 0)
		ab.mode = FLOOD;
	else if (strcmp(mode, "cycle") == 0)
		ab.mode = CYCLE;
	else if (strcmp(mode, "sink") == 0)
		ab.mode = SINK;
	else if (strcmp(mode, "overrun") == 0)
		ab.mode = OVERRUN;
	else
		usage();
	if (strncmp(certs, "cert=", 5) == 0)
		certs += 5;
	if (wire_cert_decode(certs, &cert) < 0)
		usage();
	memset(&ep, 0, sizeof(ep));
	if (netaddr_parse_url(server, scheme, sizeof(scheme), host, sizeof(host), &port) < 0 ||
	    strcmp(scheme, "udp") != 0 ||
	    netaddr_from_numeric(host, port, &ep.addr, &ep.len) < 0)
		usage();
	opt_set_verbosity(verbose, 0);
	ab.open_len = proto_encode_open(&dest, ab.open_msg, sizeof(ab.open_msg));
	if (ab.open_len < 0)
		usage();
	ab.next_sid = 1;
	memset(chunk, 'A', sizeof(chunk));

	ab.base = event_base_new();
	sctp_tuning_defaults(&t);
	t.streams = 65535;
	if (ab.base == NULL || sctp_global_init(ab.base, &t) < 0) {
		fprintf(stderr, "mux_abuse: cannot initialise the event loop or SCTP\n");
		return 1;
	}
	wire_config_defaults(&wc);
	wc.cert = &cert;
	ab.link = wire_link_connect(ab.base, &ep, 1, &wc, on_ready, NULL);
	if (ab.link == NULL) {
		fprintf(stderr, "mux_abuse: cannot connect\n");
		return 1;
	}
	holdtv.tv_sec = (time_t)hold;
	holdtv.tv_usec = 0;
	stat_ev = event_new(ab.base, -1, EV_PERSIST, on_stat, NULL);
	stdin_ev = event_new(ab.base, 0, EV_READ | EV_PERSIST, on_stdin, NULL);
	hold_ev = evtimer_new(ab.base, on_hold, NULL);
	if (stat_ev == NULL || stdin_ev == NULL || hold_ev == NULL)
		return 1;
	event_add(stat_ev, &half);
	event_add(stdin_ev, NULL);
	event_add(hold_ev, &holdtv);
	event_base_dispatch(ab.base);
	on_stat(-1, 0, NULL);
	event_free(stat_ev);
	event_free(stdin_ev);
	event_free(hold_ev);
	sctp_assoc_free(ab.a);
	return 0;
}
