/*
 * test-http.c - request path, media types and body reading (SPEC §4 rows
 * 1, 8, 9, 9a and 10), compressed bodies too (SPEC §10).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

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

/* Window bits for deflateInit2: each format the tests send. */
#define GZIP (15 + 16)
#define ZLIB 15
#define RAW (-15)

/* in compressed in the given format, appended to out (realloc'd). */
static void
compress_into(int format, const char *in, size_t in_len, size_t repeat, char **out, size_t *out_len)
{
	z_stream z = {0};
	unsigned char chunk[65536];
	int zr;

	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, format, 8, Z_DEFAULT_STRATEGY), Z_OK);
	for (size_t i = 0; i < repeat; i++) {
		int flush = i + 1 == repeat ? Z_FINISH : Z_NO_FLUSH;
		z.next_in = (unsigned char *)in;
		z.avail_in = (uInt)in_len;
		do {
			z.next_out = chunk;
			z.avail_out = sizeof(chunk);
			zr = deflate(&z, flush);
			assert_true(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
			*out = realloc(*out, *out_len + (sizeof(chunk) - z.avail_out) + 1);
			assert_non_null(*out);
			memcpy(*out + *out_len, chunk, sizeof(chunk) - z.avail_out);
			*out_len += sizeof(chunk) - z.avail_out;
		} while (z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	}
	deflateEnd(&z);
}

static char *
compressed(int format, const char *in, size_t *out_len)
{
	char *out = NULL;

	*out_len = 0;
	compress_into(format, in, strlen(in), 1, &out, out_len);
	return out;
}

/* http_read_body over body[0..body_len) with that Content-Encoding (and
 * CONTENT_LENGTH, when given); *consumed: how many body bytes it read. */
static enum eb_err
read_coded(const char *coding, const char *length, const char *body, size_t body_len, size_t chunk,
	   long long max, char **out, size_t *len, size_t *consumed)
{
	const char *params[] = {"HTTP_CONTENT_ENCODING", coding, "CONTENT_LENGTH", length, NULL};
	struct eb_transport t;
	struct memtransport m;
	char detail[256];
	enum eb_err err;

	if (length == NULL)
		params[2] = NULL;
	memtransport_init(&t, &m, coding != NULL ? params : params + 2, NULL);
	m.body = body;
	m.body_len = body_len;
	m.read_chunk = chunk;
	err = http_read_body(&t, max, out, len, detail, sizeof(detail));
	if (consumed != NULL)
		*consumed = m.body_pos;
	return err;
}

static const char json[] = "[{\"event_ID\": 1, \"subject\": \"compressed\"}, {\"event_ID\": 2}]";

static void
test_content_coding_names_and_lists(void **state)
{
	(void)state;
	assert_int_equal(http_content_coding(NULL), HTTP_CODING_IDENTITY);
	assert_int_equal(http_content_coding(""), HTTP_CODING_IDENTITY);
	assert_int_equal(http_content_coding("identity"), HTTP_CODING_IDENTITY);
	assert_int_equal(http_content_coding("Identity, identity"), HTTP_CODING_IDENTITY);
	assert_int_equal(http_content_coding("gzip"), HTTP_CODING_GZIP);
	assert_int_equal(http_content_coding(" GZip\t"), HTTP_CODING_GZIP);
	assert_int_equal(http_content_coding("x-gzip"), HTTP_CODING_GZIP);
	assert_int_equal(http_content_coding("deflate"), HTTP_CODING_DEFLATE);
	assert_int_equal(http_content_coding("DEFLATE"), HTTP_CODING_DEFLATE);
	/* identity and empty elements count for nothing */
	assert_int_equal(http_content_coding("gzip, identity"), HTTP_CODING_GZIP);
	assert_int_equal(http_content_coding("identity,deflate"), HTTP_CODING_DEFLATE);
	assert_int_equal(http_content_coding(", ,gzip,"), HTTP_CODING_GZIP);
}

static void
test_other_or_stacked_codings_unsupported(void **state)
{
	(void)state;
	assert_int_equal(http_content_coding("br"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("zstd"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("compress"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("gzipx"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("gzip, gzip"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("deflate, gzip"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("gzip, br"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("gzip;q=1"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("gzip deflate"), HTTP_CODING_UNSUPPORTED);
	assert_int_equal(http_content_coding("\"gzip\""), HTTP_CODING_UNSUPPORTED);
}

static void
test_gzip_and_deflate_bodies_inflate_as_read(void **state)
{
	size_t gz_len, zl_len, len, consumed;
	char *gz = compressed(GZIP, json, &gz_len), *zl = compressed(ZLIB, json, &zl_len);
	char *body, length[32];

	(void)state;
	/* a few bytes per read: inflated across many reads */
	assert_int_equal(read_coded("gzip", NULL, gz, gz_len, 3, 1000, &body, &len, &consumed),
			 EB_OK);
	assert_int_equal(len, strlen(json));
	assert_string_equal(body, json);
	assert_int_equal(consumed, gz_len);
	free(body);
	snprintf(length, sizeof(length), "%zu", zl_len);
	assert_int_equal(read_coded("Deflate", length, zl, zl_len, 0, 1000, &body, &len, NULL),
			 EB_OK);
	assert_string_equal(body, json);
	free(body);
	/* the limit counts inflated bytes: exactly max is fine */
	assert_int_equal(
		read_coded("gzip", NULL, gz, gz_len, 0, (long long)strlen(json), &body, &len, NULL),
		EB_OK);
	free(body);
	assert_int_equal(read_coded("gzip", NULL, gz, gz_len, 0, (long long)strlen(json) - 1, &body,
				    &len, NULL),
			 EB_ERR_BODY_TOO_LARGE);
	assert_null(body);
	free(gz);
	free(zl);
}

static void
test_identity_body_read_as_sent(void **state)
{
	char *body;
	size_t len;

	(void)state;
	assert_int_equal(read_coded("identity", "5", "[1,2]", 5, 0, 100, &body, &len, NULL), EB_OK);
	assert_string_equal(body, "[1,2]");
	free(body);
	assert_int_equal(read_coded("", NULL, "[1,2]", 5, 2, 100, &body, &len, NULL), EB_OK);
	assert_string_equal(body, "[1,2]");
	free(body);
}

static void
test_concatenated_gzip_members_are_one_body(void **state)
{
	char *gz = NULL, *body;
	size_t gz_len = 0, len;

	(void)state;
	compress_into(GZIP, "[1,", 3, 1, &gz, &gz_len);
	compress_into(GZIP, "2]", 2, 1, &gz, &gz_len);
	assert_int_equal(read_coded("gzip", NULL, gz, gz_len, 5, 100, &body, &len, NULL), EB_OK);
	assert_string_equal(body, "[1,2]");
	free(body);
	free(gz);
}

static void
test_bomb_is_413_before_most_of_it_is_read(void **state)
{
	static char zeros[1 << 20];
	char *bomb = NULL, *body, length[32];
	size_t bomb_len = 0, len, consumed;

	(void)state;
	compress_into(GZIP, zeros, sizeof(zeros), 64, &bomb, &bomb_len); /* 64 MiB */
	assert_true(bomb_len < 200000);
	assert_int_equal(
		read_coded("gzip", NULL, bomb, bomb_len, 1024, 1 << 20, &body, &len, &consumed),
		EB_ERR_BODY_TOO_LARGE);
	assert_null(body);
	/* 1 MiB inflated is about 1/64 of the compressed bytes */
	assert_true(consumed < bomb_len / 8);
	/* CONTENT_LENGTH is the compressed size, under max: the inflated
	 * size still stops it */
	snprintf(length, sizeof(length), "%zu", bomb_len);
	assert_int_equal(
		read_coded("gzip", length, bomb, bomb_len, 0, 16 << 20, &body, &len, &consumed),
		EB_ERR_BODY_TOO_LARGE);
	assert_true(consumed < bomb_len / 2);
	free(bomb);
}

static void
test_body_that_does_not_inflate_is_400(void **state)
{
	size_t gz_len, zl_len, raw_len, len;
	char *gz = compressed(GZIP, json, &gz_len), *zl = compressed(ZLIB, json, &zl_len);
	char *raw = compressed(RAW, json, &raw_len), *bad, *body;

	(void)state;
	bad = malloc(gz_len + 4);
	assert_non_null(bad);
	/* corrupt: a byte of the deflate data, caught by its structure or the CRC */
	memcpy(bad, gz, gz_len);
	bad[gz_len / 2] ^= 0x55;
	assert_int_equal(read_coded("gzip", NULL, bad, gz_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	assert_null(body);
	/* not compressed at all */
	assert_int_equal(read_coded("gzip", NULL, json, strlen(json), 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	/* truncated: the stream (then the trailer alone) cut short */
	for (size_t cut = 1; cut <= 8; cut += 7)
		assert_int_equal(
			read_coded("gzip", NULL, gz, gz_len - cut, 0, 1000, &body, &len, NULL),
			EB_ERR_BODY_INVALID);
	/* trailing garbage after the gzip member, and after the zlib stream */
	memcpy(bad, gz, gz_len);
	memcpy(bad + gz_len, "junk", 4);
	assert_int_equal(read_coded("gzip", NULL, bad, gz_len + 4, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	assert_int_equal(read_coded("gzip", NULL, bad, gz_len + 1, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	memcpy(bad, zl, zl_len);
	memcpy(bad + zl_len, "junk", 4);
	assert_int_equal(read_coded("deflate", NULL, bad, zl_len + 4, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	/* each name its own format; raw deflate is not "deflate" */
	assert_int_equal(read_coded("deflate", NULL, gz, gz_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	assert_int_equal(read_coded("gzip", NULL, zl, zl_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	assert_int_equal(read_coded("deflate", NULL, raw, raw_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_INVALID);
	assert_null(body);
	free(bad);
	free(gz);
	free(zl);
	free(raw);
}

static void
test_compressed_body_shorter_than_length_is_bad_length(void **state)
{
	size_t gz_len, len;
	char *gz = compressed(GZIP, json, &gz_len), *body, length[32];

	(void)state;
	snprintf(length, sizeof(length), "%zu", gz_len + 10);
	assert_int_equal(read_coded("gzip", length, gz, gz_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BAD_LENGTH);
	assert_null(body);
	/* an empty compressed body is an empty body (the handler's 400) */
	assert_int_equal(read_coded("gzip", "0", "", 0, 0, 1000, &body, &len, NULL), EB_OK);
	assert_int_equal(len, 0);
	free(body);
	free(gz);
}

static void
test_unsupported_coding_is_415_unread_after_length_check(void **state)
{
	size_t gz_len, len, consumed;
	char *gz = compressed(GZIP, json, &gz_len), *body;

	(void)state;
	assert_int_equal(read_coded("br", NULL, gz, gz_len, 0, 1000, &body, &len, &consumed),
			 EB_ERR_ENCODING);
	assert_null(body);
	assert_int_equal(consumed, 0);
	assert_int_equal(
		read_coded("gzip, gzip", NULL, gz, gz_len, 0, 1000, &body, &len, &consumed),
		EB_ERR_ENCODING);
	assert_int_equal(consumed, 0);
	/* row 9 comes first: a CONTENT_LENGTH over max is 413 whatever the coding */
	assert_int_equal(read_coded("br", "5000", gz, gz_len, 0, 1000, &body, &len, NULL),
			 EB_ERR_BODY_TOO_LARGE);
	free(gz);
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
	cmocka_unit_test(test_content_coding_names_and_lists),
	cmocka_unit_test(test_other_or_stacked_codings_unsupported),
	cmocka_unit_test(test_gzip_and_deflate_bodies_inflate_as_read),
	cmocka_unit_test(test_identity_body_read_as_sent),
	cmocka_unit_test(test_concatenated_gzip_members_are_one_body),
	cmocka_unit_test(test_bomb_is_413_before_most_of_it_is_read),
	cmocka_unit_test(test_body_that_does_not_inflate_is_400),
	cmocka_unit_test(test_compressed_body_shorter_than_length_is_bad_length),
	cmocka_unit_test(test_unsupported_coding_is_415_unread_after_length_check),
	cmocka_unit_test(test_health_path_with_any_prefix_and_one_trailing_slash),
	cmocka_unit_test(test_prefer_tx_rollback_among_other_preferences),
	cmocka_unit_test(test_prefer_anything_else_is_not_a_dry_run),
};

RUN_TESTS(tests)
