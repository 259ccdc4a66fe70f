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

/* Every row and column of the table, as sqlite3 prints them. */
static char *
dump_table(void)
{
	char cmd[512];
	char *out = calloc(1, 1 << 20);
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT * FROM Event ORDER BY Event_ID\"",
		 db_path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, (1 << 20) - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

static const char *prefer;

static const char *
prefer_param(void *ctx, const char *name)
{
	return strcmp(name, "HTTP_PREFER") == 0 ? prefer : mem_param(ctx, name);
}

static void
with_prefer(struct eb_transport *t)
{
	t->param = prefer_param;
}

/* PUT body with Prefer: value (NULL: no header). */
static int
put_prefer(const char *value, const char *body, struct memtransport *m)
{
	prefer = value;
	return put_adjusted("test", body, m, with_prefer);
}

/* The data array of a 207: what the items' outcomes were, without the
 * activity id that differs per request. */
static char *
data_of(const struct memtransport *m)
{
	const char *body = memtransport_body(m), *end = strstr(body, ",\"error\":null");

	assert_non_null(end);
	return strndup(body, (size_t)(end - body));
}

static void
test_dry_run_answers_as_the_real_run_and_stores_nothing(void **state)
{
	/* new ids, an existing one, one the database refuses (the careful
	 * redo with savepoints), an invalid item, and a repeated id */
	const char *batch = "[" ITEM(40, "new") ", " ITEM(41, "refuse me") ", " ITEM(
		42, "changed") ", {\"event_ID\": 43}, " ITEM(40, "again") "]";
	struct memtransport m;
	char *before, *after, *dry, *real;

	(void)state;
	assert_int_equal(put("test", "[" ITEM(42, "old") "]", &m), 207);
	free(m.out);
	before = dump_table();
	assert_int_equal(put_prefer("return=minimal, tx=rollback", batch, &m), 207);
	assert_non_null(strstr(m.out, "\r\nPreference-Applied: tx=rollback\r\n"));
	dry = data_of(&m);
	free(m.out);
	after = dump_table();
	assert_string_equal(before, after);
	/* the writers' queue was let go: a real run of the same batch goes */
	assert_int_equal(put_prefer("tx=commit", batch, &m), 207);
	assert_null(strstr(m.out, "Preference-Applied"));
	real = data_of(&m);
	free(m.out);
	assert_string_equal(dry, real);
	assert_non_null(strstr(real, "\"value\":40}],\"status\":201"));
	assert_non_null(strstr(real, "\"value\":41}],\"status\":500"));
	assert_non_null(strstr(real, "\"value\":42}],\"status\":200"));
	assert_non_null(strstr(real, "\"value\":43}],\"status\":400"));
	assert_non_null(strstr(real, "\"value\":40}],\"status\":200"));
	assert_int_equal(count_rows("WHERE Event_ID = 40 AND Subject = 'again'"), 1);
	free(before);
	free(after);
	free(dry);
	free(real);
}

static void
test_dry_run_of_nothing_to_store_still_says_so(void **state)
{
	struct memtransport m;

	(void)state;
	assert_int_equal(put_prefer("tx=rollback", "[]", &m), 207);
	assert_non_null(strstr(m.out, "\r\nPreference-Applied: tx=rollback\r\n"));
	free(m.out);
	assert_int_equal(put_prefer("tx=rollback", "[{\"event_ID\": 50}]", &m), 207);
	assert_non_null(strstr(m.out, "\r\nPreference-Applied: tx=rollback\r\n"));
	free(m.out);
}

static void
test_dry_run_that_fails_is_an_error_without_preference_applied(void **state)
{
	struct memtransport m;

	(void)state;
	prefer = "tx=rollback";
	assert_int_equal(put_adjusted("gone", "[" ITEM(51, "z") "]", &m, with_prefer), 503);
	assert_null(strstr(m.out, "Preference-Applied"));
	free(m.out);
}

/* GET or HEAD (or another method) of path, with no other header. */
static int
health(const char *method, const char *path, struct memtransport *m)
{
	const char *params[] = {"REQUEST_METHOD", method, "SCRIPT_NAME", path, NULL};
	struct eb_transport t;

	memtransport_init(&t, m, params, NULL);
	return handler_serve(&cfg, pool, &t);
}

static void
test_health_answers_ok_without_credentials(void **state)
{
	static const char head[] = "Status: 200 OK\r\n"
				   "Content-Type: application/json; charset=utf-8\r\n"
				   "Content-Length: 15\r\n"
				   "Cache-Control: no-store\r\n"
				   "\r\n";
	struct memtransport m;

	(void)state;
	assert_int_equal(health("GET", "/api/events-batch/health", &m), 200);
	assert_memory_equal(m.out, head, sizeof(head) - 1);
	assert_string_equal(memtransport_body(&m), "{\"status\":\"ok\"}");
	free(m.out);
	assert_int_equal(health("GET", "/events-batch/health/", &m), 200);
	free(m.out);
	assert_int_equal(health("HEAD", "/api/events-batch/health", &m), 200);
	assert_string_equal(m.out, head);
	free(m.out);
}

static void
test_health_other_methods_are_405_with_allow(void **state)
{
	static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "get"};
	struct memtransport m;

	(void)state;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		assert_int_equal(health(methods[i], "/api/events-batch/health", &m), 405);
		assert_non_null(strstr(m.out, "\r\nAllow: GET, HEAD\r\n"));
		assert_non_null(strstr(memtransport_body(&m), "\"status\":405"));
		free(m.out);
	}
	/* not the health path: the batch path's rules */
	assert_int_equal(health("GET", "/api/events-batch/healthz", &m), 404);
	free(m.out);
	assert_int_equal(health("GET", "/api/events-batch", &m), 405);
	assert_non_null(strstr(m.out, "\r\nAllow: PUT\r\n"));
	free(m.out);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_batch_is_stored_and_reported),
	cmocka_unit_test(test_item_refused_by_database_is_rolled_back_alone),
	cmocka_unit_test(test_unreachable_database_is_503_and_retryable),
	cmocka_unit_test(test_invalid_items_do_not_block_valid_ones),
	cmocka_unit_test(test_large_batch_crosses_chunks),
	cmocka_unit_test(test_dry_run_answers_as_the_real_run_and_stores_nothing),
	cmocka_unit_test(test_dry_run_of_nothing_to_store_still_says_so),
	cmocka_unit_test(test_dry_run_that_fails_is_an_error_without_preference_applied),
	cmocka_unit_test(test_health_answers_ok_without_credentials),
	cmocka_unit_test(test_health_other_methods_are_405_with_allow),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
