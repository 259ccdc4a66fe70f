/*
 * test-batch.c - the body read one element at a time: the same verdict as
 * Jansson on the whole body, each item's result, rows that outlive the body.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"

static const struct event_defaults defs = {
	.now = {2026, 1, 2, 3, 4, 5, 6},
	.user = "token-user",
};

#define ITEM(id)                                                                                   \
	"{\"event_ID\": " #id ", \"claim_Audit_Event\": false, "                                   \
	"\"process_Automation_Event\": false, \"reminder\": false}"

/* What the whole body parsed at once says: NULL when it is an array (its
 * size in *n), else the detail a refused body must carry. */
static const char *
whole_verdict(const char *body, size_t len, size_t *n, char *detail, size_t detail_len)
{
	json_error_t jerr;
	json_t *all = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);

	if (all == NULL) {
		snprintf(detail, detail_len, "invalid JSON: %s at line %d column %d", jerr.text,
			 jerr.line, jerr.column);
		return detail;
	}
	if (!json_is_array(all)) {
		json_decref(all);
		snprintf(detail, detail_len, "the body must be a JSON array of events");
		return detail;
	}
	*n = json_array_size(all);
	json_decref(all);
	return NULL;
}

static void
framing_agrees_with_jansson(void **state)
{
	static const char *const bodies[] = {
		"[]",
		" [ ] ",
		"\n[\r\n]\t",
		"[{}]",
		"[1]",
		"[ 1 , 2 ]",
		"[true,false,null]",
		"[\"a]b\"]",
		"[\"a\\\"],\"]",
		"[\"\\\\\"]",
		"[\"\\\\\",1]",
		"[\"\\u0000\"]",
		"[[1,2],{\"a\":[3,{\"b\":\"]}\"}]}]",
		"[{\"a\":\"}\"}]",
		"[[[]]]",
		ITEM(1),
		"[" ITEM(1) "," ITEM(2) "]",
		/* refused */
		"",
		" ",
		"[",
		"]",
		"[1",
		"[1,",
		"[1,]",
		"[,1]",
		"[,]",
		"[1 2]",
		"[1,,2]",
		"[1]x",
		"[1] [2]",
		"[1]]",
		"[{\"a\":1}}]",
		"[{\"a\":[}]",
		"[[1]",
		"[\"abc]",
		"[\"a\\\"]",
		"[nul]",
		"[01]",
		"[1.]",
		"[\"\x01\"]",
		"[\"\xff\"]",
		"\xef\xbb\xbf[]",
		"{}",
		"5",
		"\"[]\"",
		"null",
		"[1}",
		"[{]",
		"[{\"a\" 1}]",
		"[\t\n\r ,]",
		/* after an item the fast reader takes: only ',' or ']' */
		"[" ITEM(1) "x]",
		"[" ITEM(1) " x," ITEM(2) "]",
		"[" ITEM(1) " " ITEM(2) "]",
		"[" ITEM(1) "}",
		"[" ITEM(1) "}]",
		"[" ITEM(1),
		"[" ITEM(1) " ",
		"[" ITEM(1) ",",
		"[" ITEM(1) ",]",
		"[" ITEM(1) "]]",
		"[" ITEM(1) "] x",
		"[" ITEM(1) ":1]",
		"[\n" ITEM(1) " \n,\t" ITEM(2) "\r\n]\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const char *body = bodies[i];
		size_t len = strlen(body);
		char want[512], got[512] = "";
		size_t n = 0;
		struct batch b;
		const char *refused;
		enum eb_err err;

		if (len == 0) /* the handler answers an empty body itself */
			continue;
		refused = whole_verdict(body, len, &n, want, sizeof(want));
		err = batch_parse(body, len, 100, &defs, &b, got, sizeof(got));
		if (refused == NULL && (err != EB_OK || b.n_items != n))
			fail_msg("'%s': refused (%s) or %zu items, Jansson reads an array of %zu",
				 body, got, b.n_items, n);
		if (refused != NULL && (err != EB_ERR_BODY_INVALID || strcmp(got, want) != 0))
			fail_msg("'%s': %d '%s', want '%s'", body, err, got, want);
		batch_free(&b);
	}
}

static void
a_nul_after_the_array_is_refused_like_jansson_does(void **state)
{
	static const char body[] = "[1]\0";
	char want[512], got[512];
	size_t n;
	struct batch b;

	(void)state;
	assert_non_null(whole_verdict(body, sizeof(body) - 1, &n, want, sizeof(want)));
	assert_int_equal(batch_parse(body, sizeof(body) - 1, 100, &defs, &b, got, sizeof(got)),
			 EB_ERR_BODY_INVALID);
	assert_string_equal(got, want);
	batch_free(&b);
}

static void
each_item_gets_its_result_and_valid_ones_a_row(void **state)
{
	const char *body = "[" ITEM(5) ", {\"event_ID\": 6}, 7, " ITEM(-3) "]";
	char detail[512];
	struct batch b;

	(void)state;
	assert_int_equal(batch_parse(body, strlen(body), 100, &defs, &b, detail, sizeof(detail)),
			 EB_OK);
	assert_int_equal(b.n_items, 4);
	assert_int_equal(b.n_rows, 2);
	assert_int_equal(b.row_item[0], 0);
	assert_int_equal(b.row_item[1], 3);
	assert_int_equal(b.rows[0].v[EVENT_KEY].u.i, 5);
	assert_int_equal(b.rows[1].v[EVENT_KEY].u.i, -3);
	assert_int_equal(b.results[0].status, 0);
	assert_int_equal(b.results[1].status, 400);
	assert_true(b.results[1].id_valid);
	assert_int_equal(b.results[1].id, 6);
	assert_non_null(strstr(b.results[1].detail, "claim_Audit_Event"));
	assert_int_equal(b.results[2].status, 400);
	assert_false(b.results[2].id_valid);

	/* a rerun forgets what was stored, never why an item was refused */
	b.results[0].status = 201;
	b.results[3].status = 500;
	b.results[3].detail = strdup("database error");
	batch_reset_stored(&b);
	assert_int_equal(b.results[0].status, 0);
	assert_int_equal(b.results[3].status, 0);
	assert_null(b.results[3].detail);
	assert_int_equal(b.results[1].status, 400);
	assert_non_null(b.results[1].detail);
	batch_free(&b);
	assert_null(b.results);
}

/* Items the fast reader takes and items it leaves to Jansson (a member
 * twice, an invalid item) keep their places in the batch. */
static void
fast_and_jansson_items_keep_batch_order(void **state)
{
	const char *body = "[" ITEM(
		1) ", {\"event_ID\": 2, \"event_ID\": 3, "
		   "\"claim_Audit_Event\": true, \"process_Automation_Event\": true, "
		   "\"reminder\": true}, {\"event_ID\": \"x\"}, "
		   "{\"event_ID\": 4, \"claim_Audit_Event\": false, \"status\": \"a\\\"b\", "
		   "\"process_Automation_Event\": false, \"reminder\": false}]";
	int status = event_field_index("status");
	char detail[512];
	struct batch b;

	(void)state;
	assert_int_equal(batch_parse(body, strlen(body), 100, &defs, &b, detail, sizeof(detail)),
			 EB_OK);
	assert_int_equal(b.n_items, 4);
	assert_int_equal(b.n_rows, 3);
	assert_int_equal(b.row_item[1], 1);
	assert_int_equal(b.row_item[2], 3);
	assert_int_equal(b.results[1].id, 3); /* Jansson keeps the last */
	assert_int_equal(b.rows[1].v[EVENT_KEY].u.i, 3);
	assert_int_equal(b.results[2].status, 400);
	assert_int_equal(b.results[3].id, 4);
	assert_true(b.results[3].id_valid);
	assert_int_equal(b.rows[2].v[status].u.s.len, 3);
	assert_memory_equal(b.rows[2].v[status].u.s.ptr, "a\"b", 3);
	batch_free(&b);
}

/* The rows' strings are copies: the body and the JSON can go. */
static void
rows_outlive_the_body(void **state)
{
	size_t big = 100 * 1024;
	size_t cap = big + 4096;
	char *body = malloc(cap), *huge = malloc(big + 1), detail[512];
	struct batch b;
	int len;
	int subject = event_field_index("subject"), meta = event_field_index("meta_Data");

	(void)state;
	memset(huge, 'm', big);
	huge[big] = '\0';
	/* small, huge (a block of its own), small again, and an escape */
	len = snprintf(body, cap,
		       "[{\"event_ID\": 1, \"claim_Audit_Event\": false, "
		       "\"process_Automation_Event\": false, \"reminder\": false, "
		       "\"subject\": \"first\"},"
		       "{\"event_ID\": 2, \"claim_Audit_Event\": false, "
		       "\"process_Automation_Event\": false, \"reminder\": false, "
		       "\"subject\": \"second\", \"meta_Data\": \"%s\"},"
		       "{\"event_ID\": 3, \"claim_Audit_Event\": false, "
		       "\"process_Automation_Event\": false, \"reminder\": false, "
		       "\"subject\": \"th\\u00efrd \\\"q\\\"\"}]",
		       huge);
	assert_true(len > 0 && (size_t)len < cap);
	assert_int_equal(batch_parse(body, (size_t)len, 100, &defs, &b, detail, sizeof(detail)),
			 EB_OK);
	memset(body, 'x', cap);
	free(body);
	assert_int_equal(b.n_rows, 3);
	assert_int_equal(b.rows[0].v[subject].u.s.len, 5);
	assert_memory_equal(b.rows[0].v[subject].u.s.ptr, "first", 5);
	assert_int_equal(b.rows[1].v[meta].u.s.len, big);
	assert_memory_equal(b.rows[1].v[meta].u.s.ptr, huge, big);
	assert_memory_equal(b.rows[1].v[subject].u.s.ptr, "second", 6);
	assert_int_equal(b.rows[2].v[subject].u.s.len, strlen("th\xc3\xafrd \"q\""));
	assert_memory_equal(b.rows[2].v[subject].u.s.ptr, "th\xc3\xafrd \"q\"", 10);
	/* absent: the token's user, copied too */
	assert_memory_equal(b.rows[2].v[event_field_index("entry_User")].u.s.ptr, "token-user", 10);
	free(huge);
	batch_free(&b);
}

static void
too_many_items_are_counted_after_the_json_is_checked(void **state)
{
	const char *over = "[" ITEM(1) "," ITEM(2) ", 3]";
	const char *broken = "[" ITEM(1) "," ITEM(2) ", 3, {]";
	char detail[512];
	struct batch b;

	(void)state;
	assert_int_equal(batch_parse(over, strlen(over), 2, &defs, &b, detail, sizeof(detail)),
			 EB_ERR_TOO_MANY_ITEMS);
	assert_string_equal(detail, "3 items exceed the limit of 2");
	assert_null(b.results);
	batch_free(&b);
	/* row 10 (invalid JSON) comes before row 11 (too many items) */
	assert_int_equal(batch_parse(broken, strlen(broken), 2, &defs, &b, detail, sizeof(detail)),
			 EB_ERR_BODY_INVALID);
	assert_non_null(strstr(detail, "invalid JSON: "));
	batch_free(&b);
	assert_int_equal(batch_parse(over, strlen(over), 3, &defs, &b, detail, sizeof(detail)),
			 EB_OK);
	assert_int_equal(b.n_items, 3);
	batch_free(&b);
}

/* open n times, then mid, then close n times, inside "[" ... "]" with
 * before and after around it (NULL: nothing). */
static char *
nested(const char *before, const char *open, int n, const char *mid, const char *close,
       const char *after)
{
	size_t len = strlen(before) + n * (strlen(open) + strlen(close)) + strlen(mid) +
		     strlen(after) + 3;
	char *b = malloc(len), *p = b;

	assert_non_null(b);
	p += sprintf(p, "[%s", before);
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s", open);
	p += sprintf(p, "%s", mid);
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s", close);
	sprintf(p, "%s]", after);
	return b;
}

/* batch_parse gives Jansson's verdict on the whole body: its items, or its
 * error text. */
static void
agrees_with_jansson(const char *body, long max_items)
{
	size_t len = strlen(body), n = 0;
	char want[512], got[512] = "";
	struct batch b;
	const char *refused = whole_verdict(body, len, &n, want, sizeof(want));
	enum eb_err err = batch_parse(body, len, max_items, &defs, &b, got, sizeof(got));

	if (refused == NULL && (long)n <= max_items && (err != EB_OK || b.n_items != n))
		fail_msg("%.60s... (%zu bytes): refused (%s), Jansson reads an array of %zu", body,
			 len, got, n);
	if (refused == NULL && (long)n > max_items && err != EB_ERR_TOO_MANY_ITEMS)
		fail_msg("%.60s... (%zu bytes): %d '%s', want too many items", body, len, err, got);
	if (refused != NULL && (err != EB_ERR_BODY_INVALID || strcmp(got, want) != 0))
		fail_msg("%.60s... (%zu bytes): %d '%s', want '%s'", body, len, err, got, want);
	batch_free(&b);
}

/* Jansson counts every value, scalars too, against its depth of 2048; an
 * element read on its own is one level less deep than in the body, so the
 * body's depth must be judged as Jansson judges the whole body. */
static void
nesting_deeper_than_jansson_takes_refuses_the_whole_body(void **state)
{
	char want[512];
	size_t n;
	/* the issue's body: a 207 with an item-level 400 before */
	char *issue = nested("", "[", 2048, "", "]", "");

	(void)state;
	assert_int_equal(strlen(issue), 2 + 2 * 2048);
	assert_non_null(whole_verdict(issue, strlen(issue), &n, want, sizeof(want)));
	assert_non_null(strstr(want, "maximum parsing depth reached"));
	agrees_with_jansson(issue, 100);
	free(issue);
	/* at and past the edge: containers, a scalar, a string, a member
	 * name, objects, after other items, and past max_items */
	for (int d = 2044; d <= 2050; d++) {
		char *bodies[] = {
			nested("", "[", d, "", "]", ""),
			nested("", "[", d, "1", "]", ""),
			nested("", "[", d, "\"a[\\\"{\"", "]", ""),
			nested("", "{\"a\":", d, "1", "}", ""),
			nested("", "{\"a\":", d, "{}", "}", ""),
			nested("", "{\"a\":[", d, "{\"k\":null}", "]}", ""),
			nested(ITEM(1) ", 2, ", "[", d, "", "]", ", " ITEM(3)),
			nested("1, 2, 3, ", "[", d, "", "]", ""),
		};
		for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
			agrees_with_jansson(bodies[i], 100);
			agrees_with_jansson(bodies[i], 2); /* past the limit: only checked */
			free(bodies[i]);
		}
	}
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(framing_agrees_with_jansson),
	cmocka_unit_test(nesting_deeper_than_jansson_takes_refuses_the_whole_body),
	cmocka_unit_test(a_nul_after_the_array_is_refused_like_jansson_does),
	cmocka_unit_test(each_item_gets_its_result_and_valid_ones_a_row),
	cmocka_unit_test(fast_and_jansson_items_keep_batch_order),
	cmocka_unit_test(rows_outlive_the_body),
	cmocka_unit_test(too_many_items_are_counted_after_the_json_is_checked),
};

RUN_TESTS(tests)
