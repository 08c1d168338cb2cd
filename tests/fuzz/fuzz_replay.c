/*
 * libFuzzer harness for the replay filter's file (src/wire/replay.c).
 *
 * Input: the bytes of a replay filter file.  The pure parser must find a
 * record count that fits the input, or refuse it; the same bytes are then
 * written as FILE and read back by replay_file_attach, which must load
 * exactly the distinct whole records of a file it accepts (of its first
 * generation's worth of records), nothing of one it refuses, and leave the refused
 * file as it was.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "util/hmap.h"
#include "util/log.h"
#include "wire/replay.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define MAXREC 64
#define PERIOD_MS 300000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[128], prev[140];

/* The scratch directory goes when libFuzzer exits. */
static void cleanup(void)
{
	char tmp[160];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void)unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s.tmp", prev);
	(void)unlink(tmp);
	(void)unlink(path);
	(void)unlink(prev);
	(void)rmdir(dir);
}

static void setup(void)
{
	if (dir[0] != '\0')
		return;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_replay.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/replay", dir);
	snprintf(prev, sizeof(prev), "%s.prev", path);
	atexit(cleanup);
	log_set_level(LOG_LEVEL_ERR);   /* refused files are warned about */
}

static void put(const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

/*
 * Distinct records among the first n of p.  The loader reads one
 * generation's worth of the file (MAXREC records), so n <= MAXREC here.
 */
static size_t distinct(const uint8_t *p, size_t n)
{
	struct hmap *m = hmap_new();
	size_t c;

	CHECK(m != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK(hmap_put(m, p + i * REPLAY_HASH_LEN, REPLAY_HASH_LEN, (void *)1) == 0);
	c = hmap_count(m);
	hmap_free(m);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t now = (uint64_t)time(NULL) * 1000;
	struct replay_filter *rf;
	size_t nrec = 12345;
	struct stat st;
	int ok;

	setup();
	ok = replay_file_parse(data, size, &nrec) == 0;
	if (ok)
		CHECK(size == 0 || REPLAY_FILE_HDR_LEN + nrec * REPLAY_HASH_LEN <= size);
	else
		CHECK(nrec == 0);

	(void)unlink(prev);
	put(data, size);
	rf = replay_new(PERIOD_MS, MAXREC, now);
	CHECK(rf != NULL);
	if (ok) {
		CHECK(replay_file_attach(rf, path, now) == 0);
		if (nrec > MAXREC)
			nrec = MAXREC;
		CHECK(replay_count_prev(rf) == distinct(data + REPLAY_FILE_HDR_LEN, nrec));
		for (size_t i = 0; i < nrec; i++)
			CHECK(replay_check(rf, data + REPLAY_FILE_HDR_LEN + i * REPLAY_HASH_LEN, now) ==
			      REPLAY_SEEN);
		CHECK(stat(prev, &st) == 0 &&
		      (size_t)st.st_size == REPLAY_FILE_HDR_LEN + replay_count_prev(rf) * REPLAY_HASH_LEN);
	} else {
		/* Refused: nothing loaded, closed for a period, the file untouched. */
		CHECK(replay_file_attach(rf, path, now) == -1);
		CHECK(replay_count_prev(rf) == 0);
		CHECK(replay_check(rf, (const uint8_t *)"0123456789abcdef", now) == REPLAY_FULL);
		CHECK(stat(path, &st) == 0 && (size_t)st.st_size == size);
	}
	replay_free(rf);
	return 0;
}
