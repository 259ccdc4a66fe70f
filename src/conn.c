/*
 * conn.c - the pool of connections, connecting, the schema probe and
 * transactions.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "sqltext.h"

/* Seconds the driver may take to log in. */
#define LOGIN_TIMEOUT 5

/* One thread at a time connects or disconnects: psqlODBC 13 reads memory
 * another thread's connect has freed (its client encoding, under
 * valgrind's test_concurrent_writers...). Connecting is once per thread and
 * database, so waiting here costs nothing. */
static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;

struct db_pool *
db_pool_new(const struct eb_config *cfg)
{
	size_t per_db = cfg->threads > 0 ? (size_t)cfg->threads : 1;
	size_t n = cfg->n_databases * per_db;
	struct db_pool *pool = calloc(1, sizeof(*pool) + n * sizeof(struct db_conn));

	if (pool == NULL)
		return NULL;
	if (pthread_mutex_init(&pool->lock, NULL) != 0) {
		free(pool);
		return NULL;
	}
	pool->n = n;
	for (size_t i = 0; i < pool->n; i++) {
		pool->conns[i].db = &cfg->databases[i / per_db];
		pool->conns[i].queue = (struct wqueue)WQUEUE_NONE;
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &pool->env)) ||
	    !SQL_SUCCEEDED(
		    SQLSetEnvAttr(pool->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
		log_msg("database: cannot set up the ODBC environment");
		db_pool_free(pool);
		return NULL;
	}
	return pool;
}

void
conn_close(struct db_conn *c)
{
	wqueue_close(&c->queue);
	odbc_cache_clear(&c->cache);
	if (c->dbc != SQL_NULL_HDBC) {
		pthread_mutex_lock(&connect_lock);
		if (c->open)
			SQLDisconnect(c->dbc);
		SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
		pthread_mutex_unlock(&connect_lock);
	}
	c->dbc = SQL_NULL_HDBC;
	c->open = false;
	c->dialect = NULL;
}

void
db_pool_free(struct db_pool *pool)
{
	if (pool == NULL)
		return;
	for (size_t i = 0; i < pool->n; i++) {
		struct db_conn *c = &pool->conns[i];
		conn_close(c);
		free(c->pbuf);
		out_free(&c->json);
		for (int k = 0; k < EVENT_NKEPT; k++)
			out_free(&c->absent[k]);
	}
	if (pool->env != SQL_NULL_HENV)
		SQLFreeHandle(SQL_HANDLE_ENV, pool->env);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

struct db_conn *
conn_acquire(struct db_pool *pool, const struct eb_database *db)
{
	struct db_conn *pick = NULL;

	pthread_mutex_lock(&pool->lock);
	for (size_t i = 0; i < pool->n; i++) {
		struct db_conn *c = &pool->conns[i];
		if (c->db != db || c->busy)
			continue;
		if (pick == NULL || (c->open && !pick->open))
			pick = c;
		if (pick->open)
			break;
	}
	if (pick != NULL)
		pick->busy = true;
	pthread_mutex_unlock(&pool->lock);
	return pick;
}

void
conn_release(struct db_pool *pool, struct db_conn *c)
{
	pthread_mutex_lock(&pool->lock);
	c->busy = false;
	pthread_mutex_unlock(&pool->lock);
}

enum db_status
conn_status(const struct db_conn *c)
{
	if (c->dialect == NULL)
		return DB_UNAVAILABLE;
	switch (dialect_error_scope(c->dialect, c->err.state, c->err.native)) {
	case ERR_FATAL: return DB_UNAVAILABLE;
	case ERR_CONFLICT: return DB_CONFLICT;
	case ERR_ITEM: break;
	}
	return DB_REFUSED;
}

/* Open the file of c's main database for its writers' queue (PRAGMA
 * database_list names it); no file, no queue. */
static void
queue_open(struct db_conn *c)
{
	SQLCHAR name[16] = "", file[4096] = "";
	SQLLEN ind1 = 0, ind2 = 0;
	SQLHSTMT h;
	bool opened = false;

	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
		return;
	if (SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)"PRAGMA database_list", SQL_NTS)) &&
	    SQL_SUCCEEDED(SQLBindCol(h, 2, SQL_C_CHAR, name, sizeof(name), &ind1)) &&
	    SQL_SUCCEEDED(SQLBindCol(h, 3, SQL_C_CHAR, file, sizeof(file), &ind2))) {
		while (SQL_SUCCEEDED(SQLFetch(h)))
			if (strcmp((char *)name, "main") == 0 && ind2 > 0 && file[0] != '\0') {
				opened = wqueue_open(&c->queue, (char *)file);
				break;
			}
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	if (!opened)
		log_msg("database %s: writers do not queue (no database file to lock)",
			c->db->name);
}

static void
run_on_connect(struct db_conn *c)
{
	for (const char *const *s = c->dialect->on_connect; s && *s; s++) {
		SQLHSTMT h;
		if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
			continue;
		if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)*s, SQL_NTS)))
			odbc_diag(SQL_HANDLE_STMT, h, *s, NULL);
		SQLFreeHandle(SQL_HANDLE_STMT, h);
	}
}

/* Connect with the configured string, plus the dialect's suffix once known. */
static bool
driver_connect(struct db_pool *pool, struct db_conn *c)
{
	size_t n = strlen(c->db->connect) + (c->suffix ? strlen(c->suffix) : 0) + 1;
	char *text = malloc(n);
	SQLSMALLINT len;
	bool ok;

	if (text == NULL)
		return false;
	snprintf(text, n, "%s%s", c->db->connect, c->suffix ? c->suffix : "");
	pthread_mutex_lock(&connect_lock);
	ok = SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, pool->env, &c->dbc));
	if (!ok)
		c->dbc = SQL_NULL_HDBC;
	if (ok) {
		SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)LOGIN_TIMEOUT, 0);
		ok = SQL_SUCCEEDED(SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)text, SQL_NTS, NULL, 0,
						    &len, SQL_DRIVER_NOPROMPT));
		if (!ok)
			odbc_diag(SQL_HANDLE_DBC, c->dbc, "connect", &c->err);
	}
	pthread_mutex_unlock(&connect_lock);
	explicit_bzero(text, n); /* it may hold a password */
	free(text);
	c->open = ok;
	if (!ok)
		conn_close(c);
	return ok;
}

/* Whether the Event table has every column the field table names: a
 * schema problem is one 500 for the batch, not a 500 for every item.
 * DB_OK, DB_FAILED for the schema, or the status of a connection error. */
static enum db_status
schema_check(struct db_conn *c)
{
	char *probe = sqltext_schema_probe();
	enum db_status st = DB_OK;
	SQLHSTMT h;

	if (probe == NULL || !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h))) {
		free(probe);
		return DB_FAILED;
	}
	if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)probe, SQL_NTS))) {
		odbc_diag(SQL_HANDLE_STMT, h, "checking the Event table", &c->err);
		st = conn_status(c);
		if (st == DB_REFUSED)
			st = DB_FAILED;
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	free(probe);
	if (c->dialect->commit == NULL) /* autocommit off: end what the probe began */
		SQLEndTran(SQL_HANDLE_DBC, c->dbc, SQL_ROLLBACK);
	return st;
}

static enum db_status
conn_open(struct db_pool *pool, struct db_conn *c)
{
	SQLCHAR dbms[128] = "";
	SQLSMALLINT len;
	const struct dialect *d;
	enum db_status st;

	if (c->pbuf == NULL && (c->pbuf = calloc(PARAM_BUFS, sizeof(struct param_buf))) == NULL) {
		log_msg("database %s: out of memory", c->db->name);
		return DB_UNAVAILABLE;
	}
	if (!driver_connect(pool, c))
		return DB_UNAVAILABLE;
	if (!SQL_SUCCEEDED(SQLGetInfo(c->dbc, SQL_DBMS_NAME, dbms, sizeof(dbms), &len)) ||
	    (d = dialect_find((char *)dbms)) == NULL) {
		log_msg("database %s: unsupported DBMS '%s'", c->db->name, dbms);
		conn_close(c);
		return DB_FAILED;
	}
	if (d->connect_suffix != NULL && c->suffix != d->connect_suffix) {
		/* now that the dialect is known, connect again with its settings */
		conn_close(c);
		c->suffix = d->connect_suffix;
		if (!driver_connect(pool, c))
			return DB_UNAVAILABLE;
	}
	c->dialect = d;
	if (d->commit == NULL &&
	    !SQL_SUCCEEDED(SQLSetConnectAttr(c->dbc, SQL_ATTR_AUTOCOMMIT,
					     (SQLPOINTER)SQL_AUTOCOMMIT_OFF, 0))) {
		odbc_diag(SQL_HANDLE_DBC, c->dbc, "autocommit off", &c->err);
		conn_close(c);
		return DB_UNAVAILABLE;
	}
	run_on_connect(c);
	if (d->queue_writers)
		queue_open(c);
	if ((st = schema_check(c)) != DB_OK) {
		if (st == DB_FAILED)
			log_msg("database %s: the Event table is missing or lacks columns; see "
				"sql/",
				c->db->name);
		conn_close(c);
		return st;
	}
	log_msg("database %s: connected (%s)", c->db->name, d->name);
	return DB_OK;
}

/* End the transaction through ODBC, for dialects without the SQL text. */
static enum db_status
end_transaction(struct db_conn *c, SQLSMALLINT how)
{
	if (SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, c->dbc, how)))
		return DB_OK;
	odbc_diag(SQL_HANDLE_DBC, c->dbc, how == SQL_COMMIT ? "commit" : "rollback", &c->err);
	return conn_status(c);
}

enum db_status
conn_fixed(struct db_conn *c, int kind)
{
	struct db_stmt *st;

	if (kind == ST_COMMIT && c->dialect->commit == NULL)
		return end_transaction(c, SQL_COMMIT);
	if (kind == ST_ROLLBACK && c->dialect->rollback == NULL)
		return end_transaction(c, SQL_ROLLBACK);
	st = odbc_prepared(&c->cache, c->dbc, c->dialect, kind, &c->err);
	if (st == NULL)
		return DB_FAILED;
	if (!odbc_exec(st, &c->err))
		return conn_status(c);
	odbc_done(st);
	return DB_OK;
}

enum db_status
conn_begin(struct db_pool *pool, struct db_conn *c)
{
	enum db_status st;

	if (!c->open && (st = conn_open(pool, c)) != DB_OK)
		return st;
	if (c->dialect->queue_writers)
		wqueue_enter(&c->queue);
	if (c->dialect->begin == NULL)
		return DB_OK;
	if ((st = conn_fixed(c, ST_BEGIN)) != DB_OK)
		conn_close(c); /* opened again by the next begin */
	return st;
}

enum db_status
conn_commit(struct db_conn *c)
{
	if (conn_fixed(c, ST_COMMIT) != DB_OK) {
		conn_rollback(c);
		/* whatever the cause, the batch is not applied: the client retries */
		return DB_UNAVAILABLE;
	}
	wqueue_leave(&c->queue);
	return DB_OK;
}

void
conn_rollback(struct db_conn *c)
{
	struct db_error kept = c->err; /* the failure that led here */

	if (c->open && conn_fixed(c, ST_ROLLBACK) != DB_OK)
		conn_close(c);
	wqueue_leave(&c->queue);
	c->err = kept;
}
