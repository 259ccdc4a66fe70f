/*
 * test-handler.c - the whole request flow over the memory transport, against
 * a real SQLite file through the real ODBC driver: transactions, the per-item
 * fallback, and the database's absence.
 */
#include "unit.h"

#include "handler_fixture.h"

static void
test_batch_is_stored_and_reported(void **state)
{
	struct memtransport m;

	(void)state;
	assert_int_equal(put("test", "[" ITEM(1, "a") ", " ITEM(2, "b") "]", &m), 207);
	assert_non_null(strstr(m.out, "Status: 207 Multi-Status\r\n"));
	assert_non_null(
		strstr(memtransport_body(&m),
		       "{\"data\":[{\"id\":[{\"key\":\"event_ID\",\"value\":1}],\"status\":201,"
		       "\"body\":\"Created\"},{\"id\":[{\"key\":\"event_ID\",\"value\":2}],"
		       "\"status\":201,\"body\":\"Created\"}],\"error\":null,"
		       "\"debug\":{\"activityID\":\""));
	free(m.out);
	assert_int_equal(count_rows("WHERE Event_ID IN (1, 2) AND Entry_User = 'unit'"), 2);
	assert_int_equal(put("test", "[" ITEM(2, "b2") "]", &m), 207);
	assert_non_null(strstr(memtransport_body(&m), "\"status\":200,\"body\":\"Updated\""));
	free(m.out);
	assert_int_equal(count_rows("WHERE Event_ID = 2 AND Subject = 'b2'"), 1);
}

static void
test_item_refused_by_database_is_rolled_back_alone(void **state)
{
	struct memtransport m;
	const char *body;

	(void)state;
	assert_int_equal(put("test",
			     "[" ITEM(10, "x") ", " ITEM(11, "refuse me") ", " ITEM(
				     12, "y") ", " ITEM(10, "x2") "]",
			     &m),
			 207);
	body = memtransport_body(&m);
	assert_non_null(strstr(body, "\"value\":10}],\"status\":201"));
	assert_non_null(
		strstr(body, "\"value\":11}],\"status\":500,\"body\":\"database error (SQLSTATE"));
	assert_non_null(strstr(body, "\"value\":12}],\"status\":201"));
	/* the redo keeps the in-batch order: 10 is created, then updated */
	assert_non_null(strstr(body, "\"value\":10}],\"status\":200"));
	/* the driver's message goes to the log, never to the client */
	assert_null(strstr(body, "refused by trigger"));
	free(m.out);
	assert_int_equal(count_rows("WHERE Event_ID IN (10, 12)"), 2);
	assert_int_equal(count_rows("WHERE Event_ID = 10 AND Subject = 'x2'"), 1);
	assert_int_equal(count_rows("WHERE Event_ID = 11"), 0);
}

static void
test_unreachable_database_is_503_and_retryable(void **state)
{
	struct memtransport m;

	(void)state;
	assert_int_equal(put("gone", "[" ITEM(20, "z") "]", &m), 503);
	assert_non_null(strstr(m.out, "Retry-After: 5\r\n"));
	assert_non_null(strstr(memtransport_body(&m), "\"data\":null"));
	free(m.out);
	/* the other database is not affected by the failure */
	assert_int_equal(put("test", "[" ITEM(21, "z") "]", &m), 207);
	free(m.out);
}

static void
test_invalid_items_do_not_block_valid_ones(void **state)
{
	struct memtransport m;
	const char *body;

	(void)state;
	assert_int_equal(put("test", "[" ITEM(30, "ok") ", {\"event_ID\": \"31\"}, 5]", &m), 207);
	body = memtransport_body(&m);
	assert_non_null(strstr(body, "\"value\":30}],\"status\":201"));
	assert_non_null(strstr(
		body, "{\"id\":[{\"key\":\"event_ID\",\"value\":null}],\"status\":400,"
		      "\"body\":\"event_ID: must be an integer; claim_Audit_Event: required;"));
	assert_non_null(strstr(body, "\"status\":400,\"body\":\"item: must be a JSON object\"}"));
	free(m.out);
	assert_int_equal(count_rows("WHERE Event_ID = 30"), 1);
}

static void
test_large_batch_crosses_chunks(void **state)
{
	struct memtransport m;
	size_t cap = 1000 * 140, len = 0;
	char *body = malloc(cap);

	(void)state;
	len += (size_t)snprintf(body + len, cap - len, "[");
	for (int i = 0; i < 1000; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"event_ID\": %d, \"claim_Audit_Event\": false, "
					"\"process_Automation_Event\": false, \"reminder\": true}",
					i ? "," : "", 1000 + i);
	snprintf(body + len, cap - len, "]");
	assert_int_equal(put("test", body, &m), 207);
	free(m.out);
	free(body);
	assert_int_equal(count_rows("WHERE Event_ID BETWEEN 1000 AND 1999 AND Reminder = 1"), 1000);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_batch_is_stored_and_reported),
	cmocka_unit_test(test_item_refused_by_database_is_rolled_back_alone),
	cmocka_unit_test(test_unreachable_database_is_503_and_retryable),
	cmocka_unit_test(test_invalid_items_do_not_block_valid_ones),
	cmocka_unit_test(test_large_batch_crosses_chunks),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
