/*
 * test-http.c - request path, media types and body reading (SPEC §4 rows
 * 1, 8, 9 and 10).
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "memtransport.h"

static void
path_of(const char *const *params, const char *want)
{
	struct eb_transport t;
	struct memtransport m;
	char path[HTTP_PATH_MAX];

	memtransport_init(&t, &m, params, NULL);
	http_request_path(&t, path);
	assert_string_equal(path, want);
}

static void
test_path_from_script_name_and_path_info(void **state)
{
	(void)state;
	path_of((const char *const[]){"SCRIPT_NAME", "/api", "PATH_INFO", "/events-batch",
				      "REQUEST_URI", "/ignored", NULL},
		"/api/events-batch");
	path_of((const char *const[]){"SCRIPT_NAME", "/x/events-batch", NULL}, "/x/events-batch");
	path_of((const char *const[]){"SCRIPT_NAME", "", "PATH_INFO", "",
				      "REQUEST_URI", "/v1/events-batch?debug=1", NULL},
		"/v1/events-batch");
	path_of((const char *const[]){NULL}, "");
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

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_path_from_script_name_and_path_info),
	cmocka_unit_test(test_path_must_end_in_events_batch),
	cmocka_unit_test(test_json_media_types_accepted),
	cmocka_unit_test(test_other_media_types_refused),
	cmocka_unit_test(test_body_read_to_content_length),
	cmocka_unit_test(test_short_body_is_400),
	cmocka_unit_test(test_oversized_length_is_413_unread),
	cmocka_unit_test(test_body_without_length_read_to_end_and_capped),
};

RUN_TESTS(tests)
