/*
 * test-http.c - request path, media types and body reading (SPEC §4 rows
 * 1, 8, 9 and 10).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "memtransport.h"

/* The path the params give, and whether it is whole. */
static bool
path_of(const char *const *params, const char *want)
{
	struct eb_transport t;
	struct memtransport m;
	char path[HTTP_PATH_MAX + 1];
	bool whole;

	memtransport_init(&t, &m, params, NULL);
	whole = http_request_path(&t, path);
	assert_string_equal(path, want);
	return whole;
}

static void
test_path_from_script_name_and_path_info(void **state)
{
	(void)state;
	assert_true(path_of((const char *const[]){"SCRIPT_NAME", "/api", "PATH_INFO",
						  "/events-batch", "REQUEST_URI", "/ignored", NULL},
			    "/api/events-batch"));
	assert_true(path_of((const char *const[]){"SCRIPT_NAME", "/x/events-batch", NULL},
			    "/x/events-batch"));
	assert_true(path_of((const char *const[]){"SCRIPT_NAME", "", "PATH_INFO", "", "REQUEST_URI",
						  "/v1/events-batch?debug=1", NULL},
			    "/v1/events-batch"));
	assert_true(path_of((const char *const[]){NULL}, ""));
}

/* A path of n bytes ending in "/events-batch" (n >= 14). */
static char *
long_path(size_t n)
{
	char *p = malloc(n + 1);

	assert_non_null(p);
	memset(p, 'a', n);
	memcpy(p + n - 13, "/events-batch", 13);
	p[0] = '/';
	p[n] = '\0';
	return p;
}

static void
test_path_over_2048_bytes_is_not_whole(void **state)
{
	char *at = long_path(HTTP_PATH_MAX), *over = long_path(HTTP_PATH_MAX + 1);
	char *uri = malloc(HTTP_PATH_MAX + 100), script[1001], cut[HTTP_PATH_MAX + 1];
	/* the attack: its first 2,047 bytes end in /events-batch */
	char attack[2100];

	(void)state;
	assert_true(path_of((const char *const[]){"SCRIPT_NAME", at, NULL}, at));
	memcpy(cut, over, HTTP_PATH_MAX);
	cut[HTTP_PATH_MAX] = '\0';
	assert_false(path_of((const char *const[]){"SCRIPT_NAME", over, NULL}, cut));
	/* SCRIPT_NAME and PATH_INFO count together */
	memcpy(script, at, 1000);
	script[1000] = '\0';
	assert_true(path_of(
		(const char *const[]){"SCRIPT_NAME", script, "PATH_INFO", at + 1000, NULL}, at));
	assert_false(path_of(
		(const char *const[]){"SCRIPT_NAME", script, "PATH_INFO", over + 1000, NULL}, cut));
	/* the query is not part of the path */
	assert_non_null(uri);
	snprintf(uri, HTTP_PATH_MAX + 100, "%s?%080d", at, 0);
	assert_true(path_of((const char *const[]){"REQUEST_URI", uri, NULL}, at));
	snprintf(uri, HTTP_PATH_MAX + 100, "%s?%080d", over, 0);
	assert_false(path_of((const char *const[]){"REQUEST_URI", uri, NULL}, cut));
	snprintf(attack, sizeof(attack), "/%02033d/events-batch/../../admin", 0);
	assert_int_equal(strlen(attack), 2059);
	memcpy(cut, attack, HTTP_PATH_MAX);
	assert_false(path_of((const char *const[]){"SCRIPT_NAME", attack, NULL}, cut));
	cut[HTTP_PATH_MAX - 1] = '\0';
	assert_true(http_path_matches(cut)); /* what a buffer of 2,047 bytes judged */
	free(at);
	free(over);
	free(uri);
}

/* http_path_text of in is want. */
static void
text_is(const char *in, const char *want)
{
	char out[HTTP_PATH_TEXT_MAX];

	http_path_text(in, out);
	if (strcmp(out, want) != 0)
		fail_msg("'%s' became '%s', want '%s'", in, out, want);
}

#define FFFD "\xef\xbf\xbd"

static void
test_path_text_replaces_each_ill_formed_part(void **state)
{
	static char all_ff[HTTP_PATH_MAX + 1], all_fffd[HTTP_PATH_TEXT_MAX];

	(void)state;
	text_is("/api/events-batch", "/api/events-batch");
	text_is("/\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80/\xf4\x8f\xbf\xbf",
		"/\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80/\xf4\x8f\xbf\xbf");
	text_is("/\xff/events-batch", "/" FFFD "/events-batch");
	/* an overlong '/': neither byte can start or continue anything */
	text_is("/\xc0\xaf", "/" FFFD FFFD);
	text_is("\x80\xbf", FFFD FFFD);
	/* a cut sequence is one maximal subpart, whatever follows it */
	text_is("\xe2\x82", FFFD);
	text_is("\xe2\x82/", FFFD "/");
	text_is("\xf0\x9f\x98", FFFD);
	text_is("\xf0\x9f\x98\xc3\xa9", FFFD "\xc3\xa9");
	/* overlong three- and four-byte forms, a surrogate, past U+10FFFF */
	text_is("\xe0\x80\xaf", FFFD FFFD FFFD);
	text_is("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);
	text_is("\xed\xa0\x80", FFFD FFFD FFFD);
	text_is("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	text_is("\xf5\xfe\xc1", FFFD FFFD FFFD);
	/* the most it can grow: 3 bytes for each */
	memset(all_ff, 0xff, HTTP_PATH_MAX);
	for (int i = 0; i < HTTP_PATH_MAX; i++)
		memcpy(all_fffd + 3 * i, FFFD, 3);
	text_is(all_ff, all_fffd);
}

static void
test_path_must_end_in_events_batch(void **state)
{
	(void)state;
	assert_true(http_path_matches("/events-batch"));
	assert_true(http_path_matches("/a/b/events-batch"));
	assert_true(http_path_matches("/events-batch/"));
	assert_false(http_path_matches("/events-batch//"));
	assert_false(http_path_matches("/events-batches"));
	assert_false(http_path_matches("/myevents-batch"));
	assert_false(http_path_matches("events-batch"));
	assert_false(http_path_matches("/events-batch/x"));
	assert_false(http_path_matches(""));
}

static void
test_json_media_types_accepted(void **state)
{
	(void)state;
	assert_true(http_content_type_ok("application/json"));
	assert_true(http_content_type_ok("Application/JSON"));
	assert_true(http_content_type_ok("text/json"));
	assert_true(http_content_type_ok("application/vnd.vba.events+json"));
	assert_true(http_content_type_ok("application/json; charset=utf-8"));
	assert_true(http_content_type_ok("application/json;charset=\"UTF-8\""));
	assert_true(http_content_type_ok("application/json ; foo=bar; charset=utf-8"));
}

static void
test_other_media_types_refused(void **state)
{
	(void)state;
	assert_false(http_content_type_ok(NULL));
	assert_false(http_content_type_ok(""));
	assert_false(http_content_type_ok("text/plain"));
	assert_false(http_content_type_ok("application/jsonx"));
	assert_false(http_content_type_ok("application/+json"));
	assert_false(http_content_type_ok("text/vnd+json"));
	assert_false(http_content_type_ok("application/json; charset=latin-1"));
	assert_false(http_content_type_ok("application/json; charset=\"utf-8"));
	assert_false(http_content_type_ok("application/json garbage"));
}

static enum eb_err
read_body(const char *length, const char *body, size_t chunk, long long max, char **out,
	  size_t *len)
{
	const char *params[] = {"CONTENT_LENGTH", length, NULL};
	struct eb_transport t;
	struct memtransport m;
	char detail[256];

	memtransport_init(&t, &m, length ? params : (const char *const[]){NULL}, body);
	m.read_chunk = chunk;
	return http_read_body(&t, max, out, len, detail, sizeof(detail));
}

static void
test_body_read_to_content_length(void **state)
{
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(read_body("5", "[1,2]trailing", 2, 100, &body, &len), EB_OK);
	assert_int_equal(len, 5);
	assert_string_equal(body, "[1,2]");
	free(body);
}

static void
test_short_body_is_400(void **state)
{
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(read_body("50", "[1,2]", 0, 100, &body, &len), EB_ERR_BAD_LENGTH);
	assert_null(body);
}

static void
test_oversized_length_is_413_unread(void **state)
{
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(read_body("2147483648", "[]", 0, 100, &body, &len), EB_ERR_BODY_TOO_LARGE);
	/* a number too large for any integer type is still a number over max */
	assert_int_equal(read_body("1125899906842625", "[]", 0, 100, &body, &len),
			 EB_ERR_BODY_TOO_LARGE);
	assert_int_equal(read_body("99999999999999999999999", "[]", 0, 100, &body, &len),
			 EB_ERR_BODY_TOO_LARGE);
	assert_int_equal(read_body("00000000000000000000000000000000000000005", "[1,2]", 0, 100,
				   &body, &len),
			 EB_OK);
	assert_int_equal(len, 5);
	free(body);
	assert_int_equal(read_body("99999999999999999999999x", "[]", 0, 100, &body, &len),
			 EB_ERR_BAD_LENGTH);
	assert_int_equal(read_body("-1", "[]", 0, 100, &body, &len), EB_ERR_BAD_LENGTH);
	assert_int_equal(read_body("12abc", "[]", 0, 100, &body, &len), EB_ERR_BAD_LENGTH);
}

static void
test_body_without_length_read_to_end_and_capped(void **state)
{
	static char big[200001];
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(read_body(NULL, "[1]", 1, 100, &body, &len), EB_OK);
	assert_string_equal(body, "[1]");
	free(body);
	memset(big, ' ', sizeof(big) - 1);
	assert_int_equal(read_body(NULL, big, 0, 100000, &body, &len), EB_ERR_BODY_TOO_LARGE);
	assert_int_equal(read_body(NULL, big, 333, 200000, &body, &len), EB_OK);
	assert_int_equal(len, 200000);
	free(body);
	assert_int_equal(read_body("", "[]", 0, 100, &body, &len), EB_OK);
	free(body);
}

static void
test_health_path_with_any_prefix_and_one_trailing_slash(void **state)
{
	(void)state;
	assert_true(http_path_is_health("/events-batch/health"));
	assert_true(http_path_is_health("/api/events-batch/health/"));
	assert_false(http_path_is_health("/api/events-batch/health//"));
	assert_false(http_path_is_health("/api/events-batch/healthz"));
	assert_false(http_path_is_health("/api/events-batch"));
	assert_false(http_path_is_health("/api/xevents-batch/health"));
	assert_false(http_path_is_health("health"));
	/* the batch path is not the health path's prefix match */
	assert_false(http_path_matches("/api/events-batch/health"));
}

static void
test_prefer_tx_rollback_among_other_preferences(void **state)
{
	(void)state;
	assert_true(http_prefer_rollback("tx=rollback"));
	assert_true(http_prefer_rollback("TX=ROLLBACK"));
	assert_true(http_prefer_rollback("return=minimal, tx=rollback"));
	assert_true(http_prefer_rollback("return=minimal,tx=rollback;foo=bar"));
	assert_true(http_prefer_rollback(" \t tx = \"rollback\" , respond-async"));
	assert_true(http_prefer_rollback("wait=10; x=\"a,tx=commit\", tx=rollback"));
	assert_true(http_prefer_rollback("@@@, tx=rollback"));
	assert_true(http_prefer_rollback(",,tx=rollback,"));
}

static void
test_prefer_anything_else_is_not_a_dry_run(void **state)
{
	(void)state;
	assert_false(http_prefer_rollback(NULL));
	assert_false(http_prefer_rollback(""));
	assert_false(http_prefer_rollback("tx=commit"));
	assert_false(http_prefer_rollback("return=minimal"));
	assert_false(http_prefer_rollback("tx"));
	assert_false(http_prefer_rollback("tx="));
	assert_false(http_prefer_rollback("tx=rollbacks"));
	assert_false(http_prefer_rollback("tx=roll"));
	assert_false(http_prefer_rollback("xtx=rollback"));
	/* a parameter of another preference, or inside a quoted string */
	assert_false(http_prefer_rollback("return=minimal; tx=rollback"));
	assert_false(http_prefer_rollback("foo=\"x, tx=rollback\""));
	assert_false(http_prefer_rollback("foo=\"unterminated, tx=rollback"));
	/* only the first tx counts (RFC 7240 §2) */
	assert_false(http_prefer_rollback("tx=commit, tx=rollback"));
	assert_true(http_prefer_rollback("tx=rollback, tx=commit"));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_path_from_script_name_and_path_info),
	cmocka_unit_test(test_path_over_2048_bytes_is_not_whole),
	cmocka_unit_test(test_path_text_replaces_each_ill_formed_part),
	cmocka_unit_test(test_path_must_end_in_events_batch),
	cmocka_unit_test(test_json_media_types_accepted),
	cmocka_unit_test(test_other_media_types_refused),
	cmocka_unit_test(test_body_read_to_content_length),
	cmocka_unit_test(test_short_body_is_400),
	cmocka_unit_test(test_oversized_length_is_413_unread),
	cmocka_unit_test(test_body_without_length_read_to_end_and_capped),
	cmocka_unit_test(test_health_path_with_any_prefix_and_one_trailing_slash),
	cmocka_unit_test(test_prefer_tx_rollback_among_other_preferences),
	cmocka_unit_test(test_prefer_anything_else_is_not_a_dry_run),
};

RUN_TESTS(tests)
