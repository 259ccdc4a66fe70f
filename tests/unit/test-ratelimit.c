/*
 * test-ratelimit.c - the token bucket's arithmetic at fixed clocks, and its
 * state file: shared exactly by processes at once, repaired when corrupt or
 * short (cut short under the mapping too), mapped again when deleted or
 * replaced, and never a refusal when it cannot be used.
 */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "ratelimit.h"

#define S 1000000000ULL /* one second in ns */

/* A clock far from zero, as CLOCK_MONOTONIC is on a running host. */
#define T0 (1000 * S)

static char dir[] = "/tmp/eb-rate-XXXXXX";
static unsigned char hashes[2][EB_SHA256_LEN];
static struct eb_config cfg;
static char path0[512];

static int
setup(void **state)
{
	char name[32];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	memset(hashes[0], 0x11, EB_SHA256_LEN);
	memset(hashes[1], 0x22, EB_SHA256_LEN);
	cfg.api_keys = hashes;
	cfg.n_api_keys = 2;
	cfg.rate_per_second = 1;
	cfg.rate_burst = 5;
	cfg.rate_state_dir = dir;
	ratelimit_file_name(hashes[0], name, sizeof(name));
	snprintf(path0, sizeof(path0), "%s/%s", dir, name);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	(void)state;
	ratelimit_close();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Start each test from no files and no open slots. */
static void
fresh(void)
{
	char name[32], path[512];

	ratelimit_close();
	for (int k = 0; k < 2; k++) {
		ratelimit_file_name(hashes[k], name, sizeof(name));
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		unlink(path);
		rmdir(path);
	}
}

/* How many of n requests at one instant pass. */
static int
allowed_at(size_t key, uint64_t now, int n)
{
	struct rl_verdict v;
	int passed = 0;

	for (int i = 0; i < n; i++) {
		ratelimit_check_at(&cfg, key, now, &v);
		assert_true(v.limited);
		passed += v.allowed;
	}
	return passed;
}

static void
test_a_full_bucket_lets_burst_through_then_one_per_interval(void **state)
{
	uint64_t tat = 0;
	struct rl_verdict v;

	(void)state;
	for (long i = 0; i < 5; i++) {
		rl_take(&tat, T0, S, 5, &v);
		assert_true(v.allowed);
		assert_int_equal(v.limit, 5);
		assert_int_equal(v.remaining, 4 - i);
		assert_int_equal(v.reset_seconds, i + 1); /* until full again */
	}
	rl_take(&tat, T0, S, 5, &v);
	assert_false(v.allowed);
	assert_int_equal(v.remaining, 0);
	assert_int_equal(v.retry_after, 1);
	assert_int_equal(v.reset_seconds, 5);
	assert_int_equal(tat, T0 + 5 * S); /* a refusal takes nothing */
	/* 0.4 s on: still nothing; 1 s on: one token */
	rl_take(&tat, T0 + 4 * S / 10, S, 5, &v);
	assert_false(v.allowed);
	assert_int_equal(v.retry_after, 1); /* 0.6 s, rounded up */
	rl_take(&tat, T0 + S, S, 5, &v);
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 0);
	rl_take(&tat, T0 + S, S, 5, &v);
	assert_false(v.allowed);
	/* long idle: full again, and never more than full */
	rl_take(&tat, T0 + 100 * S, S, 5, &v);
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 4);
}

static void
test_fractional_tokens_refill_smoothly(void **state)
{
	uint64_t tat = 0;
	struct rl_verdict v;
	int passed = 0;

	(void)state;
	/* 25/s burst 50: 50 at once, then one every 40 ms */
	for (int i = 0; i < 60; i++) {
		rl_take(&tat, T0, S / 25, 50, &v);
		passed += v.allowed;
	}
	assert_int_equal(passed, 50);
	assert_int_equal(v.retry_after, 1); /* 40 ms is at least 1 s */
	rl_take(&tat, T0 + S / 50, S / 25, 50, &v);
	assert_false(v.allowed);
	rl_take(&tat, T0 + S / 25, S / 25, 50, &v);
	assert_true(v.allowed);
	/* the bucket is empty now: over the next 10 s at 100 a second,
	 * 250 pass, 25 a second */
	passed = 0;
	for (uint64_t t = S / 100; t <= 10 * S; t += S / 100) {
		rl_take(&tat, T0 + S / 25 + t, S / 25, 50, &v);
		passed += v.allowed;
	}
	assert_in_range(passed, 249, 251);
}

static void
test_an_impossible_tat_is_a_full_bucket(void **state)
{
	uint64_t tat = T0 + 3600 * S; /* a clock that restarted, or garbage */
	struct rl_verdict v;

	(void)state;
	rl_take(&tat, T0, S, 5, &v);
	assert_true(v.allowed);
	assert_int_equal(v.remaining, 4);
	tat = UINT64_MAX;
	rl_take(&tat, T0, S, 5, &v);
	assert_true(v.allowed);
}

static void
test_headers(void **state)
{
	struct rl_verdict v = {0};
	char buf[RATELIMIT_HEADERS_MAX];

	(void)state;
	ratelimit_headers(&v, buf);
	assert_string_equal(buf, "");
	v = (struct rl_verdict){
		.limited = true, .allowed = true, .limit = 50, .remaining = 49, .reset_seconds = 1};
	ratelimit_headers(&v, buf);
	assert_string_equal(buf, "RateLimit-Limit: 50\r\nRateLimit-Remaining: 49\r\n"
				 "RateLimit-Reset: 1\r\n");
	v = (struct rl_verdict){.limited = true, .limit = 5, .reset_seconds = 5, .retry_after = 1};
	ratelimit_headers(&v, buf);
	assert_string_equal(buf, "RateLimit-Limit: 5\r\nRateLimit-Remaining: 0\r\n"
				 "RateLimit-Reset: 5\r\nRetry-After: 1\r\n");
	/* the longest there can be fits; a negative figure is 0 */
	v = (struct rl_verdict){.limited = true,
				.limit = LONG_MAX,
				.remaining = LONG_MAX,
				.reset_seconds = LONG_MAX,
				.retry_after = LONG_MAX};
	ratelimit_headers(&v, buf);
	assert_int_equal(strlen(buf), RATELIMIT_HEADERS_MAX - 1);
	assert_non_null(strstr(buf, "Retry-After: 9223372036854775807\r\n"));
	v = (struct rl_verdict){.limited = true, .allowed = true, .limit = 5, .remaining = -3};
	ratelimit_headers(&v, buf);
	assert_string_equal(buf, "RateLimit-Limit: 5\r\nRateLimit-Remaining: 0\r\n"
				 "RateLimit-Reset: 0\r\n");
}

static void
test_no_limit_configured_is_no_verdict(void **state)
{
	struct eb_config none = cfg;
	struct rl_verdict v;

	(void)state;
	fresh();
	none.rate_per_second = 0;
	ratelimit_check(&none, 0, &v);
	assert_false(v.limited);
	assert_int_equal(access(path0, F_OK), -1); /* no file made */
}

static void
test_the_file_holds_the_bucket_and_keys_are_separate(void **state)
{
	(void)state;
	fresh();
	assert_int_equal(allowed_at(0, T0, 8), 5);
	assert_int_equal(allowed_at(1, T0, 8), 5);
	/* another process: the bucket comes from the file */
	ratelimit_close();
	assert_int_equal(allowed_at(0, T0, 3), 0);
	assert_int_equal(allowed_at(0, T0 + 2 * S, 3), 2);
}

static void
write_file(const void *bytes, size_t n)
{
	int fd = open(path0, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	close(fd);
}

static void
test_a_corrupt_or_short_file_is_a_full_bucket(void **state)
{
	unsigned char junk[32];
	struct stat st;

	(void)state;
	fresh();
	assert_int_equal(allowed_at(0, T0, 6), 5);
	memset(junk, 0xa5, sizeof(junk));
	write_file(junk, sizeof(junk)); /* while this process has it mapped */
	assert_int_equal(allowed_at(0, T0, 6), 5);
	write_file(junk, 7);
	assert_int_equal(allowed_at(0, T0, 6), 5);
	/* found short a second on: made whole again, and full (what lay
	 * past the end was never in the file) */
	assert_int_equal(allowed_at(0, T0 + 2 * S, 6), 5);
	assert_int_equal(stat(path0, &st), 0);
	assert_int_equal(st.st_size, 16);
	/* cut to nothing under the mapping: its next access is a SIGBUS,
	 * caught; the file is made whole at once, and the process lives */
	write_file("", 0);
	assert_int_equal(allowed_at(0, T0 + 2 * S, 6), 5);
	assert_int_equal(stat(path0, &st), 0);
	assert_int_equal(st.st_size, 16);
	ratelimit_close();
	assert_int_equal(allowed_at(0, T0 + 2 * S, 1), 0); /* the file holds it */
	/* a flipped high bit in the time: beyond any bucket, so full, not stuck */
	{
		unsigned char rec[16];
		int fd = open(path0, O_RDWR);
		assert_int_equal(pread(fd, rec, 16, 0), 16);
		rec[15] ^= 0x40;
		assert_int_equal(pwrite(fd, rec, 16, 0), 16);
		close(fd);
	}
	assert_int_equal(allowed_at(0, T0 + 2 * S, 6), 5);
}

static void
test_a_deleted_or_replaced_file_is_opened_again(void **state)
{
	char other[600];

	(void)state;
	fresh();
	assert_int_equal(allowed_at(0, T0, 6), 5);
	unlink(path0);
	/* within the second, the process still has the old file */
	assert_int_equal(allowed_at(0, T0 + S / 2, 1), 0);
	assert_int_equal(access(path0, F_OK), -1);
	/* a second on, it follows the path: a new file, a full bucket */
	assert_int_equal(allowed_at(0, T0 + 3 * S / 2, 6), 5);
	assert_int_equal(access(path0, F_OK), 0);
	/* replaced by rename: followed too */
	snprintf(other, sizeof(other), "%s.new", path0);
	assert_int_equal(close(open(other, O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(rename(other, path0), 0);
	assert_int_equal(allowed_at(0, T0 + 3 * S, 6), 5);
	ratelimit_close();
	assert_int_equal(allowed_at(0, T0 + 3 * S, 1), 0); /* that one holds the bucket */
}

static void
test_an_unusable_file_limits_the_process_alone(void **state)
{
	(void)state;
	fresh();
	/* a folder where the file should be: fails for root too */
	assert_int_equal(mkdir(path0, 0700), 0);
	assert_int_equal(allowed_at(0, T0, 6), 5);
	assert_int_equal(allowed_at(0, T0 + S, 2), 1);
	/* usable again: the file's bucket, full */
	assert_int_equal(rmdir(path0), 0);
	assert_int_equal(allowed_at(0, T0 + S, 6), 5);
}

/* Processes that check one key at once, each with a mapping of its own,
 * take exactly the bucket between them: no take is lost or doubled. */
static void
test_processes_at_once_take_exactly_the_bucket(void **state)
{
	enum { PROCS = 4, EACH = 50000 };
	struct eb_config many = cfg;
	int fds[2], passed = 0, status;
	struct rl_verdict v;
	pid_t kids[PROCS];

	(void)state;
	fresh();
	many.rate_burst = PROCS * EACH / 2;
	assert_int_equal(pipe(fds), 0);
	for (int k = 0; k < PROCS; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			int mine = 0;

			ratelimit_close(); /* a mapping of its own */
			for (int i = 0; i < EACH; i++) {
				ratelimit_check_at(&many, 0, T0, &v);
				mine += v.allowed;
			}
			_exit(write(fds[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 1);
		}
	}
	for (int k = 0; k < PROCS; k++) {
		int mine;

		assert_int_equal(read(fds[0], &mine, sizeof(mine)), sizeof(mine));
		assert_in_range(mine, 0, EACH);
		passed += mine;
		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_int_equal(status, 0);
	}
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(passed, many.rate_burst);
	ratelimit_check_at(&many, 0, T0, &v);
	assert_false(v.allowed); /* and the file is empty */
}

static void
test_a_missing_folder_is_made(void **state)
{
	struct eb_config sub = cfg;
	char subdir[600];
	struct rl_verdict v;

	(void)state;
	fresh();
	snprintf(subdir, sizeof(subdir), "%s/sub", dir);
	sub.rate_state_dir = subdir;
	ratelimit_check_at(&sub, 0, T0, &v);
	assert_true(v.allowed);
	assert_int_equal(access(subdir, F_OK), 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_a_full_bucket_lets_burst_through_then_one_per_interval),
	cmocka_unit_test(test_fractional_tokens_refill_smoothly),
	cmocka_unit_test(test_an_impossible_tat_is_a_full_bucket),
	cmocka_unit_test(test_headers),
	cmocka_unit_test(test_no_limit_configured_is_no_verdict),
	cmocka_unit_test(test_the_file_holds_the_bucket_and_keys_are_separate),
	cmocka_unit_test(test_a_corrupt_or_short_file_is_a_full_bucket),
	cmocka_unit_test(test_a_deleted_or_replaced_file_is_opened_again),
	cmocka_unit_test(test_an_unusable_file_limits_the_process_alone),
	cmocka_unit_test(test_processes_at_once_take_exactly_the_bucket),
	cmocka_unit_test(test_a_missing_folder_is_made),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
