/*
 * Unit tests for the HELLO replay filter (src/wire/replay.c): duplicates,
 * the two generations and their rotation at exact boundary times on a
 * virtual clock, a clock that goes backwards, the fail-closed limit, and
 * the file that keeps the filter across restarts (loaded into the previous
 * generation; stale, truncated, empty and unwritable files).
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
#include <cmocka.h>

#include "util/log.h"
#include "wire/replay.h"

#define P 300000ULL     /* period: 5 minutes (clock_skew_min 2) */
#define T0 1700000000000ULL

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
	(void)unlink(t->path);
	(void)unlink(t->prev);
	assert_int_equal(rmdir(t->dir), 0);
}

static void file_put(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
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
	assert_int_equal(file_size(t.path), 0);
	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0), REPLAY_FRESH);
	assert_int_equal(check(rf, 2, T0), REPLAY_SEEN);       /* not written twice */
	assert_int_equal(file_size(t.path), 2 * REPLAY_HASH_LEN);
	assert_int_equal(check(rf, 3, T0 + P), REPLAY_FRESH);  /* rotates the file too */
	assert_int_equal(file_size(t.prev), 2 * REPLAY_HASH_LEN);
	assert_int_equal(file_size(t.path), REPLAY_HASH_LEN);
	replay_free(rf);

	/* Restart: both files are loaded, into the previous generation. */
	now = mtime_ms(t.path) + 1000;
	again = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(again, t.path, now), 0);
	assert_int_equal(replay_count_prev(again), 3);
	assert_int_equal(replay_count(again), 0);
	for (unsigned i = 1; i <= 3; i++)
		assert_int_equal(check(again, i, now), REPLAY_SEEN);
	/* The current file is appended to, not started over. */
	assert_int_equal(check(again, 4, now), REPLAY_FRESH);
	assert_int_equal(file_size(t.path), 2 * REPLAY_HASH_LEN);
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
	file_put(t.path, buf, sizeof(buf));
	file_put(t.prev, buf, REPLAY_HASH_LEN);
	/* Exactly two periods old: still loaded (the limit is inclusive). */
	now = mtime_ms(t.path) + 2 * P;
	rf = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	assert_int_equal(replay_count_prev(rf), 2);
	assert_int_equal(file_size(t.path), 2 * REPLAY_HASH_LEN);
	replay_free(rf);
	/* One second more: ignored and truncated. */
	now += 1000;
	rf = replay_new(P, 100, now);
	assert_int_equal(replay_file_attach(rf, t.path, now), 0);
	assert_int_equal(replay_count_prev(rf), 0);
	assert_int_equal(file_size(t.path), 0);
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
	file_put(t.path, buf, 2 * REPLAY_HASH_LEN + 9);   /* torn third record */
	file_put(t.prev, buf, 0);
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

/* The path is a directory: not loaded, not written, not fatal. */
static void test_file_is_directory(void **state)
{
	struct tmp t;
	struct replay_filter *rf;
	enum log_level saved = log_get_level();

	tmp_make(&t);
	assert_int_equal(mkdir(t.path, 0700), 0);
	rf = replay_new(P, 100, T0);
	log_set_level(LOG_LEVEL_ERR);
	assert_int_equal(replay_file_attach(rf, t.path, mtime_ms(t.path)), -1);
	log_set_level(saved);
	assert_int_equal(replay_count_prev(rf), 0);
	assert_int_equal(check(rf, 1, T0), REPLAY_FRESH);
	replay_free(rf);
	assert_int_equal(rmdir(t.path), 0);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
