/*
 * The API server of the lab tools: evhttp with bounds, the admission checks
 * of http.h, and JSON replies.  One handler per server gets every admitted
 * request with its path.
 */
#include "lab/http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>

#include "util/log.h"
#include "util/netaddr.h"

#define HTTP_EVHTTP_MAX_BODY (LAB_HTTP_MAX_BODY * 4)  /* evhttp's own limit, above ours */
#define HTTP_MAX_HEADERS 8192
#define HTTP_TIMEOUT_S 10
#define HTTP_HOST_MAX 80
#define HTTP_MAX_FILE (4u << 20)

struct lab_http {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	lab_http_handler handler;
	void *arg;
	char name[32];
	struct log_ratelimit refused_rl;
};

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return code < 500 ? "Error" : "Internal Server Error";
	}
}

static void common_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Content-Security-Policy",
	                  "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
}

void lab_http_reply_json(struct evhttp_request *req, int code, json_t *j)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text;

	if (j == NULL)
		j = json_object();
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	common_headers(req, "application/json");
	if (text == NULL) {
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
		evhttp_send_reply(req, 500, reason(500), out);
		return;
	}
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\n", 1);
	free(text);
	evhttp_send_reply(req, code, reason(code), out);
}

void lab_http_reply_error(struct evhttp_request *req, int code, const char *msg)
{
	lab_http_reply_json(req, code, json_pack("{s:s}", "error", msg));
}

void lab_http_reply_text(struct evhttp_request *req, int code, const char *type,
                         const char *text, size_t len, const char *filename)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	common_headers(req, type);
	if (filename != NULL) {
		char cd[160];

		snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", filename);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Content-Disposition", cd);
	}
	evbuffer_add(out, text, len);
	evhttp_send_reply(req, code, reason(code), out);
}

void lab_http_reply_file(struct evhttp_request *req, const char *path, const char *type)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > HTTP_MAX_FILE) {
		if (fd >= 0)
			close(fd);
		lab_http_reply_error(req, 404, "file not found (is the web directory set?)");
		return;
	}
	common_headers(req, type);
	evhttp_remove_header(evhttp_request_get_output_headers(req), "Cache-Control");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
	if (st.st_size == 0) {
		close(fd);
	} else if (evbuffer_add_file(out, fd, 0, st.st_size) < 0) {
		lab_http_reply_error(req, 500, "cannot read the file");
		return;
	}
	evhttp_send_reply(req, 200, "OK", out);
}

json_t *lab_http_read_object(struct evhttp_request *req, size_t max, int empty_ok)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	json_error_t jerr;
	json_t *j;
	char *buf;

	if (n == 0 && empty_ok)
		return json_object();
	if (!lab_access_json(evhttp_find_header(evhttp_request_get_input_headers(req),
	                                        "Content-Type"))) {
		lab_http_reply_error(req, 415, "send the body with Content-Type: application/json");
		return NULL;
	}
	if (n > max) {
		lab_http_reply_error(req, 413, "request body too large");
		return NULL;
	}
	buf = malloc(n + 1);
	if (buf == NULL) {
		lab_http_reply_error(req, 500, "out of memory");
		return NULL;
	}
	evbuffer_remove(in, buf, n);
	buf[n] = '\0';
	j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (j == NULL || !json_is_object(j)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "body must be a JSON object%s%.120s",
		         j == NULL ? ": " : "", j == NULL ? jerr.text : "");
		json_decref(j);
		lab_http_reply_error(req, 400, msg);
		return NULL;
	}
	return j;
}

const char *lab_http_query(struct evhttp_request *req, const char *key, char *out, size_t outlen)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	const char *v;

	if (q == NULL || outlen == 0)
		return NULL;
	TAILQ_INIT(&params);
	if (evhttp_parse_query_str(q, &params) < 0) {
		evhttp_clear_headers(&params);
		return NULL;
	}
	v = evhttp_find_header(&params, key);
	if (v == NULL || strlen(v) >= outlen) {
		evhttp_clear_headers(&params);
		return NULL;
	}
	strcpy(out, v);
	evhttp_clear_headers(&params);
	return out;
}

static int local_host(struct evhttp_request *req, char *out, size_t outlen,
                      uint16_t *port, int *loopback)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[INET6_ADDRSTRLEN];

	if (bev == NULL || getsockname(bufferevent_getfd(bev), (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		*port = ntohs(sin->sin_port);
		*loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		snprintf(out, outlen, "%s:%u", a, *port);
		return 0;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		*port = ntohs(sin6->sin6_port);
		*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		snprintf(out, outlen, "[%s]:%u", a, *port);
		return 0;
	}
	return -1;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	struct lab_http *s = arg;
	struct evkeyvalq *hdr = evhttp_request_get_input_headers(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	char local[HTTP_HOST_MAX];
	const char *why = NULL;
	uint16_t port;
	int loop;

	if (local_host(req, local, sizeof(local), &port, &loop) < 0) {
		lab_http_reply_error(req, 500, "cannot tell the local address");
		return;
	}
	if (!lab_access_host(evhttp_find_header(hdr, "Host"), local, port, loop))
		why = "Host must be the API's address";
	else if (!lab_access_origin(evhttp_find_header(hdr, "Origin"), local, port, loop))
		why = "cross-origin requests are refused";
	if (why != NULL) {
		log_ratelimited(&s->refused_rl, LOG_LEVEL_NOTICE,
		                "%s: API request refused (403): %s", s->name, why);
		lab_http_reply_error(req, 403, why);
		return;
	}
	if (path == NULL || path[0] != '/') {
		lab_http_reply_error(req, 400, "bad request target");
		return;
	}
	s->handler(req, path, evhttp_request_get_command(req), s->arg);
}

struct lab_http *lab_http_new(struct event_base *base, const char *addr_port,
                              const char *name, lab_http_handler h, void *arg,
                              char *err, size_t errlen)
{
	struct lab_http *s;
	struct sockaddr_storage ss;
	socklen_t len;
	char host[NETADDR_HOST_MAX];
	uint16_t port;
	evutil_socket_t fd = -1;
	int one = 1;

	if (!lab_access_loopback_hostport(addr_port, host, sizeof(host), &port, 1) ||
	    netaddr_from_numeric(host, port, &ss, &len) < 0) {
		snprintf(err, errlen, "'%.80s' is not a numeric loopback ADDR:PORT "
		         "(e.g. 127.0.0.1:8090)", addr_port ? addr_port : "");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->handler = h;
	s->arg = arg;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->refused_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10.0, 5);
	s->http = evhttp_new(base);
	if (s->http == NULL)
		goto fail;
	evhttp_set_max_body_size(s->http, HTTP_EVHTTP_MAX_BODY);
	evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS);
	evhttp_set_timeout(s->http, HTTP_TIMEOUT_S);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
	                           EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS |
	                           EVHTTP_REQ_HEAD);
	evhttp_set_gencb(s->http, request_cb, s);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0)
		goto fail;
	s->sock = evhttp_accept_socket_with_handle(s->http, fd);
	if (s->sock == NULL)
		goto fail;
	return s;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", addr_port, strerror(errno));
	if (fd >= 0 && s->sock == NULL)
		evutil_closesocket(fd);
	lab_http_free(s);
	return NULL;
}

void lab_http_free(struct lab_http *s)
{
	if (s == NULL)
		return;
	if (s->http != NULL)
		evhttp_free(s->http);
	free(s);
}

uint16_t lab_http_port(const struct lab_http *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(evhttp_bound_socket_get_fd(s->sock), (struct sockaddr *)&ss, &len) < 0)
		return 0;
	return netaddr_port((struct sockaddr *)&ss);
}
