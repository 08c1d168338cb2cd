/*
 * The server's HELLO replay filter (docs/PROTOCOL.md, "Replay"): a HELLO
 * is accepted once.  Its hash is remembered in two generations; every
 * `period` the older one is forgotten, so an entry lives between one and
 * two periods, longer than the clock window in which its HELLO is fresh.
 *
 * The filter core is pure: the time comes in as an argument (wall-clock
 * milliseconds, because the HELLO's own timestamp and the file's mtime are
 * wall-clock too), so tests drive rotation with a virtual clock.  An
 * optional file keeps the filter across restarts.
 */
#ifndef SCTPT_WIRE_REPLAY_H
#define SCTPT_WIRE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_HASH_LEN 16          /* bytes of SHA-256(HELLO) remembered */
#define REPLAY_MAX 200000           /* remembered HELLOs per generation */

struct replay_filter;

enum replay_verdict {
	REPLAY_FULL = -1,           /* not seen, but no room (or closed): refuse */
	REPLAY_FRESH = 0,           /* not seen before; now remembered */
	REPLAY_SEEN = 1,            /* a replay */
};

/* A filter whose generations last period_ms, holding max hashes each. */
struct replay_filter *replay_new(uint64_t period_ms, size_t max, uint64_t now_ms);
/* Free (and close its file).  NULL is fine. */
void replay_free(struct replay_filter *rf);

/* Check hash at time now_ms and remember it if fresh (rotating first if due). */
enum replay_verdict replay_check(struct replay_filter *rf, const uint8_t hash[REPLAY_HASH_LEN],
                                 uint64_t now_ms);

/*
 * Whether hash is remembered (a replay), without remembering it: a cheap
 * look before the expensive checks, so a captured HELLO sent again costs
 * no public-key work.
 */
int replay_seen(const struct replay_filter *rf, const uint8_t hash[REPLAY_HASH_LEN]);

/* Hashes in the current and the previous generation. */
size_t replay_count(const struct replay_filter *rf);
size_t replay_count_prev(const struct replay_filter *rf);

/*
 * Load raw records (p, n bytes: 16-byte hashes, a partial record at the
 * end is ignored) into the previous generation, at most max of them.
 * Returns how many records were read.
 */
size_t replay_load_prev(struct replay_filter *rf, const uint8_t *p, size_t n);

/*
 * The replay file: REPLAY_FILE_MAGIC, then 16-byte hashes.  Parse the
 * whole file p (n bytes): 0 with *nrec whole records after the header (a
 * torn last record is ignored; an empty file has none), or -1 if it is not
 * a replay file.
 */
#define REPLAY_FILE_MAGIC "sctpt-replay v1\n"
#define REPLAY_FILE_HDR_LEN 16
#define REPLAY_PATH_MAX 1024
int replay_file_parse(const uint8_t *p, size_t n, size_t *nrec);

/*
 * Keep the filter in path (the current generation, appended to for each
 * new hash) and path.prev (the one before), each replaced atomically
 * through path.tmp.  Both are loaded, into the previous generation, if
 * written less than two periods before now_ms.  A recent file that cannot
 * be read, or is not a replay file, means the state is lost: the filter
 * then admits nothing for one period (REPLAY_FULL).  A file that is not a
 * replay file is never overwritten.  0, or -1 if the filter stays in
 * memory only (logged either way).
 */
int replay_file_attach(struct replay_filter *rf, const char *path, uint64_t now_ms);

#endif
