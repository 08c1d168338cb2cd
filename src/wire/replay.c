/*
 * HELLO replay filter; see replay.h.  The first half is the pure filter
 * (two hash maps and a clock passed in), the second half its file.
 */
#include "wire/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/hmap.h"
#include "util/log.h"

struct replay_filter {
	struct hmap *seen, *seen_prev;  /* current and previous generation */
	uint64_t rotated_ms;            /* when `seen` was started */
	uint64_t period_ms;
	size_t max;
	char *path;                     /* file, if attached */
	FILE *f;                        /* append log of `seen`, or NULL */
	uint64_t closed_until_ms;       /* state lost at start: admit nothing before */
};

static void replay_file_rotate(struct replay_filter *rf);
static void replay_file_write(struct replay_filter *rf, const uint8_t *hash);

struct replay_filter *replay_new(uint64_t period_ms, size_t max, uint64_t now_ms)
{
	struct replay_filter *rf = calloc(1, sizeof(*rf));

	if (rf == NULL)
		return NULL;
	rf->period_ms = period_ms;
	rf->max = max;
	rf->rotated_ms = now_ms;
	rf->seen = hmap_new();
	rf->seen_prev = hmap_new();
	if (rf->seen == NULL || rf->seen_prev == NULL) {
		replay_free(rf);
		return NULL;
	}
	return rf;
}

void replay_free(struct replay_filter *rf)
{
	if (rf == NULL)
		return;
	hmap_free(rf->seen);
	hmap_free(rf->seen_prev);
	if (rf->f != NULL)
		fclose(rf->f);
	free(rf->path);
	free(rf);
}

/*
 * A new generation every period.  A clock that went backwards (the wall
 * clock can) postpones the rotation rather than forcing one: forgetting
 * early would let a replay in; remembering longer only costs memory.
 */
static void replay_rotate(struct replay_filter *rf, uint64_t now_ms)
{
	struct hmap *fresh;

	if (now_ms < rf->rotated_ms || now_ms - rf->rotated_ms < rf->period_ms)
		return;
	fresh = hmap_new();
	if (fresh == NULL)
		return;   /* try again at the next check */
	hmap_free(rf->seen_prev);
	rf->seen_prev = rf->seen;
	rf->seen = fresh;
	rf->rotated_ms = now_ms;
	replay_file_rotate(rf);
}

/*
 * Closed after a start that lost the filter's state (replay_file_attach).
 * A wall clock set back by more than a period would otherwise keep the
 * server closed for as long: it is then open again.
 */
static int replay_closed(const struct replay_filter *rf, uint64_t now_ms)
{
	return now_ms < rf->closed_until_ms && rf->closed_until_ms - now_ms <= rf->period_ms;
}

enum replay_verdict replay_check(struct replay_filter *rf, const uint8_t hash[REPLAY_HASH_LEN],
                                 uint64_t now_ms)
{
	replay_rotate(rf, now_ms);
	if (replay_closed(rf, now_ms))
		return REPLAY_FULL;
	if (hmap_get(rf->seen, hash, REPLAY_HASH_LEN) != NULL ||
	    hmap_get(rf->seen_prev, hash, REPLAY_HASH_LEN) != NULL)
		return REPLAY_SEEN;
	if (hmap_count(rf->seen) >= rf->max)
		return REPLAY_FULL;   /* no new sessions until the next rotation */
	if (hmap_put(rf->seen, hash, REPLAY_HASH_LEN, (void *)1) < 0)
		return REPLAY_FULL;   /* cannot remember it, so cannot admit it */
	replay_file_write(rf, hash);
	return REPLAY_FRESH;
}

int replay_seen(const struct replay_filter *rf, const uint8_t hash[REPLAY_HASH_LEN])
{
	return hmap_get(rf->seen, hash, REPLAY_HASH_LEN) != NULL ||
	       hmap_get(rf->seen_prev, hash, REPLAY_HASH_LEN) != NULL;
}

size_t replay_count(const struct replay_filter *rf)
{
	return hmap_count(rf->seen);
}

size_t replay_count_prev(const struct replay_filter *rf)
{
	return hmap_count(rf->seen_prev);
}

/*
 * Into the previous generation: it is forgotten at the next rotation, by
 * when every HELLO from before a restart is out of the window, and it
 * never fills the current one.
 */
size_t replay_load_prev(struct replay_filter *rf, const uint8_t *p, size_t n)
{
	size_t k = 0;

	while (k < rf->max && n - k * REPLAY_HASH_LEN >= REPLAY_HASH_LEN) {
		if (hmap_count(rf->seen_prev) >= rf->max)
			break;
		(void)hmap_put(rf->seen_prev, p + k * REPLAY_HASH_LEN, REPLAY_HASH_LEN, (void *)1);
		k++;
	}
	return k;
}

/* ---------- the file ---------- */

/*
 * Format (docs/PROTOCOL.md, "Replay filter file"): the 16-byte header REPLAY_FILE_MAGIC,
 * then 16-byte HELLO hashes.  FILE mirrors the current generation and is
 * appended to for each remembered HELLO; FILE.prev mirrors the previous
 * one.  A file is created (and at a rotation or a restart replaced) whole,
 * through NAME.tmp and rename(), so FILE always starts with a complete
 * header; only its last record can be torn, by a crash during an append.
 * Each file holds at most max records, so its size is bounded.
 */

int replay_file_parse(const uint8_t *p, size_t n, size_t *nrec)
{
	*nrec = 0;
	if (n == 0)
		return 0;   /* empty: made by hand (we always write a header) */
	if (n < REPLAY_FILE_HDR_LEN || memcmp(p, REPLAY_FILE_MAGIC, REPLAY_FILE_HDR_LEN) != 0)
		return -1;
	*nrec = (n - REPLAY_FILE_HDR_LEN) / REPLAY_HASH_LEN;
	return 0;
}

static void replay_file_warn(const struct replay_filter *rf, const char *what)
{
	log_warn("wire: cannot %s the replay filter file %s: %s; keeping the filter in "
	         "memory only, so a restart will forget it", what, rf->path, strerror(errno));
}

/* write(2) all of p, retrying short writes. */
static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = write(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Open path for appending; never through a symlink made after we wrote it. */
static FILE *replay_file_append(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "a");
	if (f == NULL)
		close(fd);
	return f;
}

/*
 * Replace path with the header and n bytes of records, atomically: written
 * to path.tmp, flushed to disk, then renamed over path.  0 or -1 (errno).
 */
static int replay_file_replace(const char *path, const uint8_t *recs, size_t n)
{
	char tmp[REPLAY_PATH_MAX + 8];
	int fd, rc = -1, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	(void)unlink(tmp);   /* a leftover of a crash; O_EXCL below refuses anything else */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, REPLAY_FILE_MAGIC, REPLAY_FILE_HDR_LEN) == 0 &&
	    write_all(fd, recs, n) == 0 && fsync(fd) == 0)
		rc = 0;
	saved = errno;
	if (close(fd) != 0 && rc == 0) {
		saved = errno;
		rc = -1;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		saved = errno;
		rc = -1;
	}
	if (rc < 0)
		(void)unlink(tmp);
	errno = saved;
	return rc;
}

static void replay_file_write(struct replay_filter *rf, const uint8_t *hash)
{
	if (rf->f == NULL)
		return;
	if (fwrite(hash, REPLAY_HASH_LEN, 1, rf->f) != 1 || fflush(rf->f) != 0) {
		replay_file_warn(rf, "write");
		fclose(rf->f);
		rf->f = NULL;
	}
}

/* FILE becomes FILE.prev; a new, empty FILE starts the new generation. */
static void replay_file_rotate(struct replay_filter *rf)
{
	char prev[REPLAY_PATH_MAX + 8];

	if (rf->path == NULL || rf->f == NULL)
		return;   /* not attached, or gone to memory only after an error */
	fclose(rf->f);
	rf->f = NULL;
	snprintf(prev, sizeof(prev), "%s.prev", rf->path);
	/* A FILE someone removed is no reason to stop keeping the next one. */
	if ((rename(rf->path, prev) != 0 && errno != ENOENT) ||
	    replay_file_replace(rf->path, NULL, 0) != 0 ||
	    (rf->f = replay_file_append(rf->path)) == NULL)
		replay_file_warn(rf, "rotate");
}

/* What reading one file found. */
enum replay_file_state {
	RF_NONE,        /* absent, or ours but older than two periods: nothing to load */
	RF_LOADED,      /* ours (perhaps empty), recent, loaded */
	RF_IN_THE_WAY,  /* not ours, but old: nothing lost; never overwritten */
	RF_FOREIGN,     /* not ours, and recent: state lost; never overwritten */
	RF_UNREADABLE,  /* recent (or of unknown age), but could not be read */
};

/* Read at most cap bytes of fd into buf; the count, or -1. */
static ssize_t read_upto(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/*
 * Read path and, if it is ours and recent, load its records into the
 * previous generation, appending what was loaded to snap (room for max
 * records, *nsnap of them used; the generation is empty before the first
 * call, so *nsnap is its count).  Opened non-blocking and checked to be a regular
 * file, so a FIFO or a device cannot hang or flood the start; at most one
 * generation's worth is read.
 */
static enum replay_file_state replay_file_load(struct replay_filter *rf, const char *path,
                                               uint64_t now_ms, uint8_t *snap, size_t *nsnap)
{
	int64_t max_age_s = (int64_t)(2 * rf->period_ms / 1000);
	size_t cap = REPLAY_FILE_HDR_LEN + rf->max * REPLAY_HASH_LEN, nrec, k;
	enum replay_file_state st = RF_UNREADABLE;
	uint8_t *buf = NULL;
	struct stat sb;
	ssize_t n;
	int fd, recent;

	if (stat(path, &sb) != 0)
		return errno == ENOENT ? RF_NONE : RF_UNREADABLE;
	recent = (int64_t)(now_ms / 1000) - (int64_t)sb.st_mtime <= max_age_s;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return recent ? RF_UNREADABLE : RF_NONE;   /* old: nothing in it matters */
	if (fstat(fd, &sb) != 0)
		goto out;
	if (!S_ISREG(sb.st_mode)) {
		errno = EINVAL;
		st = recent ? RF_FOREIGN : RF_IN_THE_WAY;
		goto out;
	}
	buf = malloc(cap);
	if (buf == NULL || (n = read_upto(fd, buf, cap)) < 0)
		goto out;
	if (replay_file_parse(buf, (size_t)n, &nrec) < 0) {
		errno = EINVAL;
		st = recent ? RF_FOREIGN : RF_IN_THE_WAY;
		goto out;
	}
	if (!recent) {
		st = RF_NONE;
		goto out;
	}
	if ((size_t)n == cap && (size_t)sb.st_size > cap)
		log_notice("wire: replay filter file %s holds more than one generation; "
		           "read its first %zu records", path, nrec);
	/* Each hash once, at most max: what goes to snap is exactly what was loaded. */
	for (k = 0; k < nrec && hmap_count(rf->seen_prev) < rf->max; k++) {
		const uint8_t *h = buf + REPLAY_FILE_HDR_LEN + k * REPLAY_HASH_LEN;

		if (hmap_get(rf->seen_prev, h, REPLAY_HASH_LEN) != NULL)
			continue;
		if (hmap_put(rf->seen_prev, h, REPLAY_HASH_LEN, (void *)1) < 0)
			break;
		memcpy(snap + *nsnap * REPLAY_HASH_LEN, h, REPLAY_HASH_LEN);
		(*nsnap)++;
	}
	st = RF_LOADED;
out:
	free(buf);
	close(fd);
	return st;
}

/*
 * The filter's state from before the restart is unknown: admit no HELLO
 * for one period, by when every HELLO the old process could have answered
 * has left the clock window.  Silence for a few minutes is recoverable (the
 * client retries); answering a captured HELLO confirms the bridge to a
 * prober for good.
 */
static void replay_close_for_a_period(struct replay_filter *rf, const char *path,
                                      enum replay_file_state st, uint64_t now_ms)
{
	char why[160];

	if (st == RF_FOREIGN)
		snprintf(why, sizeof(why), "is not an sctpt replay filter file");
	else
		snprintf(why, sizeof(why), "cannot be read (%s)", strerror(errno));
	rf->closed_until_ms = now_ms + rf->period_ms;
	log_warn("wire: the replay filter file %s %s; to be safe against replays of "
	         "handshakes from before the restart, no client is admitted for %llu s",
	         path, why, (unsigned long long)(rf->period_ms / 1000));
}

int replay_file_attach(struct replay_filter *rf, const char *path, uint64_t now_ms)
{
	char prev[REPLAY_PATH_MAX + 8];
	enum replay_file_state cur, old;
	const char *keep = NULL;
	uint8_t *snap = NULL;
	size_t nsnap = 0;
	int rc = -1;

	if (rf->path != NULL)
		return -1;
	if (strlen(path) >= REPLAY_PATH_MAX) {
		log_warn("wire: replay filter file name too long; keeping the filter in memory only");
		return -1;
	}
	rf->path = strdup(path);
	snap = malloc(rf->max * REPLAY_HASH_LEN + 1);
	if (rf->path == NULL || snap == NULL) {
		log_warn("wire: out of memory; keeping the replay filter in memory only");
		goto out;
	}
	snprintf(prev, sizeof(prev), "%s.prev", path);
	/* The newest first, so that a cap drops the oldest records. */
	cur = replay_file_load(rf, path, now_ms, snap, &nsnap);
	if (cur == RF_FOREIGN || cur == RF_UNREADABLE)
		replay_close_for_a_period(rf, path, cur, now_ms);
	old = replay_file_load(rf, prev, now_ms, snap, &nsnap);
	if ((old == RF_FOREIGN || old == RF_UNREADABLE) && rf->closed_until_ms == 0)
		replay_close_for_a_period(rf, prev, old, now_ms);
	if (nsnap > 0)
		log_info("wire: %zu handshakes remembered from before the restart", nsnap);
	if (cur == RF_FOREIGN || cur == RF_IN_THE_WAY)
		keep = path;
	else if (old == RF_FOREIGN || old == RF_IN_THE_WAY)
		keep = prev;
	if (keep != NULL) {
		/* Someone else's file, or damage worth a look: leave it alone. */
		log_warn("wire: %s is not an sctpt replay filter file: leaving it as it is, and "
		         "keeping the filter in memory only (move the file away, or choose another "
		         "--replay-file)", keep);
		goto out;
	}
	/* The files now mirror the two generations: the loaded records, and none yet. */
	if (replay_file_replace(prev, snap, nsnap * REPLAY_HASH_LEN) != 0 ||
	    replay_file_replace(path, NULL, 0) != 0 ||
	    (rf->f = replay_file_append(path)) == NULL) {
		replay_file_warn(rf, "write");
		goto out;
	}
	rc = 0;
out:
	free(snap);
	return rc;
}
