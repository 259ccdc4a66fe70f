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
	pool->failover_seconds = cfg->failover_seconds;
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
	const struct dialect *d = c->dialect ? c->dialect : c->known;

	if (d == NULL) /* never connected: judged as any dialect would */
		return dialect_lost_anywhere(c->err.state, c->err.native, c->err.text)
			       ? DB_LOST
			       : DB_UNAVAILABLE;
	switch (dialect_error_scope(d, c->err.state, c->err.native, c->err.text)) {
	case ERR_FATAL: return DB_UNAVAILABLE;
	case ERR_TOO_LARGE: return DB_TOO_LARGE;
	case ERR_LOST: return DB_LOST;
	case ERR_CONFLICT: return DB_CONFLICT;
	case ERR_ITEM: break;
	}
	if (c->dialect == NULL)
		return DB_UNAVAILABLE;
	/* a statement's fault, unless the connection died under it (psqlODBC
	 * says HY000 for a server that closed the connection) */
	return c->open && odbc_connection_dead(c->dbc) ? DB_LOST : DB_REFUSED;
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

/* The dialect's default setting, once the dialect is known, unless the
 * configured string names that key itself. */
static const char *
unless_set(const struct db_conn *c)
{
	const struct dialect *d = c->known;

	if (c->suffix == NULL || d == NULL || d->default_key == NULL ||
	    strcasestr(c->db->connect, d->default_key) != NULL)
		return "";
	return d->default_setting;
}

/* Connect with the configured string, plus the dialect's suffix (and
 * default setting) once known. */
static bool
driver_connect(struct db_pool *pool, struct db_conn *c)
{
	const char *more = unless_set(c);
	size_t n = strlen(c->db->connect) + (c->suffix ? strlen(c->suffix) : 0) + strlen(more) + 1;
	char *text = malloc(n);
	SQLSMALLINT len;
	bool ok;

	if (text == NULL)
		return false;
	snprintf(text, n, "%s%s%s", c->db->connect, c->suffix ? c->suffix : "", more);
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

/* Run a fixed text with no parameters and no result, directly. */
static bool
exec_direct(struct db_conn *c, const char *text, struct db_error *err)
{
	SQLHSTMT h;
	bool ok;

	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
		return false;
	ok = SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)text, SQL_NTS));
	if (!ok && err != NULL)
		odbc_diag(SQL_HANDLE_STMT, h, text, err);
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	return ok;
}

/* Whether the dialect's fence and the marker table are there (a fence
 * of no writer, and the table's columns): a batch that is one call may
 * then go alone, with this connection's writer id on its marker. */
static enum db_status
fence_probe(struct db_conn *c)
{
	const struct dialect *d = c->dialect;
	struct db_stmt *st;
	SQLLEN ind;
	bool ok;

	if (d->fence == NULL || d->mark_probe == NULL)
		return DB_OK;
	st = odbc_prepared(&c->cache, c->dbc, d, ST_FENCE, &c->err);
	ok = st != NULL && odbc_bind_text(st, 1, NULL, 0, &ind, &c->err) && odbc_exec(st, &c->err);
	if (ok)
		odbc_done(st);
	if (ok && exec_direct(c, d->mark_probe, &c->err)) {
		c->can_go_alone = true;
		util_uuid4(c->writer);
		return DB_OK;
	}
	if (conn_status(c) != DB_REFUSED)
		return conn_status(c);
	log_msg("database %s: no events_batch_outcome_v1 function or EventBatchCommit table "
		"(SQLSTATE %s; see sql/): every batch begins and commits a transaction",
		c->db->name, c->err.state);
	return DB_OK;
}

/* Whether the dialect's json_function (sql/) is there and runs, by a call
 * with no rows: the JSON upsert then goes through it.  DB_OK either way,
 * unless the connection failed. */
static enum db_status
json_function_probe(struct db_conn *c)
{
	const struct dialect *d = c->dialect;
	struct db_stmt *st;
	bool ok;

	c->json_call = c->can_go_alone = false;
	if (d->bulk != BULK_JSON_ROWS || d->json_function == NULL)
		return DB_OK;
	st = odbc_prepared(&c->cache, c->dbc, d, ST_JSON_CALL, &c->err);
	ok = st != NULL && odbc_bind_text(st, 1, "[]", 2, &c->text_ind[0], &c->err);
	for (int k = 0; ok && k < EVENT_NKEPT; k++)
		ok = odbc_bind_text(st, 2 + k, "{}", 2, &c->text_ind[1 + k], &c->err);
	for (int p = SQL_JSON_WRITER; ok && p <= SQL_JSON_BATCH; p++)
		ok = odbc_bind_text(st, p, NULL, 0, &c->text_ind[p - 1], &c->err);
	if (ok && odbc_exec(st, &c->err)) {
		odbc_done(st);
		c->json_call = true;
		return fence_probe(c);
	}
	if (conn_status(c) != DB_REFUSED)
		return conn_status(c); /* not the function: the connection */
	log_msg("database %s: no usable function %s (SQLSTATE %s; see sql/): each batch's "
		"upsert is parsed and planned again at every request",
		c->db->name, d->json_function, c->err.state);
	return DB_OK;
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

	if (probe == NULL)
		return DB_FAILED;
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h))) {
		free(probe);
		odbc_diag(SQL_HANDLE_DBC, c->dbc, "allocating a statement", &c->err);
		return conn_status(c) == DB_REFUSED ? DB_FAILED : conn_status(c);
	}
	if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)probe, SQL_NTS))) {
		odbc_diag(SQL_HANDLE_STMT, h, "checking the Event table", &c->err);
		st = conn_status(c);
		if (st == DB_REFUSED)
			st = DB_FAILED;
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	free(probe);
	if (st == DB_OK)
		st = json_function_probe(c);
	if (c->dialect->commit == NULL) /* autocommit off: end what the probe began */
		SQLEndTran(SQL_HANDLE_DBC, c->dbc, SQL_ROLLBACK);
	return st;
}

/* A failed connect: DB_LOST when a failover may be under way (refused,
 * timed out, not ready), else DB_UNAVAILABLE (a wrong string or driver). */
static enum db_status
connect_status(const struct db_conn *c)
{
	if (strncmp(c->err.state, "HYT", 3) == 0)
		return DB_LOST;
	return conn_status(c) == DB_LOST ? DB_LOST : DB_UNAVAILABLE;
}

/* Whether the marker table is there; each connection writes as a writer
 * of its own. */
static enum db_status
marker_probe(struct db_conn *c)
{
	c->marker = exec_direct(c, c->dialect->mark_probe, &c->err);
	util_uuid4(c->writer);
	if (c->marker)
		return DB_OK;
	if (conn_status(c) != DB_REFUSED)
		return conn_status(c); /* not the table: the connection */
	log_msg("database %s: no EventBatchCommit table (see sql/): a commit whose answer is "
		"lost cannot be found out",
		c->db->name);
	return DB_OK;
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
		return connect_status(c);
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
		c->known = d;
		if (!driver_connect(pool, c))
			return connect_status(c);
	}
	c->dialect = c->known = d;
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
	st = d->in_doubt == IN_DOUBT_MARKER ? marker_probe(c) : DB_OK;
	if (st == DB_OK)
		st = schema_check(c);
	if (st != DB_OK) {
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
	if (st == NULL) /* no such text, or the server could not prepare it */
		return conn_status(c) == DB_REFUSED ? DB_FAILED : conn_status(c);
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
	c->txid = 0;
	c->run_id[0] = '\0';
	c->alone = false;
	if (c->dialect->queue_writers)
		wqueue_enter(&c->queue);
	if (c->dialect->begin == NULL)
		return DB_OK;
	if ((st = conn_fixed(c, ST_BEGIN)) != DB_OK)
		conn_close(c); /* opened again by the next begin */
	return st;
}

/* Autocommit on or off; the driver says nothing to the server, as no
 * transaction is open. */
static bool
set_autocommit(struct db_conn *c, bool on)
{
	if (SQL_SUCCEEDED(SQLSetConnectAttr(
		    c->dbc, SQL_ATTR_AUTOCOMMIT,
		    (SQLPOINTER)(on ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF), 0)))
		return true;
	odbc_diag(SQL_HANDLE_DBC, c->dbc, on ? "autocommit on" : "autocommit off", &c->err);
	return false;
}

enum db_status
conn_alone(struct db_conn *c)
{
	util_uuid4(c->run_id);
	c->alone = true;
	if (set_autocommit(c, true))
		return DB_OK;
	c->alone = false;
	c->run_id[0] = '\0';
	conn_close(c);
	return DB_UNAVAILABLE;
}

enum db_status
conn_alone_done(struct db_conn *c, enum db_status st)
{
	if (st == DB_LOST) {
		/* sent, perhaps committed: find out */
		struct db_error kept = c->err;
		conn_close(c);
		c->err = kept;
		return DB_IN_DOUBT;
	}
	if (!set_autocommit(c, false)) {
		conn_close(c);
		return st == DB_OK ? DB_OK : DB_UNAVAILABLE; /* the batch was applied */
	}
	return st;
}

enum db_status
conn_mark(struct db_conn *c)
{
	struct db_stmt *st;
	SQLLEN ind[2];

	if (c->dialect->in_doubt != IN_DOUBT_MARKER || !c->marker)
		return DB_OK;
	util_uuid4(c->run_id);
	st = odbc_prepared(&c->cache, c->dbc, c->dialect, ST_MARK, &c->err);
	if (st == NULL)
		return conn_status(c) == DB_REFUSED ? DB_FAILED : conn_status(c);
	if (!odbc_bind_text(st, 2, c->run_id, UUID_TEXT_LEN, &ind[1], &c->err) ||
	    !odbc_bind_text(st, 1, c->writer, UUID_TEXT_LEN, &ind[0], &c->err) ||
	    !odbc_exec(st, &c->err)) {
		enum db_status s = conn_status(c);
		c->run_id[0] = '\0';
		return s == DB_REFUSED ? DB_FAILED : s;
	}
	odbc_done(st);
	return DB_OK;
}

/* Whether c's dialect can find out what a lost commit did, this run. */
static bool
can_find_out(const struct db_conn *c)
{
	switch (c->dialect->in_doubt) {
	case IN_DOUBT_TXID: return c->txid > 0;
	case IN_DOUBT_MARKER: return c->run_id[0] != '\0';
	case IN_DOUBT_NONE: break;
	}
	return false;
}

enum db_status
conn_commit(struct db_conn *c)
{
	enum db_status st = conn_fixed(c, ST_COMMIT);

	if (st == DB_OK) {
		wqueue_leave(&c->queue);
		return DB_OK;
	}
	if (st == DB_LOST && c->dialect->in_doubt != IN_DOUBT_NONE) {
		/* the answer is lost, perhaps after the commit: find out */
		bool known = can_find_out(c);
		struct db_error kept = c->err;
		conn_close(c);
		c->err = kept;
		if (!known)
			log_msg("database %s: the commit's answer was lost, and this batch left no "
				"trace to find out what it did",
				c->db->name);
		return DB_IN_DOUBT;
	}
	conn_rollback(c);
	/* not applied: a conflict runs again, a transaction too large never
	 * fits, anything else is a 503 */
	return st == DB_CONFLICT || st == DB_TOO_LARGE ? st : DB_UNAVAILABLE;
}

enum outcome
conn_outcome(struct db_pool *pool, struct db_conn *c, char *answer, size_t size)
{
	char key[UUID_TEXT_LEN + 1], run_id[UUID_TEXT_LEN + 1];
	/* a lone statement's batch: its marker, through the fence */
	bool alone = c->alone && c->run_id[0] != '\0';
	bool marker = alone || (c->known != NULL && c->known->in_doubt == IN_DOUBT_MARKER);
	struct db_stmt *st;
	SQLLEN ind;
	bool ok;

	/* the question, kept: a new connection is a new writer */
	snprintf(run_id, sizeof(run_id), "%s", c->run_id);
	if (alone)
		snprintf(key, sizeof(key), "%s", c->writer);
	else if (c->known != NULL && c->known->in_doubt == IN_DOUBT_TXID && c->txid > 0)
		snprintf(key, sizeof(key), "%lld", (long long)c->txid);
	else if (marker && run_id[0] != '\0')
		snprintf(key, sizeof(key), "%s", c->writer);
	else
		return OUTCOME_UNKNOWN;
	if (!c->open && conn_open(pool, c) != DB_OK)
		return OUTCOME_NO_ANSWER;
	if (alone && !c->can_go_alone) /* the fence is gone since */
		return OUTCOME_UNKNOWN;
	if (marker && !alone) /* Galera: read after every write set this node has received */
		exec_direct(c, "SET SESSION wsrep_sync_wait = 1", NULL);
	/* the fence writes: it commits by itself */
	ok = !alone || set_autocommit(c, true);
	st = ok ? odbc_prepared(&c->cache, c->dbc, c->dialect, alone ? ST_FENCE : ST_OUTCOME,
				&c->err)
		: NULL;
	ok = st != NULL && odbc_bind_text(st, 1, key, strlen(key), &ind, &c->err) &&
	     odbc_exec(st, &c->err);
	if (ok) {
		ok = odbc_fetch_text(st, answer, size, &c->err);
		odbc_done(st);
	}
	if (alone && c->open && !set_autocommit(c, false))
		conn_close(c);
	if (marker && !alone)
		exec_direct(c, "SET SESSION wsrep_sync_wait = 0", NULL);
	conn_rollback(c); /* end what the question began; keeps c->err */
	if (!ok) {
		/* PostgreSQL: an id from the future of this server never ran here */
		if (strcmp(c->err.state, "22023") == 0)
			return OUTCOME_NOT_COMMITTED;
		return conn_status(c) == DB_REFUSED ? OUTCOME_UNKNOWN : OUTCOME_NO_ANSWER;
	}
	if (alone) {
		/* "<batch> <created flags>": the flags are the answer */
		size_t n = strlen(run_id);
		if (strncmp(answer, run_id, n) != 0 || answer[n] != ' ')
			return OUTCOME_NOT_COMMITTED;
		memmove(answer, answer + n + 1, strlen(answer + n + 1) + 1);
		return OUTCOME_COMMITTED;
	}
	if (marker)
		return strcmp(answer, run_id) == 0 ? OUTCOME_COMMITTED : OUTCOME_NOT_COMMITTED;
	if (strcmp(answer, "committed") == 0)
		return OUTCOME_COMMITTED;
	if (strcmp(answer, "aborted") == 0)
		return OUTCOME_NOT_COMMITTED;
	if (strcmp(answer, "in progress") == 0)
		return OUTCOME_NOT_YET;
	return OUTCOME_UNKNOWN; /* NULL: too old to know */
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
