/*
 * Unit tests for the HELLO replay filter (src/wire/replay.c): duplicates,
 * the two generations and their rotation at exact boundary times on a
 * virtual clock, a clock that goes backwards, the fail-closed limit, and
 * the file that keeps the filter across restarts (loaded into the previous
 * generation; stale, truncated, empty and unwritable files; files that are
 * not ours or cannot be read, which close the filter for a period and are
 * never overwritten; the bound on a file's size; atomic replacement).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <cmocka.h>

#include "util/log.h"
#include "wire/replay.h"

#define P 300000ULL     /* period: 5 minutes (clock_skew_min 2) */
#define T0 1700000000000ULL
#define HDR REPLAY_FILE_HDR_LEN

static void hash_of(unsigned i, uint8_t h[REPLAY_HASH_LEN])
{
	memset(h, 0, REPLAY_HASH_LEN);
	h[0] = (uint8_t)i;
	h[1] = (uint8_t)(i >> 8);
	h[2] = (uint8_t)(i >> 16);
	h[15] = 0xa5;
}

static enum replay_verdict check(struct replay_filter *rf, unsigned i, uint64_t now)
{
	uint8_t h[REPLAY_HASH_LEN];

	hash_of(i, h);
	return replay_check(rf, h, now);
}

static void test_duplicates(void **state)
{
	struct replay_filter *rf = replay_new(P, 100, T0);

	assert_non_null(rf);
	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, T0), REPLAY_SEEN);
	assert_int_equal(check(rf, 1, T0 + 1), REPLAY_SEEN);
	assert_int_equal(check(rf, 2, T0 + P - 1), REPLAY_SEEN);
	assert_int_equal(replay_count(rf), 2);
	assert_int_equal(replay_count_prev(rf), 0);
	replay_free(rf);
	replay_free(NULL);
}

/* An entry lives at least one period and at most two. */
static void test_rotation_boundaries(void **state)
{
	struct replay_filter *rf = replay_new(P, 100, T0);

	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	/* One millisecond before the period: same generation. */
	assert_int_equal(check(rf, 2, T0 + P - 1), REPLAY_FRESH);
	assert_int_equal(replay_count(rf), 2);
	/* Exactly one period: rotated, both are in the previous generation. */
	assert_int_equal(check(rf, 3, T0 + P), REPLAY_FRESH);
	assert_int_equal(replay_count(rf), 1);
	assert_int_equal(replay_count_prev(rf), 2);
	assert_int_equal(check(rf, 1, T0 + P), REPLAY_SEEN);
	assert_int_equal(check(rf, 2, T0 + 2 * P - 1), REPLAY_SEEN);
	/* Two periods: 1 and 2 are forgotten, 3 is still remembered. */
	assert_int_equal(check(rf, 3, T0 + 2 * P), REPLAY_SEEN);
	assert_int_equal(replay_count_prev(rf), 1);
	assert_int_equal(check(rf, 1, T0 + 2 * P), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0 + 2 * P), REPLAY_FRESH);
	/* A long silence rotates once: the previous generation is the last one. */
	assert_int_equal(check(rf, 4, T0 + 10 * P), REPLAY_FRESH);
	assert_int_equal(replay_count(rf), 1);
	assert_int_equal(replay_count_prev(rf), 2);
	assert_int_equal(check(rf, 3, T0 + 10 * P), REPLAY_FRESH);
	replay_free(rf);
}

/* The wall clock may step back: nothing is forgotten early. */
static void test_clock_backwards(void **state)
{
	struct replay_filter *rf = replay_new(P, 100, T0);

	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, T0 - 3 * P), REPLAY_SEEN);
	assert_int_equal(check(rf, 2, 0), REPLAY_FRESH);
	assert_int_equal(replay_count(rf), 2);
	assert_int_equal(replay_count_prev(rf), 0);
	/* And the next rotation is still measured from T0. */
	assert_int_equal(check(rf, 3, T0 + P - 1), REPLAY_FRESH);
	assert_int_equal(replay_count(rf), 3);
	assert_int_equal(check(rf, 4, T0 + P), REPLAY_FRESH);
	assert_int_equal(replay_count_prev(rf), 3);
	replay_free(rf);
}

/* Full: new HELLOs are refused until the next rotation; duplicates still seen. */
static void test_full_fails_closed(void **state)
{
	struct replay_filter *rf = replay_new(P, 3, T0);

	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(check(rf, i, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 3, T0), REPLAY_FULL);
	assert_int_equal(check(rf, 3, T0 + P - 1), REPLAY_FULL);
	assert_int_equal(check(rf, 0, T0), REPLAY_SEEN);
	assert_int_equal(replay_count(rf), 3);
	assert_int_equal(check(rf, 3, T0 + P), REPLAY_FRESH);
	assert_int_equal(check(rf, 3, T0 + P), REPLAY_SEEN);
	replay_free(rf);
}

/* Loaded records go to the previous generation: seen, then forgotten at the next rotation. */
static void test_load_into_previous(void **state)
{
	struct replay_filter *rf = replay_new(P, 100, T0);
	uint8_t buf[5 * REPLAY_HASH_LEN + 7];

	for (unsigned i = 0; i < 5; i++)
		hash_of(100 + i, buf + i * REPLAY_HASH_LEN);
	memset(buf + 5 * REPLAY_HASH_LEN, 0xee, 7);   /* a torn last record */
	assert_int_equal(replay_load_prev(rf, buf, sizeof(buf)), 5);
	assert_int_equal(replay_count_prev(rf), 5);
	assert_int_equal(replay_count(rf), 0);
	assert_int_equal(check(rf, 100, T0), REPLAY_SEEN);
	assert_int_equal(check(rf, 104, T0 + P - 1), REPLAY_SEEN);
	assert_int_equal(check(rf, 1, T0 + P), REPLAY_FRESH);   /* rotates */
	assert_int_equal(check(rf, 100, T0 + P), REPLAY_FRESH);
	/* Nothing, or less than one record. */
	assert_int_equal(replay_load_prev(rf, buf, 0), 0);
	assert_int_equal(replay_load_prev(rf, buf, REPLAY_HASH_LEN - 1), 0);
	replay_free(rf);
}

/* Loading never exceeds one generation's limit, and never fills the current one. */
static void test_load_capped(void **state)
{
	struct replay_filter *rf = replay_new(P, 4, T0);
	uint8_t buf[10 * REPLAY_HASH_LEN];

	for (unsigned i = 0; i < 10; i++)
		hash_of(i, buf + i * REPLAY_HASH_LEN);
	assert_int_equal(replay_load_prev(rf, buf, sizeof(buf)), 4);
	assert_int_equal(replay_count_prev(rf), 4);
	assert_int_equal(replay_load_prev(rf, buf + 4 * REPLAY_HASH_LEN, REPLAY_HASH_LEN), 0);
	assert_int_equal(check(rf, 3, T0), REPLAY_SEEN);
	assert_int_equal(check(rf, 4, T0), REPLAY_FRESH);
	for (unsigned i = 5; i < 8; i++)
		assert_int_equal(check(rf, i, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 8, T0), REPLAY_FULL);
	replay_free(rf);
}

/* ---------- the file ---------- */

struct tmp {
	char dir[64], path[128], prev[140];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_replay.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/replay", t->dir);
	snprintf(t->prev, sizeof(t->prev), "%s.prev", t->path);
}

static void tmp_remove(struct tmp *t)
{
	char tmp[160];

	snprintf(tmp, sizeof(tmp), "%s.tmp", t->path);
	assert_int_equal(access(tmp, F_OK), -1);   /* never left behind */
	(void)unlink(t->path);
	(void)unlink(t->prev);
	assert_int_equal(rmdir(t->dir), 0);
}

static void file_put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	if (n > 0)   /* fwrite(NULL, ..., 0) is undefined */
		assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* A replay file: the header, then n bytes of records. */
static void replay_put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(REPLAY_FILE_MAGIC, 1, REPLAY_FILE_HDR_LEN, f), REPLAY_FILE_HDR_LEN);
	if (n > 0)   /* fwrite(NULL, ..., 0) is undefined */
		assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Wall-clock "now" of a test: the file's own mtime plus an offset. */
static uint64_t mtime_ms(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_mtime * 1000;
}

/* Written, rotated, and read back by a "restarted" filter. */
static void test_file_round_trip(void **state)
{
	struct tmp t;
	struct replay_filter *rf, *again;
	uint64_t now;

	tmp_make(&t);
	rf = replay_new(P, 100, T0);
	assert_int_equal(replay_file_attach(rf, t.path, T0), 0);
	assert_int_equal(replay_file_attach(rf, t.path, T0), -1);   /* once */
	assert_int_equal(file_size(t.path), HDR);
	assert_int_equal(file_size(t.prev), HDR);
	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0), REPLAY_SEEN);       /* not written twice */
	assert_int_equal(file_size(t.path), HDR + 2 * REPLAY_HASH_LEN);
	assert_int_equal(check(rf, 3, T0 + P), REPLAY_FRESH);  /* rotates the file too */
	assert_int_equal(file_size(t.prev), HDR + 2 * REPLAY_HASH_LEN);
	assert_int_equal(file_size(t.path), HDR + REPLAY_HASH_LEN);
	replay_free(rf);

	/* Restart: both files are loaded, into the previous generation. */
	now = mtime_ms(t.path) + 1000;
	again = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(again, t.path, now), 0);
	assert_int_equal(replay_count_prev(again), 3);
	assert_int_equal(replay_count(again), 0);
	for (unsigned i = 1; i <= 3; i++)
		assert_int_equal(check(again, i, now), REPLAY_SEEN);
	/* The files mirror the generations: the loaded records in .prev, none yet. */
	assert_int_equal(file_size(t.prev), HDR + 3 * REPLAY_HASH_LEN);
	assert_int_equal(file_size(t.path), HDR);
	assert_int_equal(check(again, 4, now), REPLAY_FRESH);
	assert_int_equal(file_size(t.path), HDR + REPLAY_HASH_LEN);
	/* The loaded records go at the next rotation. */
	assert_int_equal(check(again, 1, now + P), REPLAY_FRESH);
	replay_free(again);
	tmp_remove(&t);
}

/* Files older than two periods are ignored, and the current one starts over. */
static void test_file_stale(void **state)
{
	struct tmp t;
	struct replay_filter *rf;
	uint8_t buf[2 * REPLAY_HASH_LEN];
	uint64_t now;

	tmp_make(&t);
	hash_of(1, buf);
	hash_of(2, buf + REPLAY_HASH_LEN);
	replay_put(t.path, buf, sizeof(buf));
	replay_put(t.prev, buf, REPLAY_HASH_LEN);
	/* Exactly two periods old: still loaded (the limit is inclusive). */
	now = mtime_ms(t.path) + 2 * P;
	rf = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	assert_int_equal(replay_count_prev(rf), 2);
	assert_int_equal(file_size(t.prev), HDR + 2 * REPLAY_HASH_LEN);
	replay_free(rf);
	/* Make both old again; one second more than two periods: ignored, started over. */
	replay_put(t.path, buf, sizeof(buf));
	replay_put(t.prev, buf, REPLAY_HASH_LEN);
	now += 1000;
	rf = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	assert_int_equal(replay_count_prev(rf), 0);
	assert_int_equal(file_size(t.path), HDR);
	assert_int_equal(file_size(t.prev), HDR);
	assert_int_equal(check(rf, 1, now), REPLAY_FRESH);
	replay_free(rf);
	tmp_remove(&t);
}

/* Truncated and empty files: whole records only; nothing to load is fine. */
static void test_file_truncated_or_empty(void **state)
{
	struct tmp t;
	struct replay_filter *rf;
	uint8_t buf[3 * REPLAY_HASH_LEN];
	uint64_t now;

	tmp_make(&t);
	for (unsigned i = 0; i < 3; i++)
		hash_of(i, buf + i * REPLAY_HASH_LEN);
	replay_put(t.path, buf, 2 * REPLAY_HASH_LEN + 9);   /* torn third record */
	file_put(t.prev, buf, 0);                          /* empty: nothing, but fine */
	now = mtime_ms(t.path);
	rf = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	assert_int_equal(replay_count_prev(rf), 2);
	assert_int_equal(check(rf, 1, now), REPLAY_SEEN);
	assert_int_equal(check(rf, 2, now), REPLAY_FRESH);
	replay_free(rf);
	tmp_remove(&t);
}

/* A file that cannot be written: the filter keeps working in memory. */
static void test_file_unwritable(void **state)
{
	struct replay_filter *rf = replay_new(P, 100, T0);
	enum log_level saved = log_get_level();

	log_set_level(LOG_LEVEL_ERR);   /* the warning is expected */
	assert_int_equal(replay_file_attach(rf, "/nonexistent-dir/replay", T0), -1);
	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, T0), REPLAY_SEEN);
	assert_int_equal(check(rf, 2, T0 + P), REPLAY_FRESH);   /* rotation copes too */
	assert_int_equal(check(rf, 1, T0 + P), REPLAY_SEEN);
	replay_free(rf);
	log_set_level(saved);
}

/*
 * The path is a directory (made just now): not loaded, not written, not
 * fatal; but whatever was there is unknown, so the filter stays closed for
 * exactly one period.
 */
static void test_file_is_directory(void **state)
{
	struct tmp t;
	struct replay_filter *rf;
	enum log_level saved = log_get_level();
	uint64_t now;

	tmp_make(&t);
	assert_int_equal(mkdir(t.path, 0700), 0);
	now = mtime_ms(t.path);
	rf = replay_new(P, 100, now);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, now), -1);
	log_set_level(saved);
	assert_int_equal(replay_count_prev(rf), 0);
	assert_int_equal(check(rf, 1, now), REPLAY_FULL);
	assert_int_equal(check(rf, 1, now + P - 1), REPLAY_FULL);
	assert_int_equal(check(rf, 1, now + P), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, now + P), REPLAY_SEEN);
	replay_free(rf);
	assert_int_equal(rmdir(t.path), 0);
	tmp_remove(&t);
}

/* The file's parser on raw byte strings. */
static void test_file_parse(void **state)
{
	uint8_t b[REPLAY_FILE_HDR_LEN + 3 * REPLAY_HASH_LEN];
	size_t n = 99;

	memcpy(b, REPLAY_FILE_MAGIC, HDR);
	memset(b + HDR, 0x5a, sizeof(b) - HDR);
	assert_int_equal(replay_file_parse(b, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(replay_file_parse(b, HDR, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(replay_file_parse(b, HDR + 15, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(replay_file_parse(b, HDR + 16, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(replay_file_parse(b, sizeof(b), &n), 0);
	assert_int_equal(n, 3);
	for (size_t k = 1; k < HDR; k++) {   /* a torn header is not ours */
		n = 99;
		assert_int_equal(replay_file_parse(b, k, &n), -1);
		assert_int_equal(n, 0);
	}
	b[HDR - 2] = '2';   /* another version */
	assert_int_equal(replay_file_parse(b, sizeof(b), &n), -1);
	assert_int_equal(replay_file_parse((const uint8_t *)"root:x:0:0:root:/root:/bin/sh\n",
	                                   31, &n), -1);
	/* The old headerless format: raw hashes are not taken for ours. */
	memset(b, 0xa5, sizeof(b));
	assert_int_equal(replay_file_parse(b, sizeof(b), &n), -1);
}

/*
 * A recent file that is not ours (here a text file, or headerless records):
 * the state is lost, so the filter is closed for a period; the file is left
 * exactly as it was, and nothing is written next to it.
 */
static void test_file_foreign_recent(void **state)
{
	static const char text[] = "PasswordAuthentication no\n";
	enum log_level saved = log_get_level();
	struct replay_filter *rf;
	char back[64];
	struct tmp t;
	uint64_t now;
	FILE *f;

	tmp_make(&t);
	file_put(t.path, (const uint8_t *)text, sizeof(text) - 1);
	now = mtime_ms(t.path) + 1000;
	rf = replay_new(P, 100, now);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, now), -1);
	log_set_level(saved);
	assert_int_equal(check(rf, 1, now), REPLAY_FULL);
	assert_int_equal(check(rf, 1, now + P / 2), REPLAY_FULL);
	assert_int_equal(check(rf, 1, now + P), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, now + P + 1), REPLAY_SEEN);
	replay_free(rf);
	f = fopen(t.path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(back, 1, sizeof(back), f), sizeof(text) - 1);
	assert_memory_equal(back, text, sizeof(text) - 1);
	fclose(f);
	assert_int_equal(access(t.prev, F_OK), -1);
	/* A foreign .prev next to a good current file: closed as well. */
	replay_put(t.path, NULL, 0);
	file_put(t.prev, (const uint8_t *)text, sizeof(text) - 1);
	rf = replay_new(P, 100, now);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, now), -1);
	log_set_level(saved);
	assert_int_equal(check(rf, 1, now), REPLAY_FULL);
	assert_int_equal(file_size(t.prev), (long)sizeof(text) - 1);
	replay_free(rf);
	tmp_remove(&t);
}

/* An old file that is not ours: nothing lost, so open; but still not overwritten. */
static void test_file_foreign_stale(void **state)
{
	enum log_level saved = log_get_level();
	struct replay_filter *rf;
	struct tmp t;
	uint64_t now;

	tmp_make(&t);
	file_put(t.path, (const uint8_t *)"hello\n", 6);
	now = mtime_ms(t.path) + 2 * P + 1000;
	rf = replay_new(P, 100, now);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, now), -1);
	log_set_level(saved);
	assert_int_equal(check(rf, 1, now), REPLAY_FRESH);
	assert_int_equal(check(rf, 1, now), REPLAY_SEEN);
	assert_int_equal(file_size(t.path), 6);
	replay_free(rf);
	tmp_remove(&t);
}

/* A FIFO at the path: no hang on open or read; treated as state lost. */
static void test_file_fifo(void **state)
{
	enum log_level saved = log_get_level();
	struct replay_filter *rf;
	struct tmp t;
	uint64_t now;

	tmp_make(&t);
	assert_int_equal(mkfifo(t.path, 0600), 0);
	now = mtime_ms(t.path);
	rf = replay_new(P, 100, now);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, now), -1);
	log_set_level(saved);
	assert_int_equal(check(rf, 1, now), REPLAY_FULL);
	replay_free(rf);
	tmp_remove(&t);
}

/*
 * Bounded: a file holding more than one generation is read only up to max
 * records, and what is written back holds at most max.  The current file's
 * records are preferred over the older .prev's.
 */
static void test_file_capped(void **state)
{
	uint8_t buf[10 * REPLAY_HASH_LEN];
	enum log_level saved = log_get_level();
	struct replay_filter *rf;
	struct tmp t;
	uint64_t now;

	tmp_make(&t);
	for (unsigned i = 0; i < 10; i++)
		hash_of(100 + i, buf + i * REPLAY_HASH_LEN);
	replay_put(t.prev, buf, sizeof(buf));
	for (unsigned i = 0; i < 10; i++)
		hash_of(i, buf + i * REPLAY_HASH_LEN);
	replay_put(t.path, buf, sizeof(buf));
	now = mtime_ms(t.path);
	rf = replay_new(P, 4, now);
	log_set_level(LOG_LEVEL_WARN);   /* "more than one generation" is a notice */
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	log_set_level(saved);
	assert_int_equal(replay_count_prev(rf), 4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(check(rf, i, now), REPLAY_SEEN);
	assert_int_equal(check(rf, 100, now), REPLAY_FRESH);
	assert_int_equal(file_size(t.prev), HDR + 4 * REPLAY_HASH_LEN);
	replay_free(rf);
	tmp_remove(&t);
}

/*
 * Replaced through FILE.tmp: a leftover FILE.tmp, even a symlink planted
 * there, is removed, never written through.
 */
static void test_file_tmp_symlink(void **state)
{
	char tmp[160], target[160];
	struct replay_filter *rf;
	struct tmp t;

	tmp_make(&t);
	snprintf(tmp, sizeof(tmp), "%s.tmp", t.path);
	snprintf(target, sizeof(target), "%s/target", t.dir);
	file_put(target, (const uint8_t *)"keep", 4);
	assert_int_equal(symlink(target, tmp), 0);
	rf = replay_new(P, 100, T0);
	assert_int_equal(replay_file_attach(rf, t.path, T0), 0);
	assert_int_equal(file_size(target), 4);
	assert_int_equal(file_size(t.path), HDR);
	replay_free(rf);
	assert_int_equal(unlink(target), 0);
	tmp_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_rotation_boundaries),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_full_fails_closed),
		cmocka_unit_test(test_load_into_previous),
		cmocka_unit_test(test_load_capped),
		cmocka_unit_test(test_file_round_trip),
		cmocka_unit_test(test_file_stale),
		cmocka_unit_test(test_file_truncated_or_empty),
		cmocka_unit_test(test_file_unwritable),
		cmocka_unit_test(test_file_is_directory),
		cmocka_unit_test(test_file_parse),
		cmocka_unit_test(test_file_foreign_recent),
		cmocka_unit_test(test_file_foreign_stale),
		cmocka_unit_test(test_file_fifo),
		cmocka_unit_test(test_file_capped),
		cmocka_unit_test(test_file_tmp_symlink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
