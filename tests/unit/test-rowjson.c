/*
 * test-rowjson.c - rows as the JSON text PostgreSQL reads them from: every
 * stored value, read back by Jansson, is the row's value exactly.
 */
#include "unit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rowjson.h"

static const struct event_defaults defs = {.now = {2026, 1, 2, 3, 4, 5, 6}, .user = "tok\"en"};

/* item (JSON text) validated into *row; the item is kept for its strings. */
static json_t *
row_of(const char *item, struct event_row *row)
{
	json_t *j = json_loads(item, JSON_ALLOW_NUL, NULL);
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;

	assert_non_null(j);
	if (!event_validate(j, &defs, row, &id, &id_valid, err))
		fail_msg("'%s' was refused: %s", item, err);
	return j;
}

/* Member c<f> of obj is the value of field f in row, or absent for NULL. */
static void
assert_member(const json_t *obj, const struct event_row *row, int f)
{
	const struct event_value *v = &row->v[f];
	char name[ROWJSON_NAME_MAX], text[EB_TIME_TEXT_LEN + 1];
	const json_t *m;

	rowjson_name(f, name);
	m = json_object_get(obj, name);
	if (v->null) {
		assert_null(m);
		return;
	}
	assert_non_null(m);
	switch (event_fields[f].type) {
	case FT_INT32:
		assert_true(json_is_integer(m));
		assert_int_equal(json_integer_value(m), v->u.i);
		break;
	case FT_BOOL:
		assert_true(json_is_boolean(m));
		assert_int_equal(json_is_true(m), v->u.b);
		break;
	case FT_DOUBLE:
		assert_true(json_is_number(m));
		assert_memory_equal(&(double){json_number_value(m)}, &v->u.d, sizeof(double));
		break;
	case FT_STRING:
		assert_int_equal(json_string_length(m), v->u.s.len);
		assert_memory_equal(json_string_value(m), v->u.s.ptr, v->u.s.len);
		break;
	case FT_DATETIME:
		eb_time_format(&v->u.t, text);
		assert_string_equal(json_string_value(m), text);
		break;
	}
}

static void
test_rows_read_back_as_stored(void **state)
{
	static const char *const items[] = {
		"{\"event_ID\": -2147483648, \"claim_Audit_Event\": true, "
		"\"process_Automation_Event\": false, \"reminder\": true}",
		"{\"event_ID\": 7, \"claim_Audit_Event\": false, \"process_Automation_Event\": "
		"true, "
		"\"reminder\": false, \"completion_Percent\": 0.1, \"entry_User\": null, "
		"\"meta_Data\": \"q\\\"b\\\\s/\\n\\t\\u0001\\u001f f\xc3\xbcr \xf0\x9f\x98\x80\", "
		"\"subject\": \"\", \"due_Date\": \"2024-02-29T23:59:59.999+01:00\", "
		"\"userGroup_Key\": 2147483647, \"reminder_Event_ID\": null}",
		"{\"event_ID\": 8, \"claim_Audit_Event\": false, \"process_Automation_Event\": "
		"true, "
		"\"reminder\": false, \"completion_Percent\": -1.7976931348623157e308}",
		"{\"event_ID\": 9, \"claim_Audit_Event\": false, \"process_Automation_Event\": "
		"true, "
		"\"reminder\": false, \"completion_Percent\": 5e-324, \"entry_Date\": "
		"\"0001-01-01\"}",
		"{\"event_ID\": 10, \"claim_Audit_Event\": false, \"process_Automation_Event\": "
		"true, "
		"\"reminder\": false, \"completion_Percent\": -0.0}",
	};
	enum { N = sizeof(items) / sizeof(items[0]) };
	struct event_row rows[N];
	json_t *keep[N], *all;
	struct outbuf o = {NULL, 0, 0, false};
	json_error_t jerr;

	(void)state;
	for (size_t i = 0; i < N; i++)
		keep[i] = row_of(items[i], &rows[i]);
	rowjson_rows(&o, rows, N);
	assert_false(o.failed);
	all = json_loadb(o.text, o.len, 0, &jerr);
	if (all == NULL)
		fail_msg("not JSON (%s): %.*s", jerr.text, (int)o.len, o.text);
	assert_int_equal(json_array_size(all), N);
	for (size_t i = 0; i < N; i++)
		for (int f = 0; f < EVENT_NFIELDS; f++)
			assert_member(json_array_get(all, i), &rows[i], f);
	json_decref(all);
	for (size_t i = 0; i < N; i++)
		json_decref(keep[i]);
	out_free(&o);
}

static void
test_absent_keys_list_the_rows_without_the_field(void **state)
{
	struct event_row rows[3];
	json_t *keep[3];
	struct outbuf o = {NULL, 0, 0, false};

	(void)state;
	keep[0] = row_of("{\"event_ID\": -5, \"claim_Audit_Event\": true, "
			 "\"process_Automation_Event\": false, \"reminder\": true}",
			 &rows[0]);
	keep[1] = row_of("{\"event_ID\": 6, \"claim_Audit_Event\": true, \"entry_User\": null, "
			 "\"process_Automation_Event\": false, \"reminder\": true}",
			 &rows[1]);
	keep[2] = row_of("{\"event_ID\": 70, \"claim_Audit_Event\": true, "
			 "\"process_Automation_Event\": false, \"reminder\": true}",
			 &rows[2]);
	rowjson_absent_keys(&o, rows, 3, event_kept[1]); /* entry_User: null is given */
	assert_int_equal(o.len, strlen("{-5,70}"));
	assert_memory_equal(o.text, "{-5,70}", o.len);
	out_clear(&o);
	rowjson_absent_keys(&o, rows + 1, 1, event_kept[1]);
	assert_int_equal(o.len, 2);
	assert_memory_equal(o.text, "{}", 2);
	out_free(&o);
	for (int i = 0; i < 3; i++)
		json_decref(keep[i]);
}

static void
test_names_are_c_and_the_field_index(void **state)
{
	char name[ROWJSON_NAME_MAX];

	(void)state;
	rowjson_name(0, name);
	assert_string_equal(name, "c0");
	rowjson_name(24, name);
	assert_string_equal(name, "c24");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_rows_read_back_as_stored),
	cmocka_unit_test(test_absent_keys_list_the_rows_without_the_field),
	cmocka_unit_test(test_names_are_c_and_the_field_index),
};

RUN_TESTS(tests)
