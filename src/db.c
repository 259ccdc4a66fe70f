/*
 * db.c - ODBC storage, written once for every dialect.
 *
 * Statement texts are built from event_fields[] and fixed words only; every
 * value travels as a bound parameter.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sql.h>
#include <sqlext.h>

#include "db.h"
#include "dialect.h"
#include "log.h"

/* Fields that keep their stored value when an update omits them. */
#define KEEP_MAX 4
#define VARIANTS (1 << KEEP_MAX)

enum stmt_kind {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_INSERT, /* UPSERT_UPDATE_THEN_INSERT's second step */
	ST_WRITE,  /* + variant (which FF_KEEP fields the item gave): the UPDATE,
		    * or the one upsert statement */
	ST__COUNT = ST_WRITE + VARIANTS
};

struct db_stmt {
	SQLHSTMT h;
	int nparams;
	signed char params[EVENT_NFIELDS + 1]; /* field index of each '?' */
};

/* Per-parameter scratch for values that need converting before binding. */
struct param_buf {
	SQLINTEGER i;
	char text[EB_TIME_TEXT_LEN + 1];
	SQL_TIMESTAMP_STRUCT ts;
	SQLLEN ind;
};

struct db_conn {
	const struct eb_database *db;
	SQLHDBC dbc;
	bool open;
	const struct dialect *dialect;
	const char *suffix; /* the dialect's connect_suffix, once known */
	struct db_stmt stmts[ST__COUNT];
	struct param_buf pbuf[EVENT_NFIELDS + 1];
};

struct db_pool {
	SQLHENV env;
	size_t n;
	struct db_conn conns[];
};

static int keep_fields[KEEP_MAX];
static int n_keep_fields;

/* Log the first diagnostic record of a failed call; fill sqlstate/native. */
static void
diag(SQLSMALLINT type, SQLHANDLE h, const char *what, char sqlstate[6], long *native)
{
	SQLCHAR state[6] = "", msg[512] = "";
	SQLINTEGER nat = 0;
	SQLSMALLINT len;

	if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, state, &nat, msg, sizeof(msg), &len)))
		strcpy((char *)state, "HY000");
	for (SQLCHAR *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' '; /* one log line per message */
	if (sqlstate != NULL)
		memcpy(sqlstate, state, 6);
	if (native != NULL)
		*native = nat;
	log_msg("database: %s failed: SQLSTATE %s (%ld): %s", what, state, (long)nat, msg);
}

struct db_pool *
db_pool_new(const struct eb_config *cfg)
{
	struct db_pool *pool = calloc(1, sizeof(*pool) + cfg->n_databases * sizeof(struct db_conn));

	if (pool == NULL)
		return NULL;
	pool->n = cfg->n_databases;
	for (size_t i = 0; i < pool->n; i++)
		pool->conns[i].db = &cfg->databases[i];
	n_keep_fields = 0;
	for (int f = 0; f < EVENT_NFIELDS; f++)
		if ((event_fields[f].flags & FF_KEEP) && n_keep_fields < KEEP_MAX)
			keep_fields[n_keep_fields++] = f;
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &pool->env)) ||
	    !SQL_SUCCEEDED(SQLSetEnvAttr(pool->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0))) {
		log_msg("database: cannot set up the ODBC environment");
		db_pool_free(pool);
		return NULL;
	}
	return pool;
}

static void
conn_close(struct db_conn *c)
{
	for (int i = 0; i < ST__COUNT; i++) {
		if (c->stmts[i].h != SQL_NULL_HSTMT)
			SQLFreeHandle(SQL_HANDLE_STMT, c->stmts[i].h);
		c->stmts[i].h = SQL_NULL_HSTMT;
	}
	if (c->dbc != SQL_NULL_HDBC) {
		if (c->open)
			SQLDisconnect(c->dbc);
		SQLFreeHandle(SQL_HANDLE_DBC, c->dbc);
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
	for (size_t i = 0; i < pool->n; i++)
		conn_close(&pool->conns[i]);
	if (pool->env != SQL_NULL_HENV)
		SQLFreeHandle(SQL_HANDLE_ENV, pool->env);
	free(pool);
}

/* A small string builder for statement texts. */
struct sqlbuf {
	char text[4096];
	size_t len;
	bool overflow;
};

static void
sql_add(struct sqlbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n >= sizeof(b->text)) {
		b->overflow = true;
		return;
	}
	memcpy(b->text + b->len, s, n + 1);
	b->len += n;
}

static bool
field_kept(int f, unsigned variant)
{
	for (int k = 0; k < n_keep_fields; k++)
		if (keep_fields[k] == f)
			return !(variant & (1u << k));
	return false;
}

/* "INSERT INTO Event (all columns) VALUES (?, ...)" */
static void
build_insert(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d)
{
	sql_add(b, "INSERT INTO Event (");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(b, f ? ", " : "");
		sql_add(b, event_fields[f].column);
		st->params[st->nparams++] = (signed char)f;
	}
	sql_add(b, ") VALUES (");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(b, f ? ", " : "");
		sql_add(b, dialect_placeholder(d, event_fields[f].type));
	}
	sql_add(b, ")");
}

/* The columns an update sets: all but the key and the kept fields this
 * variant did not get, as "col = " + the value expression, where the value
 * is a parameter (NULL from) or from.col. */
static void
build_set_list(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d,
	       unsigned variant, const char *from)
{
	bool first = true;

	for (int f = 0; f < EVENT_NFIELDS; f++) {
		if (f == EVENT_KEY || field_kept(f, variant))
			continue;
		sql_add(b, first ? "" : ", ");
		sql_add(b, event_fields[f].column);
		sql_add(b, " = ");
		if (from == NULL) {
			sql_add(b, dialect_placeholder(d, event_fields[f].type));
			st->params[st->nparams++] = (signed char)f;
		} else {
			sql_add(b, from);
			sql_add(b, event_fields[f].column);
			sql_add(b, strcmp(from, "VALUES(") == 0 ? ")" : "");
		}
		first = false;
	}
}

/* The statement that writes one row for this variant. */
static void
build_write(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d, unsigned variant)
{
	switch (d->style) {
	case UPSERT_UPDATE_THEN_INSERT:
		sql_add(b, "UPDATE Event SET ");
		build_set_list(b, st, d, variant, NULL);
		sql_add(b, " WHERE ");
		sql_add(b, event_fields[EVENT_KEY].column);
		sql_add(b, " = ");
		sql_add(b, dialect_placeholder(d, event_fields[EVENT_KEY].type));
		st->params[st->nparams++] = EVENT_KEY;
		break;
	case UPSERT_ON_CONFLICT_RETURNING:
		build_insert(b, st, d);
		sql_add(b, " ON CONFLICT (");
		sql_add(b, event_fields[EVENT_KEY].column);
		sql_add(b, ") DO UPDATE SET ");
		build_set_list(b, st, d, variant, "EXCLUDED.");
		/* xmax is 0 on a freshly inserted row version */
		sql_add(b, " RETURNING CAST((xmax = 0) AS INTEGER)");
		break;
	case UPSERT_ON_DUPLICATE_KEY:
		build_insert(b, st, d);
		sql_add(b, " ON DUPLICATE KEY UPDATE ");
		build_set_list(b, st, d, variant, "VALUES(");
		break;
	}
}

static const char *
fixed_text(const struct dialect *d, enum stmt_kind k)
{
	switch (k) {
	case ST_BEGIN: return d->begin;
	case ST_COMMIT: return d->commit;
	case ST_ROLLBACK: return d->rollback;
	case ST_SAVEPOINT: return d->savepoint;
	case ST_RELEASE: return d->release;
	case ST_ROLLBACK_TO: return d->rollback_to;
	default: return NULL;
	}
}

/* The prepared statement of kind k, preparing it on first use. */
static struct db_stmt *
stmt_get(struct db_conn *c, int k, char sqlstate[6], long *native)
{
	struct db_stmt *st = &c->stmts[k];
	struct sqlbuf b = {.len = 0};
	const char *text;

	if (st->h != SQL_NULL_HSTMT)
		return st;
	st->nparams = 0;
	text = fixed_text(c->dialect, (enum stmt_kind)k);
	if (text == NULL) {
		if (k == ST_INSERT)
			build_insert(&b, st, c->dialect);
		else
			build_write(&b, st, c->dialect, (unsigned)(k - ST_WRITE));
		if (b.overflow)
			return NULL;
		text = b.text;
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st->h))) {
		diag(SQL_HANDLE_DBC, c->dbc, "allocating a statement", sqlstate, native);
		st->h = SQL_NULL_HSTMT;
		return NULL;
	}
	if (!SQL_SUCCEEDED(SQLPrepare(st->h, (SQLCHAR *)text, SQL_NTS))) {
		diag(SQL_HANDLE_STMT, st->h, "prepare", sqlstate, native);
		SQLFreeHandle(SQL_HANDLE_STMT, st->h);
		st->h = SQL_NULL_HSTMT;
		return NULL;
	}
	return st;
}

/* Bind field f of row as parameter number p (1-based) of st. */
static bool
bind_param(struct db_conn *c, struct db_stmt *st, int p, const struct event_row *row, int f)
{
	const struct event_value *v = &row->v[f];
	struct param_buf *pb = &c->pbuf[p - 1];
	SQLSMALLINT ctype = SQL_C_CHAR, stype = SQL_VARCHAR;
	SQLULEN size = 0;
	SQLPOINTER ptr = NULL;

	pb->ind = v->null ? SQL_NULL_DATA : 0;
	switch (event_fields[f].type) {
	case FT_INT32:
		pb->i = v->null ? 0 : v->u.i;
		ctype = SQL_C_SLONG, stype = SQL_INTEGER, ptr = &pb->i;
		break;
	case FT_BOOL:
		pb->i = !v->null && v->u.b;
		ctype = SQL_C_SLONG, stype = SQL_INTEGER, ptr = &pb->i;
		break;
	case FT_DOUBLE:
		ctype = SQL_C_DOUBLE, stype = SQL_DOUBLE, ptr = (SQLPOINTER)&v->u.d;
		break;
	case FT_STRING:
		ptr = v->null ? (SQLPOINTER)"" : (SQLPOINTER)v->u.s.ptr;
		if (!v->null)
			pb->ind = (SQLLEN)v->u.s.len;
		size = v->null || v->u.s.len == 0 ? 1 : v->u.s.len;
		break;
	case FT_DATETIME:
		if (!v->null)
			eb_time_format(&v->u.t, pb->text);
		else
			pb->text[0] = '\0';
		if (!v->null)
			pb->ind = EB_TIME_TEXT_LEN;
		ptr = pb->text, size = EB_TIME_TEXT_LEN;
		break;
	}
	return SQL_SUCCEEDED(SQLBindParameter(st->h, (SQLUSMALLINT)p, SQL_PARAM_INPUT, ctype,
					      stype, size, 0, ptr, 0, &pb->ind));
}

/* Run a prepared statement, binding row's fields when it has parameters.
 * rows: the affected-row count; fetched: the first column of the first row
 * of its result (for RETURNING), or -1 when there is none. */
static bool
stmt_run(struct db_conn *c, struct db_stmt *st, const struct event_row *row,
	 char sqlstate[6], long *native, SQLLEN *rows, SQLINTEGER *fetched)
{
	SQLRETURN rc;
	SQLLEN ind = 0;

	for (int p = 0; p < st->nparams; p++) {
		if (!bind_param(c, st, p + 1, row, st->params[p])) {
			diag(SQL_HANDLE_STMT, st->h, "bind", sqlstate, native);
			return false;
		}
	}
	rc = SQLExecute(st->h);
	if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
		diag(SQL_HANDLE_STMT, st->h, "execute", sqlstate, native);
		SQLFreeStmt(st->h, SQL_CLOSE);
		return false;
	}
	if (rows != NULL && !SQL_SUCCEEDED(SQLRowCount(st->h, rows)))
		*rows = 0;
	if (fetched != NULL) {
		*fetched = -1;
		rc = SQLFetch(st->h);
		if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
			diag(SQL_HANDLE_STMT, st->h, "fetch", sqlstate, native);
			SQLFreeStmt(st->h, SQL_CLOSE);
			return false;
		}
		if (rc != SQL_NO_DATA &&
		    (!SQL_SUCCEEDED(SQLGetData(st->h, 1, SQL_C_SLONG, fetched, 0, &ind)) ||
		     ind == SQL_NULL_DATA))
			*fetched = -1;
	}
	SQLFreeStmt(st->h, SQL_CLOSE);
	return true;
}

static enum db_status
status_of(const struct db_conn *c, const char *state, long native)
{
	switch (dialect_error_scope(c->dialect, state, native)) {
	case ERR_FATAL: return DB_UNAVAILABLE;
	case ERR_CONFLICT: return DB_CONFLICT;
	case ERR_ITEM: break;
	}
	return DB_FAILED;
}

/* Commit or roll back through ODBC, for dialects without the SQL text. */
static enum db_status
end_transaction(struct db_conn *c, SQLSMALLINT how)
{
	char state[6] = "HY000";
	long native = 0;

	if (SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, c->dbc, how)))
		return DB_OK;
	diag(SQL_HANDLE_DBC, c->dbc, how == SQL_COMMIT ? "commit" : "rollback", state, &native);
	return status_of(c, state, native);
}

/* Run the fixed statement k; on failure classify it. */
static enum db_status
run_fixed(struct db_conn *c, enum stmt_kind k)
{
	char state[6] = "HY000";
	long native = 0;
	struct db_stmt *st;

	if (k == ST_COMMIT && c->dialect->commit == NULL)
		return end_transaction(c, SQL_COMMIT);
	if (k == ST_ROLLBACK && c->dialect->rollback == NULL)
		return end_transaction(c, SQL_ROLLBACK);
	st = stmt_get(c, k, state, &native);

	if (st != NULL && stmt_run(c, st, NULL, state, &native, NULL, NULL))
		return DB_OK;
	return status_of(c, state, native);
}

static void
run_on_connect(struct db_conn *c)
{
	for (const char *const *s = c->dialect->on_connect; s && *s; s++) {
		SQLHSTMT h;
		if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
			continue;
		if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)*s, SQL_NTS)))
			diag(SQL_HANDLE_STMT, h, *s, NULL, NULL);
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
	ok = SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, pool->env, &c->dbc));
	if (!ok)
		c->dbc = SQL_NULL_HDBC;
	if (ok) {
		SQLSetConnectAttr(c->dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)5, 0);
		ok = SQL_SUCCEEDED(SQLDriverConnect(c->dbc, NULL, (SQLCHAR *)text, SQL_NTS, NULL, 0,
						    &len, SQL_DRIVER_NOPROMPT));
		if (!ok)
			diag(SQL_HANDLE_DBC, c->dbc, "connect", NULL, NULL);
	}
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
	struct sqlbuf b = {.len = 0};
	char state[6] = "HY000";
	long native = 0;
	enum db_status st = DB_OK;
	SQLHSTMT h;

	sql_add(&b, "SELECT ");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(&b, f ? ", " : "");
		sql_add(&b, event_fields[f].column);
	}
	sql_add(&b, " FROM Event WHERE 1 = 0");
	if (b.overflow || !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
		return DB_FAILED;
	if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)b.text, SQL_NTS))) {
		diag(SQL_HANDLE_STMT, h, "checking the Event table", state, &native);
		st = status_of(c, state, native);
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
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
		diag(SQL_HANDLE_DBC, c->dbc, "autocommit off", NULL, NULL);
		conn_close(c);
		return DB_UNAVAILABLE;
	}
	run_on_connect(c);
	if ((st = schema_check(c)) != DB_OK) {
		if (st == DB_FAILED)
			log_msg("database %s: the Event table is missing or lacks columns; see sql/",
				c->db->name);
		conn_close(c);
		return st;
	}
	log_msg("database %s: connected (%s)", c->db->name, d->name);
	return DB_OK;
}

enum db_status
db_begin(struct db_pool *pool, const struct eb_database *db, struct db_conn **out)
{
	struct db_conn *c = NULL;
	enum db_status st;

	for (size_t i = 0; i < pool->n; i++)
		if (pool->conns[i].db == db)
			c = &pool->conns[i];
	if (c == NULL)
		return DB_FAILED;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = c->open;
		if (!c->open && (st = conn_open(pool, c)) != DB_OK)
			return st;
		st = run_fixed(c, ST_BEGIN);
		if (st == DB_OK) {
			*out = c;
			return DB_OK;
		}
		/* A stale connection (server restarted) gets one fresh try. */
		conn_close(c);
		if (!reused)
			break;
	}
	return st;
}

/* Which update variant fits row: a bit for each FF_KEEP field it gave. */
static int
update_variant(const struct event_row *row)
{
	int variant = 0;

	for (int k = 0; k < n_keep_fields; k++)
		if (row->v[keep_fields[k]].given)
			variant |= 1 << k;
	return variant;
}

/* How one row went: stored, refused by the database, or not attempted
 * because a statement could not even be prepared (a schema problem). */
enum row_outcome { ROW_STORED, ROW_REFUSED, ROW_NO_STATEMENT };

/* Upsert one row; *created tells which it was. */
static enum row_outcome
upsert_row(struct db_conn *c, const struct event_row *row, bool *created,
	   char state[6], long *native)
{
	struct db_stmt *st = stmt_get(c, ST_WRITE + update_variant(row), state, native);
	SQLINTEGER inserted = -1;
	SQLLEN n = 0;

	if (st == NULL)
		return ROW_NO_STATEMENT;
	switch (c->dialect->style) {
	case UPSERT_ON_CONFLICT_RETURNING:
		if (!stmt_run(c, st, row, state, native, NULL, &inserted))
			return ROW_REFUSED;
		*created = inserted == 1;
		return ROW_STORED;
	case UPSERT_ON_DUPLICATE_KEY:
		if (!stmt_run(c, st, row, state, native, &n, NULL))
			return ROW_REFUSED;
		*created = n == 1;
		return ROW_STORED;
	case UPSERT_UPDATE_THEN_INSERT:
		break;
	}
	if (!stmt_run(c, st, row, state, native, &n, NULL))
		return ROW_REFUSED;
	*created = n == 0;
	if (n > 0)
		return ROW_STORED;
	st = stmt_get(c, ST_INSERT, state, native);
	if (st == NULL)
		return ROW_NO_STATEMENT;
	return stmt_run(c, st, row, state, native, NULL, NULL) ? ROW_STORED : ROW_REFUSED;
}

static void
set_result(struct item_result *r, bool created)
{
	r->status = created ? 201 : 200;
}

static void
set_item_error(struct item_result *r, const char *state)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "database error (SQLSTATE %s)", state);
	r->status = 500;
	free(r->detail);
	r->detail = strdup(msg);
}

enum db_status
db_store(struct db_conn *c, const struct event_row *rows,
	 struct item_result *const *results, size_t n, bool careful)
{
	for (size_t i = 0; i < n; i++) {
		char state[6] = "HY000";
		long native = 0;
		bool created = false;
		enum db_status st;

		enum row_outcome outcome;

		if (careful && (st = run_fixed(c, ST_SAVEPOINT)) != DB_OK)
			return st;
		outcome = upsert_row(c, &rows[i], &created, state, &native);
		if (outcome == ROW_STORED) {
			set_result(results[i], created);
			if (careful && (st = run_fixed(c, ST_RELEASE)) != DB_OK)
				return st;
			continue;
		}
		st = status_of(c, state, native);
		if (st != DB_FAILED)
			return st;
		if (outcome == ROW_NO_STATEMENT)
			return DB_FAILED;
		if (!careful)
			return DB_RETRY_CAREFUL;
		set_item_error(results[i], state);
		if ((st = run_fixed(c, ST_ROLLBACK_TO)) != DB_OK ||
		    (st = run_fixed(c, ST_RELEASE)) != DB_OK)
			return st;
	}
	return DB_OK;
}

enum db_status
db_commit(struct db_conn *c)
{
	enum db_status st = run_fixed(c, ST_COMMIT);

	if (st != DB_OK) {
		db_rollback(c);
		/* whatever the cause, the batch is not applied: the client retries */
		return DB_UNAVAILABLE;
	}
	return DB_OK;
}

void
db_rollback(struct db_conn *c)
{
	if (c->open && run_fixed(c, ST_ROLLBACK) != DB_OK)
		conn_close(c);
}
