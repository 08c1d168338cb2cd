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

enum replay_verdict replay_check(struct replay_filter *rf, const uint8_t hash[REPLAY_HASH_LEN],
                                 uint64_t now_ms)
{
	replay_rotate(rf, now_ms);
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
 * Every remembered HELLO hash is appended to FILE; at each rotation FILE
 * becomes FILE.prev.  A restarted server loads both, so a HELLO captured
 * before the restart cannot be replayed within the clock window after it.
 */
static FILE *replay_file_open(const char *path, const char *mode)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode[0] == 'a' ? O_APPEND : O_TRUNC);
	int fd = open(path, flags, 0600);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (f == NULL)
		close(fd);
	return f;
}

static void replay_file_warn(const struct replay_filter *rf)
{
	log_warn("wire: cannot write the replay filter file %s: %s; keeping it in "
	         "memory only", rf->path, strerror(errno));
}

static void replay_file_write(struct replay_filter *rf, const uint8_t *hash)
{
	if (rf->f == NULL)
		return;
	if (fwrite(hash, REPLAY_HASH_LEN, 1, rf->f) != 1 || fflush(rf->f) != 0) {
		replay_file_warn(rf);
		fclose(rf->f);
		rf->f = NULL;
	}
}

static void replay_file_rotate(struct replay_filter *rf)
{
	char prev[1100];

	if (rf->path == NULL)
		return;
	if (rf->f != NULL)
		fclose(rf->f);
	snprintf(prev, sizeof(prev), "%s.prev", rf->path);
	(void)rename(rf->path, prev);
	rf->f = replay_file_open(rf->path, "w");
	if (rf->f == NULL)
		replay_file_warn(rf);
}

/* Whether path was written at most max_age_s before now (wall clock). */
static int replay_file_recent(const char *path, uint64_t now_ms, int64_t max_age_s)
{
	struct stat st;

	return stat(path, &st) == 0 && (int64_t)(now_ms / 1000) - (int64_t)st.st_mtime <= max_age_s;
}

/* Read up to max records of path into the previous generation. */
static void replay_file_load(struct replay_filter *rf, const char *path, uint64_t now_ms,
                             int64_t max_age_s)
{
	size_t cap = rf->max * REPLAY_HASH_LEN, n;
	uint8_t *buf;
	FILE *f;

	if (!replay_file_recent(path, now_ms, max_age_s))
		return;
	f = fopen(path, "rb");
	if (f == NULL)
		return;
	buf = malloc(cap > 0 ? cap : 1);
	if (buf != NULL) {
		n = fread(buf, 1, cap, f);
		(void)replay_load_prev(rf, buf, n);
		free(buf);
	}
	fclose(f);
}

int replay_file_attach(struct replay_filter *rf, const char *path, uint64_t now_ms)
{
	int64_t max_age_s = (int64_t)(2 * rf->period_ms / 1000);
	char prev[1100];

	if (rf->path != NULL)
		return -1;
	rf->path = strdup(path);
	if (rf->path == NULL)
		return -1;
	snprintf(prev, sizeof(prev), "%s.prev", path);
	replay_file_load(rf, prev, now_ms, max_age_s);
	replay_file_load(rf, path, now_ms, max_age_s);
	if (hmap_count(rf->seen_prev) > 0)
		log_info("wire: %zu handshakes remembered from before the restart",
		         hmap_count(rf->seen_prev));
	/* Keep appending to a current file; start over a stale one. */
	rf->f = replay_file_open(path, replay_file_recent(path, now_ms, max_age_s) ? "a" : "w");
	if (rf->f == NULL) {
		replay_file_warn(rf);
		return -1;
	}
	return 0;
}
