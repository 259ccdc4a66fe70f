/*
 * test-handler.c - the whole request flow over the memory transport, against
 * a real SQLite file through the real ODBC driver: transactions, the per-item
 * fallback, and the database's absence.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>
#include <sql.h>
#include <sqlext.h>

#include "conf.h"
#include "db.h"
#include "handler.h"
#include "memtransport.h"

static char dir[] = "/tmp/eb-handler-XXXXXX";
static char db_path[256], conf_path[256], key_path[256];
static char token_header[1024];
static struct eb_config cfg;
static struct db_pool *pool;

static const char secret[] = "handler-test-secret-0123456789abcdef";

/* Run SQL text (';'-separated statements) on the test database. */
static void
exec_sql(const char *path, const char *sql)
{
	SQLHENV env;
	SQLHDBC dbc;
	SQLHSTMT st;
	char conn[512], *copy = strdup(sql), *save = NULL;

	snprintf(conn, sizeof(conn), "Driver=SQLite3;Database=%s", path);
	SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
	SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
	SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
	assert_true(SQL_SUCCEEDED(SQLDriverConnect(dbc, NULL, (SQLCHAR *)conn, SQL_NTS, NULL, 0,
						   NULL, SQL_DRIVER_NOPROMPT)));
	/* a trigger body holds ';' too: split on ";\n" only */
	for (char *s = copy, *end; s && *s; s = end) {
		end = strstr(s, ";\n");
		if (end != NULL)
			*end = '\0', end += 2;
		while (*s == '\n' || *s == ' ')
			s++;
		if (*s == '\0' || strncmp(s, "--", 2) == 0)
			continue;
		SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
		if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)s, SQL_NTS)))
			fail_msg("SQL failed: %s", s);
		SQLFreeHandle(SQL_HANDLE_STMT, st);
	}
	(void)save;
	free(copy);
	SQLDisconnect(dbc);
	SQLFreeHandle(SQL_HANDLE_DBC, dbc);
	SQLFreeHandle(SQL_HANDLE_ENV, env);
}

static long
count_rows(const char *where)
{
	char cmd[1024], out[64] = "";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT COUNT(*) FROM Event %s\"", db_path, where);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	pclose(p);
	return strtol(out, NULL, 10);
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 65536);

	assert_non_null(f);
	assert_true(fread(buf, 1, 65535, f) > 0);
	fclose(f);
	return buf;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	const char *srcdir = getenv("EB_SRCDIR");
	char schema_path[512], conf[2048], err[1024];
	char *schema, *tok;
	jwt_t *jwt;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/events.db", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/eb.conf", dir);
	snprintf(key_path, sizeof(key_path), "%s/jwt.key", dir);
	snprintf(schema_path, sizeof(schema_path), "%s/sql/schema-sqlite.sql", srcdir ? srcdir : "..");
	schema = read_file(schema_path);
	exec_sql(db_path, schema);
	free(schema);
	/* a rule only the database knows, to make one item fail in SQL */
	exec_sql(db_path, "CREATE TRIGGER refuse BEFORE INSERT ON Event WHEN NEW.Subject = 'refuse me' "
			  "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END;\n");
	write_file(key_path, secret);
	snprintf(conf, sizeof(conf),
		 "[auth]\n"
		 "api_key_sha256 = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		 "jwt_key_file = %s\n"
		 "[databases]\n"
		 "test = Driver=SQLite3;Database=%s;NoCreat=1\n"
		 "gone = Driver=SQLite3;Database=%s/missing/none.db;NoCreat=1\n",
		 key_path, db_path, dir);
	write_file(conf_path, conf);
	if (!eb_config_load(conf_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	pool = db_pool_new(&cfg);
	jwt_new(&jwt);
	jwt_add_grant(jwt, "sub", "unit");
	jwt_add_grant_int(jwt, "exp", time(NULL) + 3600);
	jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, sizeof(secret) - 1);
	tok = jwt_encode_str(jwt);
	snprintf(token_header, sizeof(token_header), "Bearer %s", tok);
	free(tok);
	jwt_free(jwt);
	return pool != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	db_pool_free(pool);
	eb_config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* PUT body to database db; returns the status, the response in *m. */
static int
put(const char *db, const char *body, struct memtransport *m)
{
	char length[32];
	const char *params[] = {
		"REQUEST_METHOD", "PUT",
		"SCRIPT_NAME", "/events-batch",
		"HTTP_USER_AGENT", "unit",
		"HTTP_X_API_KEY", "test",
		"HTTP_AUTHORIZATION", token_header,
		"HTTP_VBASOFTWARE_DATABASE", db,
		"CONTENT_TYPE", "application/json",
		"CONTENT_LENGTH", length,
		NULL,
	};
	struct eb_transport t;

	snprintf(length, sizeof(length), "%zu", strlen(body));
	memtransport_init(&t, m, params, body);
	return handler_serve(&cfg, pool, &t);
}

#define ITEM(id, subject)                                                              \
	"{\"event_ID\": " #id ", \"claim_Audit_Event\": true, \"process_Automation_Event\": " \
	"false, \"reminder\": false, \"subject\": \"" subject "\"}"

static void
test_batch_is_stored_and_reported(void **state)
{
	struct memtransport m;

	(void)state;
	assert_int_equal(put("test", "[" ITEM(1, "a") ", " ITEM(2, "b") "]", &m), 207);
	assert_non_null(strstr(m.out, "Status: 207 Multi-Status\r\n"));
	assert_non_null(strstr(memtransport_body(&m),
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
	assert_int_equal(put("test", "[" ITEM(10, "x") ", " ITEM(11, "refuse me") ", " ITEM(12, "y") ", "
				     ITEM(10, "x2") "]", &m),
			 207);
	body = memtransport_body(&m);
	assert_non_null(strstr(body, "\"value\":10}],\"status\":201"));
	assert_non_null(strstr(body, "\"value\":11}],\"status\":500,\"body\":\"database error (SQLSTATE"));
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
	assert_non_null(strstr(body, "{\"id\":[{\"key\":\"event_ID\",\"value\":null}],\"status\":400,"
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
		len += (size_t)snprintf(body + len, cap - len, "%s{\"event_ID\": %d, \"claim_Audit_Event\": false, "
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
