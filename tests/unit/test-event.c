/*
 * test-event.c - the field table and item validation of SPEC §5.
 */
#include "unit.h"

#include <ctype.h>
#include <string.h>

#include "event.h"

static const struct event_defaults defs = {
	.now = {2026, 1, 2, 3, 4, 5, 6},
	.user = "token-user",
};

static const char *const minimal = "{\"event_ID\": 7, \"claim_Audit_Event\": false, "
				   "\"process_Automation_Event\": true, \"reminder\": false";

/* Validate minimal + extra ("" or ", \"x\": 1"), returning the error text. */
static bool
validate(const char *extra, struct event_row *row, char err[EVENT_ERR_MAX], int32_t *id,
	 bool *id_valid)
{
	char text[4096];
	json_t *item;
	json_error_t jerr;
	bool ok;

	snprintf(text, sizeof(text), "%s%s}", minimal, extra);
	item = json_loads(text, JSON_ALLOW_NUL, &jerr);
	if (item == NULL)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	ok = event_validate(item, &defs, row, id, id_valid, err);
	json_decref(item);
	return ok;
}

static void
expect_error(const char *extra, const char *want)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;

	if (validate(extra, &row, err, &id, &id_valid))
		fail_msg("'%s' was accepted", extra);
	if (strcmp(err, want) != 0)
		fail_msg("'%s' gave '%s', want '%s'", extra, err, want);
}

static void
expect_ok(const char *extra)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;

	if (!validate(extra, &row, err, &id, &id_valid))
		fail_msg("'%s' was refused: %s", extra, err);
}

static void
test_table_describes_25_distinct_fields(void **state)
{
	(void)state;
	assert_int_equal(EVENT_NFIELDS, 25);
	assert_string_equal(event_fields[EVENT_KEY].json, "event_ID");
	for (int i = 0; i < EVENT_NFIELDS; i++) {
		const struct event_field *f = &event_fields[i];
		/* SPEC §8: the column is the JSON name with a capital first letter */
		assert_int_equal(toupper((unsigned char)f->json[0]), f->column[0]);
		assert_string_equal(f->json + 1, f->column + 1);
		assert_int_equal(event_field_index(f->json), i);
		if (f->flags & FF_REQUIRED)
			assert_false(f->flags & FF_NULLABLE);
	}
	assert_int_equal(event_field_index("nope"), -1);
}

static void
test_kept_fields_table_lists_exactly_the_keep_flags(void **state)
{
	int k = 0;

	(void)state;
	for (int i = 0; i < EVENT_NFIELDS; i++) {
		if (!(event_fields[i].flags & FF_KEEP))
			continue;
		assert_true(k < EVENT_NKEPT);
		assert_int_equal(event_kept[k], i);
		k++;
	}
	assert_int_equal(k, EVENT_NKEPT);
}

static void
test_minimal_item_gets_defaults(void **state)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;
	int entry_date = event_field_index("entry_Date");
	int entry_user = event_field_index("entry_User");
	int update_user = event_field_index("update_User");
	int subject = event_field_index("subject");

	(void)state;
	assert_true(validate("", &row, err, &id, &id_valid));
	assert_true(id_valid);
	assert_int_equal(id, 7);
	assert_false(row.v[entry_date].given);
	assert_false(row.v[entry_date].null);
	assert_int_equal(row.v[entry_date].u.t.year, 2026);
	assert_false(row.v[entry_user].given);
	assert_string_equal(row.v[entry_user].u.s.ptr, "token-user");
	assert_string_equal(row.v[update_user].u.s.ptr, "token-user");
	assert_true(row.v[subject].null);
	assert_false(row.v[subject].given);
}

static void
test_explicit_null_user_is_given_null(void **state)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;
	int entry_user = event_field_index("entry_User");

	(void)state;
	assert_true(validate(", \"entry_User\": null", &row, err, &id, &id_valid));
	assert_true(row.v[entry_user].given);
	assert_true(row.v[entry_user].null);
}

static void
test_types_are_strict(void **state)
{
	(void)state;
	expect_error(", \"reportSeries_Key\": \"5\"", "reportSeries_Key: must be an integer");
	expect_error(", \"reportSeries_Key\": 1.5", "reportSeries_Key: must be an integer");
	expect_error(", \"reportSeries_Key\": 2147483648",
		     "reportSeries_Key: out of the int32 range");
	expect_error(", \"reportSeries_Key\": -2147483649",
		     "reportSeries_Key: out of the int32 range");
	expect_ok(", \"reportSeries_Key\": -2147483648");
	expect_ok(", \"userGroup_Key\": 2147483647");
	expect_error(", \"reminder\": 1", "reminder: must be a boolean");
	expect_error(", \"completion_Percent\": \"50\"", "completion_Percent: must be a number");
	expect_ok(", \"completion_Percent\": 50");
	expect_ok(", \"completion_Percent\": -0.25");
	expect_error(", \"subject\": 5", "subject: must be a string");
	expect_error(", \"due_Date\": 20240101", "due_Date: must be a date-time string");
	expect_error(", \"due_Date\": \"2024-02-30\"",
		     "due_Date: not a valid date-time (YYYY-MM-DD or "
		     "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM])");
}

static void
test_required_and_not_null(void **state)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;
	json_t *item = json_loads("{\"event_ID\": null, \"reminder\": null}", 0, NULL);

	(void)state;
	assert_false(event_validate(item, &defs, &row, &id, &id_valid, err));
	assert_false(id_valid);
	assert_string_equal(err, "event_ID: must not be null; claim_Audit_Event: required; "
				 "process_Automation_Event: required; reminder: must not be null");
	json_decref(item);
	expect_error(", \"entry_Date\": null", "entry_Date: must not be null");
	expect_error(", \"update_Date\": null", "update_Date: must not be null");
}

static void
test_string_limits_count_characters(void **state)
{
	(void)state;
	/* 20 two-byte characters: 40 bytes, within the limit of 20 */
	expect_ok(", \"entry_User\": \"éééééééééééééééééééé\"");
	expect_error(", \"entry_User\": \"ééééééééééééééééééééé\"",
		     "entry_User: longer than 20 characters");
	expect_error(", \"user_ID\": \"abcdefghijklmnopqrstu\"",
		     "user_ID: longer than 20 characters");
	expect_ok(", \"meta_Data\": \"no limit here, beyond the body's\"");
}

static void
test_nul_in_strings_is_refused(void **state)
{
	(void)state;
	expect_error(", \"subject\": \"a\\u0000b\"", "subject: must not contain a NUL character");
}

static void
test_item_must_be_object_and_id_reported(void **state)
{
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id = 99;
	bool id_valid = true;
	json_t *item = json_integer(5);

	(void)state;
	assert_false(event_validate(item, &defs, &row, &id, &id_valid, err));
	assert_false(id_valid);
	assert_string_equal(err, "item: must be a JSON object");
	json_decref(item);
	/* a valid id is reported even when another field is wrong */
	assert_false(validate(", \"subject\": 1", &row, err, &id, &id_valid));
	assert_true(id_valid);
	assert_int_equal(id, 7);
}

static void
test_unknown_fields_are_ignored(void **state)
{
	(void)state;
	expect_ok(", \"colour\": \"blue\", \"Event_ID\": \"x\"");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_table_describes_25_distinct_fields),
	cmocka_unit_test(test_kept_fields_table_lists_exactly_the_keep_flags),
	cmocka_unit_test(test_minimal_item_gets_defaults),
	cmocka_unit_test(test_explicit_null_user_is_given_null),
	cmocka_unit_test(test_types_are_strict),
	cmocka_unit_test(test_required_and_not_null),
	cmocka_unit_test(test_string_limits_count_characters),
	cmocka_unit_test(test_nul_in_strings_is_refused),
	cmocka_unit_test(test_item_must_be_object_and_id_reported),
	cmocka_unit_test(test_unknown_fields_are_ignored),
};

RUN_TESTS(tests)
