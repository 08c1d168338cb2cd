/*
 * Private to src/sctp/: the two engines behind sctp.h.
 *
 * Every association starts with struct sctp_assoc, whose ops say which
 * engine runs it; sctp.c dispatches the public calls through them.  The
 * engine is chosen once per process, at sctp_global_init(), from
 * tuning->engine.
 */
#ifndef SCTPT_SCTP_SCTP_INTERNAL_H
#define SCTPT_SCTP_SCTP_INTERNAL_H

#include "sctp/sctp.h"

#define SCTP_SEND_UNORDERED 0x01   /* engine send flags */

struct sctp_engine_ops {
	int (*send)(struct sctp_assoc *a, uint16_t sid, uint32_t ppid,
	            const void *data, size_t len, unsigned flags);
	unsigned (*streams)(const struct sctp_assoc *a);
	void (*free)(struct sctp_assoc *a);
	void (*path_changed)(struct sctp_assoc *a);
	void (*get_stats)(const struct sctp_assoc *a, struct sctp_assoc_stats *st);
};

struct sctp_assoc {
	const struct sctp_engine_ops *ops;
};

/* usrsctp (sctp_usrsctp.c). */
int usrsctp_glue_init(struct event_base *base, const struct sctp_tuning *t);
void usrsctp_glue_shutdown(void);
struct sctp_assoc *usrsctp_glue_connect(struct wire_link *link,
                                        const struct sctp_assoc_cbs *cbs, void *arg);
struct sctp_assoc *usrsctp_glue_accept(struct wire_link *link,
                                       const struct sctp_assoc_cbs *cbs, void *arg);

/* The native engine (sctp_native.c). */
int native_glue_init(struct event_base *base, const struct sctp_tuning *t);
void native_glue_shutdown(void);
struct sctp_assoc *native_glue_connect(struct wire_link *link,
                                       const struct sctp_assoc_cbs *cbs, void *arg);
struct sctp_assoc *native_glue_accept(struct wire_link *link,
                                      const struct sctp_assoc_cbs *cbs, void *arg);

#endif
