/*
 * handler_fixture.h - a real SQLite file with the schema (plus a trigger
 * that refuses one subject), a config with a "test" and an unreachable
 * "gone" database, a token, and put() to drive handler_serve over the
 * memory transport. For test files that exercise the whole handler.
 */
#ifndef EB_HANDLER_FIXTURE_H
#define EB_HANDLER_FIXTURE_H

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

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT COUNT(*) FROM Event %s\"", db_path,
		 where);
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
	snprintf(schema_path, sizeof(schema_path), "%s/sql/schema-sqlite.sql",
		 srcdir ? srcdir : "..");
	schema = read_file(schema_path);
	exec_sql(db_path, schema);
	free(schema);
	/* a rule only the database knows, to make one item fail in SQL */
	exec_sql(db_path,
		 "CREATE TRIGGER refuse BEFORE INSERT ON Event WHEN NEW.Subject = 'refuse me' "
		 "BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END;\n");
	write_file(key_path, secret);
	snprintf(conf, sizeof(conf),
		 "[auth]\n"
		 "api_key_sha256 = "
		 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
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

/* PUT body to database db; returns the status, the response in *m.
 * adjust, when given, may change the transport before the request runs. */
static int
put_adjusted(const char *db, const char *body, struct memtransport *m,
	     void (*adjust)(struct eb_transport *t))
{
	char length[32];
	const char *params[] = {
		"REQUEST_METHOD",
		"PUT",
		"SCRIPT_NAME",
		"/events-batch",
		"HTTP_USER_AGENT",
		"unit",
		"HTTP_X_API_KEY",
		"test",
		"HTTP_AUTHORIZATION",
		token_header,
		"HTTP_VBASOFTWARE_DATABASE",
		db,
		"CONTENT_TYPE",
		"application/json",
		"CONTENT_LENGTH",
		length,
		NULL,
	};
	struct eb_transport t;

	snprintf(length, sizeof(length), "%zu", strlen(body));
	memtransport_init(&t, m, params, body);
	if (adjust != NULL)
		adjust(&t);
	return handler_serve(&cfg, pool, &t);
}

static inline int
put(const char *db, const char *body, struct memtransport *m)
{
	return put_adjusted(db, body, m, NULL);
}

#define ITEM(id, subject)                                                                          \
	"{\"event_ID\": " #id ", \"claim_Audit_Event\": true, \"process_Automation_Event\": "      \
	"false, \"reminder\": false, \"subject\": \"" subject "\"}"

#endif
