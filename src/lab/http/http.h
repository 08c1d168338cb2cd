/*
 * The HTTP side shared by the lab tools (send, recv, controller): a small
 * hardened JSON API server on libevent's evhttp, the checks of who may call
 * it (pure, access.c), and an asynchronous client for polling other lab
 * processes.  impair has its own copy of the server (src/lab/impair/api.c)
 * from before this folder existed.
 *
 * Every request is hostile: the Host header must name the address the
 * request reached (or localhost:PORT on loopback) so DNS rebinding fails,
 * an Origin, if any, must be that same http:// origin, and a body must be
 * Content-Type: application/json, which no form or "simple" cross-origin
 * fetch can send.  Bodies and headers are bounded, idle connections are
 * closed.  The listener is loopback only.
 */
#ifndef SCTPT_LAB_HTTP_H
#define SCTPT_LAB_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <event2/event.h>
#include <event2/http.h>

#define LAB_HTTP_MAX_BODY 65536        /* request bodies; larger: 413 */

struct lab_http;

/* path is the request's path without query (never NULL). */
typedef void (*lab_http_handler)(struct evhttp_request *req, const char *path,
                                 enum evhttp_cmd_type cmd, void *arg);

/*
 * Listen on "ADDR:PORT" (numeric, loopback only; port 0 picks one).  name
 * prefixes log lines ("recv").  NULL with err on failure.
 */
struct lab_http *lab_http_new(struct event_base *base, const char *addr_port,
                              const char *name, lab_http_handler h, void *arg,
                              char *err, size_t errlen);
void lab_http_free(struct lab_http *s);
uint16_t lab_http_port(const struct lab_http *s);

/* Replies (j is consumed; NULL j sends {}). */
void lab_http_reply_json(struct evhttp_request *req, int code, json_t *j);
void lab_http_reply_error(struct evhttp_request *req, int code, const char *msg);
/* A text body of the given type (not JSON: CSV, files). */
void lab_http_reply_text(struct evhttp_request *req, int code, const char *type,
                         const char *text, size_t len, const char *filename);
/* A file from disk (only the caller's fixed list of names), 404 if absent. */
void lab_http_reply_file(struct evhttp_request *req, const char *path, const char *type);
/*
 * The request body as a JSON object (415 if not application/json, 413 if
 * over max, 400 if not an object), or NULL with the error sent.  An empty
 * body is {} when empty_ok.
 */
json_t *lab_http_read_object(struct evhttp_request *req, size_t max, int empty_ok);
/* The value of query parameter key, copied into out, or NULL. */
const char *lab_http_query(struct evhttp_request *req, const char *key, char *out, size_t outlen);

/* ---- access.c: pure checks */
int lab_access_json(const char *content_type);
int lab_access_host(const char *host, const char *local, uint16_t port, int loopback);
int lab_access_origin(const char *origin, const char *local, uint16_t port, int loopback);
/* Whether ADDR:PORT parses as a numeric loopback address; fills host/port. */
int lab_access_loopback_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
                                 int allow_zero);

/* ---- client.c: one request to another lab process */

/* status: the HTTP status, or -1 (body then holds the reason). */
typedef void (*lab_http_done)(int status, const char *body, size_t len, void *arg);

/*
 * Send METHOD url (http://NUMERIC-ADDR:PORT/path) with an optional JSON body
 * and bearer token; done is called exactly once, from the loop, unless the
 * base is freed first.  arg should not be a pointer that can die meanwhile
 * (pass an id).  Answers over max_body are failures.  0, or -1 (done not
 * called) with err.
 */
int lab_http_call(struct event_base *base, const char *url, enum evhttp_cmd_type method,
                  const char *json_body, const char *token, int timeout_s, size_t max_body,
                  lab_http_done done, void *arg, char *err, size_t errlen);
/*
 * At exit: drop every call in flight; each done gets LAB_HTTP_CANCELLED (and
 * must then only free its arg: the loop is going away).
 */
#define LAB_HTTP_CANCELLED (-2)
void lab_http_cancel_all(void);
/* Split "http://ADDR:PORT[/prefix]" into host, port; 0 or -1 (numeric hosts only). */
int lab_http_parse_url(const char *url, char *host, size_t hostlen, uint16_t *port,
                       char *path, size_t pathlen);

#endif
