/*
 * test-datetime.c - SPEC §5 date-times: accepted forms, UTC conversion,
 * impossible dates, formatting for storage.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datetime.h"

static void
expect_time(const char *in, const char *stored)
{
	struct eb_time t;
	char buf[EB_TIME_TEXT_LEN + 1];

	if (!eb_time_parse(in, strlen(in), &t))
		fail_msg("'%s' was refused", in);
	eb_time_format(&t, buf);
	if (strcmp(buf, stored) != 0)
		fail_msg("'%s' gave '%s', want '%s'", in, buf, stored);
}

static void
expect_refused(const char *in)
{
	struct eb_time t;

	if (eb_time_parse(in, strlen(in), &t))
		fail_msg("'%s' was accepted", in);
}

static void
test_accepts_every_documented_form(void **state)
{
	(void)state;
	expect_time("2024-03-01", "2024-03-01 00:00:00.000");
	expect_time("2024-03-01T10:05", "2024-03-01 10:05:00.000");
	expect_time("2024-03-01T10:05:07", "2024-03-01 10:05:07.000");
	expect_time("2024-03-01T10:05:07.5", "2024-03-01 10:05:07.500");
	expect_time("2024-03-01T10:05:07.123Z", "2024-03-01 10:05:07.123");
	expect_time("2024-03-01T10:05Z", "2024-03-01 10:05:00.000");
}

static void
test_truncates_fractions_to_milliseconds(void **state)
{
	(void)state;
	expect_time("2024-03-01T23:59:59.9999999Z", "2024-03-01 23:59:59.999");
	expect_time("2024-03-01T00:00:00.0019", "2024-03-01 00:00:00.001");
}

static void
test_converts_offsets_to_utc(void **state)
{
	(void)state;
	expect_time("2024-03-01T01:30:00+02:00", "2024-02-29 23:30:00.000");
	expect_time("2023-12-31T22:00:00-05:30", "2024-01-01 03:30:00.000");
	expect_time("2024-03-01T10:00:00+00:00", "2024-03-01 10:00:00.000");
	expect_time("2024-03-01T10:00:00.250-00:45", "2024-03-01 10:45:00.250");
}

static void
test_refuses_impossible_dates(void **state)
{
	(void)state;
	expect_refused("2024-02-30");
	expect_refused("2023-02-29");
	expect_refused("1900-02-29");
	expect_refused("2024-04-31");
	expect_refused("2024-13-01");
	expect_refused("2024-00-10");
	expect_refused("2024-01-00");
	expect_refused("0000-01-01");
	expect_refused("2024-01-01T24:00");
	expect_refused("2024-01-01T10:60");
	expect_refused("2024-01-01T10:00:60");
	expect_time("2000-02-29", "2000-02-29 00:00:00.000");
}

static void
test_refuses_malformed_text(void **state)
{
	(void)state;
	expect_refused("");
	expect_refused("2024-3-01");
	expect_refused("2024/03/01");
	expect_refused("2024-03-01 10:00");
	expect_refused("2024-03-01T10");
	expect_refused("2024-03-01T10:00:00.");
	expect_refused("2024-03-01T10:00:00+0200");
	expect_refused("2024-03-01T10:00:00+24:00");
	expect_refused("2024-03-01T10:00:00 Z");
	expect_refused("2024-03-01T10:00:00Zjunk");
	expect_refused("2024-03-01Z");
	expect_refused("+2024-03-01");
}

static void
test_refuses_offsets_that_leave_the_year_range(void **state)
{
	(void)state;
	expect_refused("0001-01-01T00:00:00+01:00");
	expect_refused("9999-12-31T23:30:00-01:00");
	expect_time("9999-12-31T23:59:59.999Z", "9999-12-31 23:59:59.999");
	expect_time("0001-01-01T00:00:00Z", "0001-01-01 00:00:00.000");
}

static void
test_reads_only_the_given_length(void **state)
{
	struct eb_time t;

	(void)state;
	/* the value is not NUL-terminated where the JSON string ends */
	assert_true(eb_time_parse("2024-03-01XYZ", 10, &t));
	assert_int_equal(t.day, 1);
}

static void
test_epoch_conversion_is_utc(void **state)
{
	struct eb_time t;
	char buf[EB_TIME_TEXT_LEN + 1];

	(void)state;
	eb_time_from_epoch_ms(0, &t);
	eb_time_format(&t, buf);
	assert_string_equal(buf, "1970-01-01 00:00:00.000");
	eb_time_from_epoch_ms(1709251200123LL, &t);
	eb_time_format(&t, buf);
	assert_string_equal(buf, "2024-03-01 00:00:00.123");
	eb_time_from_epoch_ms(-1, &t);
	eb_time_format(&t, buf);
	assert_string_equal(buf, "1969-12-31 23:59:59.999");
}

static void
test_now_ignores_tz(void **state)
{
	struct eb_time t;
	struct tm utc;
	time_t now;
	long ours, libc;

	(void)state;
	setenv("TZ", "Asia/Kolkata", 1); /* UTC+05:30: a local clock would show */
	tzset();
	now = time(NULL);
	eb_time_now(&t);
	gmtime_r(&now, &utc);
	ours = t.hour * 3600L + t.minute * 60L + t.second;
	libc = utc.tm_hour * 3600L + utc.tm_min * 60L + utc.tm_sec;
	/* equal within 2 s, modulo a day boundary */
	assert_true((ours - libc + 86400 + 2) % 86400 <= 4);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_accepts_every_documented_form),
	cmocka_unit_test(test_truncates_fractions_to_milliseconds),
	cmocka_unit_test(test_converts_offsets_to_utc),
	cmocka_unit_test(test_refuses_impossible_dates),
	cmocka_unit_test(test_refuses_malformed_text),
	cmocka_unit_test(test_refuses_offsets_that_leave_the_year_range),
	cmocka_unit_test(test_reads_only_the_given_length),
	cmocka_unit_test(test_epoch_conversion_is_utc),
	cmocka_unit_test(test_now_ignores_tz),
};

RUN_TESTS(tests)
