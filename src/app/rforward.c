/*
 * Remote forwards, the client's side (docs/forwarding.md).  Each -R is
 * asked for with LISTEN whenever the association comes up (so a server
 * restart or a new association restores it); the answer, or a refusal with
 * the rule that refused it, is logged.  A server too old to know LISTEN
 * ignores it: after RFWD_ANSWER_TIMEOUT we say so and give up until the
 * next association.
 *
 * Connections the server sends back (FWD_OPEN) are connected by egress,
 * the same code the server uses: a forward with a destination through an
 * egress in target mode (its own HOST:HOSTPORT, whatever address that is),
 * reverse SOCKS through one in proxy mode whose ACL refuses internal
 * addresses unless --remote-allow admits them.  The server never names a
 * destination for a forward that has one: it sends the forward's number.
 */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "util/fault.h"
#include "util/log.h"

enum rfwd_state {
	RFWD_IDLE,        /* no association, or refused until the next one */
	RFWD_ASKING,      /* LISTEN sent */
	RFWD_LISTENING,   /* LISTEN_OK received */
	RFWD_RETRY,       /* the port was busy: ask again when the timer fires */
};

/*
 * A fixed port can be busy for a while after the association is
 * re-established: the server still holds the old association, and its
 * listener, until it notices that one is dead.  Such a refusal (0x16) is
 * retried with backoff; other refusals wait for the next association.
 */
#define RFWD_RETRY_MIN 2
#define RFWD_RETRY_MAX 60

struct rfwd {
	struct rfwd_client *rc;
	int used;                      /* a configured forward (a reload frees slots) */
	uint32_t id;                   /* in LISTEN and FWD_OPEN; never reused in a run */
	struct fwd_spec spec;
	char text[FWD_SPEC_MAX + 1];   /* as given, for logs */
	struct egress *egress;         /* target mode, made on first need and kept with
	                                  the slot (connections in flight may use it) */
	struct mux_stream *s;          /* the listen stream while asking or listening */
	struct event *timer;           /* answer deadline */
	enum rfwd_state state;
	uint16_t port;
	unsigned retry_s;              /* after "address in use": next wait, 0 = none */
	int revoked;                   /* the server closed it by policy: ask until allowed */
};

struct rfwd_client {
	struct event_base *base;
	struct evdns_base *dns;
	struct rfwd_config cfg;
	struct egress *socks_egress;   /* reverse SOCKS, with the --remote-allow ACL */
	struct mux_session *m;
	uint32_t next_id;
	struct rfwd f[RFWD_MAX];
};

static struct log_ratelimit rfwd_rl = LOG_RATELIMIT_INIT(10.0, 5);

static const char *spec_of(const struct rfwd *f)
{
	return f->text;
}

static int is_socks(const struct rfwd *f)
{
	return f->spec.host[0] == '\0';
}

/* Forget the listen stream without closing it (it is gone or going). */
static void rfwd_detach(struct rfwd *f)
{
	if (f->s != NULL)
		mux_stream_set_gone(f->s, NULL, NULL);
	f->s = NULL;
	f->port = 0;
	evtimer_del(f->timer);
	f->state = RFWD_IDLE;
}

static void rfwd_schedule_retry(struct rfwd *f);

/* A refusal that a server's reload may lift (its policy), as opposed to a broken request. */
static int is_policy_code(int err)
{
	return err == MUX_ERR_NO_PERMIT || err == MUX_ERR_GATEWAY || err == MUX_ERR_LIMIT;
}

static void on_gone(void *arg)
{
	struct rfwd *f = arg;
	uint8_t code = f->s != NULL ? mux_stream_peer_code(f->s) : 0;
	int listening = f->state == RFWD_LISTENING;

	f->s = NULL;
	/* The association going down says so itself; this is the server's doing. */
	if (!listening || !mux_session_is_up(f->rc->m)) {
		rfwd_detach(f);
		return;
	}
	if (is_policy_code(code)) {
		/* Its policy changed (a reload): it may change back, so keep asking. */
		log_warn("remote forward -R %s: the server closed its listener: %s (code 0x%02x); "
		         "asking again later", spec_of(f), proto_err_str(code), code);
		rfwd_detach(f);
		f->revoked = 1;
		f->retry_s = 0;
		rfwd_schedule_retry(f);
		return;
	}
	log_warn("remote forward -R %s: the server closed its listener", spec_of(f));
	rfwd_detach(f);
}

static void on_answer(struct mux_stream *s, int err, uint16_t port, void *arg)
{
	struct rfwd *f = arg;

	if (f->s != s)
		return;   /* we gave up on it already (answer_timeout) */
	evtimer_del(f->timer);
	if (err != 0) {
		/* s goes right after.  A failing association is reported by upstream. */
		int up = mux_session_is_up(f->rc->m);
		int again = (err == MUX_ERR_BIND && f->spec.port != 0) ||
		            (f->revoked && is_policy_code(err));

		if (up)
			log_warn("remote forward -R %s refused by the server: %s (code 0x%02x)%s",
			        spec_of(f), proto_err_str((uint8_t)err), err,
			        again ? "; asking again later" : "");
		rfwd_detach(f);
		if (up && again)
			rfwd_schedule_retry(f);
		return;
	}
	f->retry_s = 0;
	f->revoked = 0;
	f->state = RFWD_LISTENING;
	f->port = port;
	log_notice("remote forward -R %s: the server listens on port %u%s", spec_of(f), port,
	           is_socks(f) ? " (reverse SOCKS: this client connects)" : "");
}

static void rfwd_ask(struct rfwd *f);

static void rfwd_schedule_retry(struct rfwd *f)
{
	struct timeval tv;

	f->retry_s = f->retry_s == 0 ? RFWD_RETRY_MIN : f->retry_s * 2;
	if (f->retry_s > RFWD_RETRY_MAX)
		f->retry_s = RFWD_RETRY_MAX;
	tv.tv_sec = f->retry_s;
	tv.tv_usec = 0;
	f->state = RFWD_RETRY;
	if (evtimer_add(f->timer, &tv) < 0) {
		log_warn("remote forward -R %s: cannot schedule asking again", spec_of(f));
		f->state = RFWD_IDLE;
	}
}

static void answer_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rfwd *f = arg;
	struct mux_stream *s = f->s;

	if (f->state == RFWD_RETRY) {
		f->state = RFWD_IDLE;
		if (mux_session_is_up(f->rc->m))
			rfwd_ask(f);
		return;
	}

	log_warn("remote forward -R %s: no answer from the server within %d s; a server without "
	        "remote-forward support ignores the request", spec_of(f), RFWD_ANSWER_TIMEOUT);
	rfwd_detach(f);
	if (s != NULL)
		mux_listen_close(s, MUX_ERR_TIMEOUT);
}

static void rfwd_ask(struct rfwd *f)
{
	const struct fwd_spec *sp = &f->spec;
	struct timeval tv = { RFWD_ANSWER_TIMEOUT, 0 };
	struct mux_listen_req req;

	memset(&req, 0, sizeof(req));
	req.id = f->id;
	req.flags = sp->host[0] == '\0' ? MUX_LISTEN_SOCKS : 0;
	req.port = sp->port;
	if (sp->bind[0] == '\0' || strcmp(sp->bind, "localhost") == 0) {
		req.atyp = MUX_DEST_NONE;
	} else if (strcmp(sp->bind, "*") == 0) {
		req.atyp = MUX_DEST_IPV4;   /* 0.0.0.0 */
	} else if (inet_pton(AF_INET, sp->bind, req.addr) == 1) {
		req.atyp = MUX_DEST_IPV4;
	} else if (inet_pton(AF_INET6, sp->bind, req.addr) == 1) {
		req.atyp = MUX_DEST_IPV6;
	} else {
		log_err("remote forward -R %s: bad listening address", spec_of(f));   /* parser bug */
		return;
	}
	f->s = mux_listen_open(f->rc->m, &req, on_answer, f);
	if (f->s == NULL) {
		log_warn("remote forward -R %s: no free stream to ask for it", spec_of(f));
		return;
	}
	mux_stream_set_gone(f->s, on_gone, f);
	f->state = RFWD_ASKING;
	if (evtimer_add(f->timer, &tv) < 0)
		log_warn("remote forward -R %s: cannot time its request", spec_of(f));
}

void rfwd_client_up(struct rfwd_client *rc, struct mux_session *m)
{
	if (rc == NULL)
		return;
	rc->m = m;
	for (unsigned i = 0; i < RFWD_MAX; i++) {
		if (!rc->f[i].used)
			continue;
		if (rc->f[i].state != RFWD_IDLE)
			rfwd_detach(&rc->f[i]);
		rc->f[i].retry_s = 0;
		rc->f[i].revoked = 0;
		rfwd_ask(&rc->f[i]);
	}
}

void rfwd_client_down(struct rfwd_client *rc)
{
	if (rc == NULL)
		return;
	for (unsigned i = 0; i < RFWD_MAX; i++)
		if (rc->f[i].used)
			rfwd_detach(&rc->f[i]);
	rc->m = NULL;
}

void rfwd_client_open(struct rfwd_client *rc, struct mux_stream *s, uint32_t id,
                      const struct mux_dest *dest)
{
	struct rfwd *f = NULL;
	char dbuf[300];
	int any = 0;

	for (unsigned i = 0; rc != NULL && i < RFWD_MAX; i++) {
		any |= rc->f[i].used;
		if (rc->f[i].used && id != 0 && rc->f[i].id == id)
			f = &rc->f[i];
	}
	if (!any) {
		/* As a client without remote forwards has always answered. */
		mux_stream_reject(s, MUX_ERR_UNSUPPORTED);
		return;
	}
	if (f == NULL) {
		log_ratelimited(&rfwd_rl, LOG_LEVEL_WARN,
		                "the server sent a connection for unknown remote forward #%u", id);
		mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
		return;
	}
	/*
	 * LISTEN_OK and the first FWD_OPEN travel on different SCTP streams,
	 * so under loss the connection may arrive first: asking is enough.
	 */
	if (f->state != RFWD_LISTENING && f->state != RFWD_ASKING) {
		log_ratelimited(&rfwd_rl, LOG_LEVEL_WARN,
		                "remote forward -R %s: the server sent a connection for a listener "
		                "we do not have", spec_of(f));
		mux_stream_reject(s, MUX_ERR_NOT_ALLOWED);
		return;
	}
	/* A forward with a destination takes none from the server, SOCKS needs one. */
	if ((dest->type == MUX_DEST_NONE) != !is_socks(f)) {
		log_ratelimited(&rfwd_rl, LOG_LEVEL_WARN,
		                "remote forward -R %s: the server sent a connection with %s "
		                "destination; refused", spec_of(f), is_socks(f) ? "no" : "a");
		mux_stream_reject(s, MUX_ERR_PROTOCOL);
		return;
	}
	if (is_socks(f))
		log_info("remote forward -R %s: connection to %s", spec_of(f),
		         log_addr(proto_dest_str(dest, dbuf, sizeof(dbuf))));
	else
		log_info("remote forward -R %s: connection", spec_of(f));
	egress_open(f->egress != NULL ? f->egress : rc->socks_egress, s, dest, NULL);
}

uint16_t rfwd_client_port(const struct rfwd_client *rc, unsigned i)
{
	return rc != NULL && i < RFWD_MAX && rc->f[i].used ? rc->f[i].port : 0;
}

static struct evdns_base *dns_new(struct event_base *base, const char *resolv_conf)
{
	struct evdns_base *dns = evdns_base_new(base, 0);
	const char *path = resolv_conf != NULL ? resolv_conf : "/etc/resolv.conf";
	int r;

	if (dns == NULL)
		return NULL;
	r = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, path);
	if (r != 0)
		log_warn("name servers from %s not usable (code %d); remote forwards resolve "
		         "only /etc/hosts names", path, r);
	(void)evdns_base_load_hosts(dns, NULL);
	(void)evdns_base_set_option(dns, "timeout:", "3");
	(void)evdns_base_set_option(dns, "attempts:", "2");
	return dns;
}

/* Make slot f forward sp: its timer, and its target egress unless reverse SOCKS.  0 or -1. */
static int rfwd_slot_use(struct rfwd_client *rc, struct rfwd *f, const struct fwd_spec *sp,
                         const char *text)
{
	struct egress_config ec;

	if (f->timer == NULL)
		f->timer = FAULT("rfwd_timer") ? NULL : evtimer_new(rc->base, answer_timeout, f);
	if (f->timer == NULL)
		return -1;
	if (sp->host[0] != '\0') {
		memset(&ec, 0, sizeof(ec));
		ec.mode = EGRESS_TARGET;
		ec.connect_timeout = rc->cfg.connect_timeout;
		snprintf(ec.target_host, sizeof(ec.target_host), "%s", sp->host);
		ec.target_port = sp->hostport;
		/* A connect in flight reads only the (empty) ACL: reusing the egress is safe. */
		if (f->egress != NULL)
			egress_reconfigure(f->egress, &ec);
		else if ((f->egress = egress_new(rc->base, rc->dns, &ec)) == NULL)
			return -1;
	}
	f->spec = *sp;
	snprintf(f->text, sizeof(f->text), "%s", text);
	f->id = rc->next_id++;
	f->state = RFWD_IDLE;
	f->retry_s = 0;
	f->revoked = 0;
	f->port = 0;
	f->used = 1;
	return 0;
}

/* The forward of slot f is no longer wanted: its listener stream is closed (the server
 * closes the listener); connections already made keep going. */
static void rfwd_slot_drop(struct rfwd *f)
{
	struct mux_stream *s = f->s;

	rfwd_detach(f);
	if (s != NULL)
		mux_listen_close(s, MUX_ERR_RESET);
	f->used = 0;
}

struct rfwd_client *rfwd_client_new(struct event_base *base, const struct rfwd_config *cfg)
{
	struct rfwd_client *rc = calloc(1, sizeof(*rc));
	struct egress_config ec;

	if (rc == NULL)
		return NULL;
	rc->base = base;
	rc->cfg = *cfg;
	rc->next_id = 1;
	for (unsigned i = 0; i < RFWD_MAX; i++)
		rc->f[i].rc = rc;
	rc->dns = dns_new(base, cfg->resolv_conf);
	if (rc->dns == NULL)
		goto fail;
	memset(&ec, 0, sizeof(ec));
	ec.mode = EGRESS_PROXY;
	ec.connect_timeout = cfg->connect_timeout;
	memcpy(ec.allow, cfg->allow, cfg->nallow * sizeof(cfg->allow[0]));
	ec.nallow = cfg->nallow;
	rc->socks_egress = egress_new(base, rc->dns, &ec);
	if (rc->socks_egress == NULL)
		goto fail;
	for (unsigned i = 0; i < cfg->n; i++)
		if (rfwd_slot_use(rc, &rc->f[i], &cfg->spec[i], cfg->text[i]) < 0)
			goto fail;
	return rc;
fail:
	rfwd_client_free(rc);
	return NULL;
}

static int same_spec(const struct fwd_spec *a, const struct fwd_spec *b)
{
	return strcmp(a->bind, b->bind) == 0 && a->port == b->port &&
	       strcmp(a->host, b->host) == 0 && a->hostport == b->hostport;
}

void rfwd_client_reconfigure(struct rfwd_client *rc, const struct rfwd_config *cfg)
{
	struct egress_config ec;
	int keep[RFWD_MAX] = { 0 }, taken[RFWD_MAX] = { 0 };
	unsigned i, j;

	/* Which running forwards the new list still has (each matched once). */
	for (j = 0; j < cfg->n; j++)
		for (i = 0; i < RFWD_MAX; i++)
			if (rc->f[i].used && !keep[i] && same_spec(&rc->f[i].spec, &cfg->spec[j])) {
				keep[i] = 1;
				taken[j] = 1;
				break;
			}
	for (i = 0; i < RFWD_MAX; i++) {
		if (!rc->f[i].used || keep[i])
			continue;
		log_notice("reload: remote forward -R %s removed%s", spec_of(&rc->f[i]),
		           rc->f[i].s != NULL ? " (the server closes its listener)" : "");
		rfwd_slot_drop(&rc->f[i]);
	}
	/* Reverse SOCKS connections from now on use the new --remote-allow. */
	memset(&ec, 0, sizeof(ec));
	ec.mode = EGRESS_PROXY;
	ec.connect_timeout = cfg->connect_timeout;
	memcpy(ec.allow, cfg->allow, cfg->nallow * sizeof(cfg->allow[0]));
	ec.nallow = cfg->nallow;
	egress_reconfigure(rc->socks_egress, &ec);
	memcpy(rc->cfg.allow, cfg->allow, sizeof(rc->cfg.allow));
	rc->cfg.nallow = cfg->nallow;
	for (j = 0; j < cfg->n; j++) {
		struct rfwd *f = NULL;
		int up = rc->m != NULL && mux_session_is_up(rc->m);

		if (taken[j])
			continue;
		for (i = 0; i < RFWD_MAX && f == NULL; i++)
			if (!rc->f[i].used)
				f = &rc->f[i];
		if (f == NULL || rfwd_slot_use(rc, f, &cfg->spec[j], cfg->text[j]) < 0) {
			log_warn("reload: remote forward -R %s not added: %s", cfg->text[j],
			         f == NULL ? "too many forwards" : "out of memory");
			continue;
		}
		log_notice("reload: remote forward -R %s added%s", spec_of(f),
		           up ? "; asking the server" : "; asked for when the association is up");
		if (up)
			rfwd_ask(f);
	}
}

void rfwd_client_free(struct rfwd_client *rc)
{
	if (rc == NULL)
		return;
	for (unsigned i = 0; i < RFWD_MAX; i++) {
		struct rfwd *f = &rc->f[i];

		if (f->s != NULL)
			mux_stream_set_gone(f->s, NULL, NULL);
		if (f->timer != NULL)
			event_free(f->timer);
		egress_free(f->egress);
	}
	egress_free(rc->socks_egress);
	if (rc->dns != NULL)
		evdns_base_free(rc->dns, 1);
	free(rc);
}
