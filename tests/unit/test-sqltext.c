/*
 * test-sqltext.c - the statement texts of each dialect, against golden
 * files (tests/unit/golden/<dialect>.sql), and no text where a dialect has
 * no such statement.
 *
 * EB_GOLDEN_WRITE=1 writes the files anew from the code (then read the diff).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "sqltext.h"

/* The kinds the golden files hold, with their names. */
static const struct {
	int kind;
	const char *name;
} kinds[] = {
	{ST_BEGIN, "begin"},
	{ST_COMMIT, "commit"},
	{ST_ROLLBACK, "rollback"},
	{ST_SAVEPOINT, "savepoint"},
	{ST_RELEASE, "release"},
	{ST_ROLLBACK_TO, "rollback to"},
	{ST_MARK, "mark"},
	{ST_OUTCOME, "outcome"},
	{ST_FENCE, "fence"},
	{ST_JSON_UPSERT, "json upsert"},
	{ST_JSON_CALL, "json call"},
	{ST_INSERT, "insert"},
	{ST_WRITE + 0, "write, no kept field given"},
	{ST_WRITE + 2, "write, entry_User given"},
	{ST_WRITE + SQL_VARIANTS - 1, "write, every kept field given"},
	{ST_EXISTING + 1, "existing, 2 keys"},
	{ST_BULK + 1 * BULK_SIZES + 1, "bulk, 2 rows, entry_Date given"},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Every kind of the table for d, as the golden file holds them: a line
 * "-- name: shape" then the text (or "(none)"). */
static char *
render(const struct dialect *d)
{
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);

	assert_non_null(out);
	for (size_t i = 0; i < NKINDS; i++) {
		struct stmt_shape sh;
		char *text = sqltext_build(d, kinds[i].kind, &sh);
		char params[128] = "";
		size_t need;

		for (int p = 0; text != NULL && p < sh.nparams && sh.params[0] >= 0 &&
				kinds[i].kind != ST_JSON_UPSERT && kinds[i].kind != ST_JSON_CALL;
		     p++)
			snprintf(params + strlen(params), sizeof(params) - strlen(params), "%s%d",
				 p ? "," : "", sh.params[p]);
		need = strlen(kinds[i].name) + strlen(params) + (text ? strlen(text) : 6) + 64;
		while (len + need >= cap)
			assert_non_null(out = realloc(out, cap *= 2));
		len += (size_t)snprintf(out + len, cap - len,
					"-- %s: rows %d, parameters %d [%s]\n%s\n", kinds[i].name,
					sh.rows, sh.nparams, params, text ? text : "(none)");
		free(text);
	}
	return out;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
check_dialect(const char *dbms_name, const char *file)
{
	const char *srcdir = getenv("EB_SRCDIR");
	const struct dialect *d = dialect_find(dbms_name);
	char path[1024];
	char *got, *want;

	assert_non_null(d);
	snprintf(path, sizeof(path), "%s/tests/unit/golden/%s", srcdir ? srcdir : "..", file);
	got = render(d);
	if (getenv("EB_GOLDEN_WRITE") != NULL) {
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	want = read_file(path);
	if (want == NULL)
		fail_msg("cannot read %s", path);
	if (strcmp(got, want) != 0) {
		size_t i = 0;
		while (got[i] == want[i])
			i++;
		fail_msg("%s differs from the code at byte %zu:\ngot  ...%.120s\nwant ...%.120s",
			 path, i, got + i, want + i);
	}
	free(got);
	free(want);
}

static void
test_sqlite_texts(void **state)
{
	(void)state;
	check_dialect("SQLite", "sqlite.sql");
}

static void
test_postgresql_texts(void **state)
{
	(void)state;
	check_dialect("PostgreSQL", "postgresql.sql");
}

static void
test_mariadb_texts(void **state)
{
	(void)state;
	check_dialect("MariaDB", "mariadb.sql");
}

/* A kind a dialect does not use, or no kind at all, has no text: the
 * caller gets an error, never another statement. */
static void
test_missing_statement_has_no_text(void **state)
{
	const struct dialect *sqlite = dialect_find("SQLite"), *pg = dialect_find("PostgreSQL");
	const struct dialect *maria = dialect_find("MariaDB");
	struct stmt_shape sh;

	(void)state;
	assert_null(sqltext_build(sqlite, ST_JSON_UPSERT, &sh));
	assert_null(sqltext_build(pg, ST_BEGIN, &sh));
	assert_null(sqltext_build(pg, ST_COMMIT, &sh));
	assert_null(sqltext_build(pg, ST_EXISTING, &sh));
	assert_null(sqltext_build(pg, ST_BULK, &sh));
	assert_null(sqltext_build(maria, ST_INSERT, &sh));
	assert_null(sqltext_build(maria, ST_JSON_UPSERT, &sh));
	assert_null(sqltext_build(sqlite, ST_JSON_CALL, &sh));
	assert_null(sqltext_build(maria, ST_JSON_CALL, &sh));
	assert_null(sqltext_json_function(sqlite));
	assert_null(sqltext_json_function(maria));
	assert_null(sqltext_build(maria, ST_BULK + 3, &sh));
	assert_null(sqltext_build(sqlite, -1, &sh));
	assert_null(sqltext_build(sqlite, ST__COUNT, &sh));
}

/* The variant of a row: a bit per kept field it gave. */
static void
test_variant_is_a_bit_per_kept_field_given(void **state)
{
	struct event_row row;

	(void)state;
	memset(&row, 0, sizeof(row));
	assert_int_equal(sqltext_variant(&row), 0);
	row.v[event_kept[1]].given = true;
	assert_int_equal(sqltext_variant(&row), 2);
	row.v[event_kept[0]].given = true;
	assert_int_equal(sqltext_variant(&row), SQL_VARIANTS - 1);
	row.v[EVENT_KEY].given = true; /* not a kept field */
	assert_int_equal(sqltext_variant(&row), SQL_VARIANTS - 1);
}

/* Every SQLite bulk upsert, of every variant and size, begins with WITH, so
 * that the SQLite ODBC driver compiles it once and not at every execute,
 * and answers each row's key, which upsert_bulk counts. */
static void
test_sqlite_bulk_is_compiled_once_and_answers_keys(void **state)
{
	const struct dialect *d = dialect_find("SQLite");
	const char *tail = " RETURNING Event_ID";

	(void)state;
	for (unsigned v = 0; v < SQL_VARIANTS; v++)
		for (int size = 0; size < BULK_SIZES; size++) {
			struct stmt_shape sh;
			char *text = sqltext_build(d, sqltext_bulk(v, size), &sh);

			assert_non_null(text);
			assert_int_equal(sh.rows, 1 << size);
			assert_true(strncmp(text, "WITH ", 5) == 0);
			assert_true(strlen(text) > strlen(tail));
			assert_string_equal(text + strlen(text) - strlen(tail), tail);
			free(text);
		}
}

/* The function that the PostgreSQL upsert goes through is in
 * sql/schema-postgresql.sql exactly as the code builds it, and its body is
 * the upsert the program runs without it, the parameters numbered: the
 * two ways store the same. */
/* The text of ddl between start and end is the statement upsert, with
 * "$n" for its n-th "?" (each once). */
static void
assert_body_is(const char *ddl, const char *start, const char *end, const char *upsert)
{
	char *body, *p;

	assert_non_null(p = strstr(ddl, start));
	assert_non_null(body = strdup(p + strlen(start)));
	assert_non_null(p = strstr(body, end));
	*p = '\0';
	for (int n = 1; n <= 1 + EVENT_NKEPT; n++) {
		char mark[4] = {'$', (char)('0' + n), '\0'};
		assert_non_null(p = strstr(body, mark));
		assert_null(strstr(p + 1, mark)); /* each once */
		p[0] = '?', memmove(p + 1, p + 2, strlen(p + 2) + 1);
	}
	assert_string_equal(body, upsert);
	assert_null(strchr(body, '$'));
	free(body);
}

static void
test_postgresql_function_in_sql_is_the_upsert(void **state)
{
	const struct dialect *pg = dialect_find("PostgreSQL");
	const char *srcdir = getenv("EB_SRCDIR");
	char path[1024], *file, *ddl, *upsert;
	struct stmt_shape sh;

	(void)state;
	snprintf(path, sizeof(path), "%s/sql/schema-postgresql.sql", srcdir ? srcdir : "..");
	assert_non_null(file = read_file(path));
	assert_non_null(ddl = sqltext_json_function(pg));
	if (strstr(file, ddl) == NULL)
		fail_msg("%s does not hold the function as the code builds it:\n%s", path, ddl);

	/* both branches, without a writer and with one, run the upsert */
	assert_non_null(upsert = sqltext_build(pg, ST_JSON_UPSERT, &sh));
	assert_body_is(ddl, "\t\tRETURN QUERY ", ";\n\t\tRETURN;", upsert);
	assert_body_is(ddl, "\tRETURN QUERY WITH u (k, c, t) AS (", "), m AS (", upsert);

	/* the call answers what the upsert answers */
	free(upsert);
	assert_non_null(upsert = sqltext_build(pg, ST_JSON_CALL, &sh));
	assert_int_equal(sh.nparams, SQL_JSON_BATCH);
	assert_string_equal(upsert, "SELECT stored_id, created, txid FROM events_batch_upsert_v2("
				    "CAST(? AS JSON), CAST(? AS INTEGER[]), CAST(? AS INTEGER[]), "
				    "CAST(? AS TEXT), CAST(? AS TEXT))");
	/* and the fence calls the function the file makes */
	assert_non_null(strstr(file, "CREATE OR REPLACE FUNCTION events_batch_outcome_v1(TEXT)\n"));
	assert_string_equal(pg->fence, "SELECT events_batch_outcome_v1(CAST(? AS TEXT))");
	free(upsert);
	free(ddl);
	free(file);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_sqlite_texts),
	cmocka_unit_test(test_postgresql_texts),
	cmocka_unit_test(test_mariadb_texts),
	cmocka_unit_test(test_missing_statement_has_no_text),
	cmocka_unit_test(test_variant_is_a_bit_per_kept_field_given),
	cmocka_unit_test(test_sqlite_bulk_is_compiled_once_and_answers_keys),
	cmocka_unit_test(test_postgresql_function_in_sql_is_the_upsert),
};

RUN_TESTS(tests)
