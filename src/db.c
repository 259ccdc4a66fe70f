/*
 * db.c - ODBC storage, written once for every dialect.
 *
 * Statement texts are built from event_fields[] and fixed words only; every
 * value travels as a bound parameter.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <unistd.h>

#include <sql.h>
#include <sqlext.h>

#include "db.h"
#include "dialect.h"
#include "log.h"
#include "outbuf.h"
#include "rowjson.h"

/* Fields that keep their stored value when an update omits them. */
#define KEEP_MAX 4
#define VARIANTS (1 << KEEP_MAX)

/* The fast path writes up to BULK_MAX rows with one statement, in pieces of
 * a power of two rows, so that only a few statement texts are prepared. */
#define BULK_SIZES 8
#define BULK_MAX (1 << (BULK_SIZES - 1)) /* 128 rows: 3,200 parameters */

/* Rows per BULK_JSON_ROWS statement: bounds the parameter's size (about
 * 600 bytes a row), not the statements per batch of a typical request. */
#define JSON_ROWS_MAX 2048

enum stmt_kind {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_JSON_UPSERT, /* BULK_JSON_ROWS: every row of a run, one parameter */
	ST_INSERT, /* UPSERT_UPDATE_THEN_INSERT's second step */
	ST_WRITE,  /* + variant (which FF_KEEP fields the item gave): the UPDATE,
		    * or the one upsert statement */
	/* + size index: which of 2^index keys are stored (BULK_EXISTING_THEN_UPSERT) */
	ST_EXISTING = ST_WRITE + VARIANTS,
	/* + variant * BULK_SIZES + size index: the upsert of 2^index rows */
	ST_BULK = ST_EXISTING + BULK_SIZES,
	ST__COUNT = ST_BULK + VARIANTS * BULK_SIZES
};

struct db_stmt {
	SQLHSTMT h;
	int rows;    /* rows of parameters: 1, or the rows of a bulk statement */
	int nparams; /* parameters per row */
	signed char params[EVENT_NFIELDS + 1]; /* field index of each '?' of a row */
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
	int queue_fd;   /* the database file, for queue_writers; -1: none */
	bool queued;    /* this worker holds the queue */
	const struct dialect *dialect;
	const char *suffix; /* the dialect's connect_suffix, once known */
	struct db_stmt stmts[ST__COUNT];
	struct param_buf *pbuf; /* one per parameter of the largest statement */
	/* BULK_JSON_ROWS: the rows' text, then one list of keys per kept field */
	struct outbuf json, absent[KEEP_MAX];
	SQLLEN json_ind[1 + KEEP_MAX];
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
	for (size_t i = 0; i < pool->n; i++) {
		pool->conns[i].db = &cfg->databases[i];
		pool->conns[i].queue_fd = -1;
		pool->conns[i].pbuf = calloc(BULK_MAX * EVENT_NFIELDS, sizeof(struct param_buf));
		if (pool->conns[i].pbuf == NULL) {
			db_pool_free(pool);
			return NULL;
		}
	}
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

/* How long a writer waits in the queue before it goes to the database's
 * own waiting (whose limit the DBA sets: the SQLite driver's Timeout). */
#define QUEUE_WAIT_MS 1000

static void
on_alarm(int sig)
{
	(void)sig; /* only interrupts flock() */
}

/* Take the writers' queue of c's database, waiting at most QUEUE_WAIT_MS. */
static void
queue_enter(struct db_conn *c)
{
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval wait = {.it_value = {QUEUE_WAIT_MS / 1000, QUEUE_WAIT_MS % 1000 * 1000}};
	struct itimerval off = {{0, 0}, {0, 0}};

	if (c->queue_fd < 0 || c->queued)
		return;
	if (flock(c->queue_fd, LOCK_EX | LOCK_NB) == 0) {
		c->queued = true;
		return;
	}
	/* no SA_RESTART: the alarm ends the wait with EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &wait, NULL);
	c->queued = flock(c->queue_fd, LOCK_EX) == 0;
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
}

static void
queue_leave(struct db_conn *c)
{
	if (c->queued)
		flock(c->queue_fd, LOCK_UN);
	c->queued = false;
}

/* Open the file of c's main database for queue_writers (PRAGMA
 * database_list names it); no file, no queue. */
static void
queue_open(struct db_conn *c)
{
	SQLCHAR name[16] = "", file[4096] = "";
	SQLLEN ind1 = 0, ind2 = 0;
	SQLHSTMT h;

	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h)))
		return;
	if (SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)"PRAGMA database_list", SQL_NTS)) &&
	    SQL_SUCCEEDED(SQLBindCol(h, 2, SQL_C_CHAR, name, sizeof(name), &ind1)) &&
	    SQL_SUCCEEDED(SQLBindCol(h, 3, SQL_C_CHAR, file, sizeof(file), &ind2))) {
		while (SQL_SUCCEEDED(SQLFetch(h)))
			if (strcmp((char *)name, "main") == 0 && ind2 > 0 && file[0] != '\0') {
				c->queue_fd = open((char *)file, O_RDONLY | O_CLOEXEC);
				break;
			}
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	if (c->queue_fd < 0)
		log_msg("database %s: writers do not queue (no database file to lock)", c->db->name);
}

static void
conn_close(struct db_conn *c)
{
	queue_leave(c);
	if (c->queue_fd >= 0)
		close(c->queue_fd);
	c->queue_fd = -1;
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
	for (size_t i = 0; i < pool->n; i++) {
		conn_close(&pool->conns[i]);
		free(pool->conns[i].pbuf);
		out_free(&pool->conns[i].json);
		for (int k = 0; k < KEEP_MAX; k++)
			out_free(&pool->conns[i].absent[k]);
	}
	if (pool->env != SQL_NULL_HENV)
		SQLFreeHandle(SQL_HANDLE_ENV, pool->env);
	free(pool);
}

/* A string builder for statement texts; overflow: out of memory. */
struct sqlbuf {
	char *text;
	size_t len, cap;
	bool overflow;
};

static void
sql_add(struct sqlbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->overflow)
		return;
	if (b->len + n >= b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *text;
		while (b->len + n >= cap)
			cap *= 2;
		if ((text = realloc(b->text, cap)) == NULL) {
			b->overflow = true;
			return;
		}
		b->text = text, b->cap = cap;
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

/* "INSERT INTO Event (all columns) VALUES (?, ...), ..." for rows rows */
static void
build_insert(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d, int rows)
{
	sql_add(b, "INSERT INTO Event (");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(b, f ? ", " : "");
		sql_add(b, event_fields[f].column);
		st->params[st->nparams++] = (signed char)f;
	}
	sql_add(b, ") VALUES ");
	for (int r = 0; r < rows; r++) {
		sql_add(b, r ? ", (" : "(");
		for (int f = 0; f < EVENT_NFIELDS; f++) {
			sql_add(b, f ? ", " : "");
			sql_add(b, dialect_placeholder(d, event_fields[f].type));
		}
		sql_add(b, ")");
	}
	st->rows = rows;
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
		build_insert(b, st, d, 1);
		sql_add(b, " ON CONFLICT (");
		sql_add(b, event_fields[EVENT_KEY].column);
		sql_add(b, ") DO UPDATE SET ");
		build_set_list(b, st, d, variant, "EXCLUDED.");
		/* xmax is 0 on a freshly inserted row version */
		sql_add(b, " RETURNING CAST((xmax = 0) AS INTEGER)");
		break;
	case UPSERT_ON_DUPLICATE_KEY:
		build_insert(b, st, d, 1);
		sql_add(b, " ON DUPLICATE KEY UPDATE ");
		build_set_list(b, st, d, variant, "VALUES(");
		break;
	}
}

/* The upsert of rows rows (distinct keys, one variant) in one statement. */
static void
build_bulk(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d, unsigned variant,
	   int rows)
{
	const char *key = event_fields[EVENT_KEY].column;

	build_insert(b, st, d, rows);
	sql_add(b, " ON CONFLICT (");
	sql_add(b, key);
	sql_add(b, ") DO UPDATE SET ");
	build_set_list(b, st, d, variant, "EXCLUDED.");
}

/*
 * BULK_JSON_ROWS: the upsert of a run of rows (distinct keys) given as one
 * JSON parameter (rowjson.h), then per kept field the keys of the rows that
 * did not give it: those rows keep the stored value when they update.  The
 * "IN (SELECT unnest(...))" is a hashed subplan, built once per statement.
 */
static void
build_json_upsert(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d)
{
	const char *key = event_fields[EVENT_KEY].column;
	char name[ROWJSON_NAME_MAX];

	sql_add(b, "INSERT INTO Event (");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(b, f ? ", " : "");
		sql_add(b, event_fields[f].column);
	}
	sql_add(b, ") SELECT ");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		rowjson_name(f, name);
		sql_add(b, f ? ", " : "");
		sql_add(b, name);
	}
	sql_add(b, " FROM json_to_recordset(CAST(? AS JSON)) AS j(");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		rowjson_name(f, name);
		sql_add(b, f ? ", " : "");
		sql_add(b, name);
		sql_add(b, " ");
		sql_add(b, d->sql_type[event_fields[f].type]);
	}
	sql_add(b, ") ON CONFLICT (");
	sql_add(b, key);
	sql_add(b, ") DO UPDATE SET ");
	for (int f = 0, first = 1; f < EVENT_NFIELDS; f++) {
		const char *col = event_fields[f].column;
		if (f == EVENT_KEY)
			continue;
		sql_add(b, first ? "" : ", ");
		sql_add(b, col);
		if (event_fields[f].flags & FF_KEEP) {
			sql_add(b, " = CASE WHEN EXCLUDED.");
			sql_add(b, key);
			sql_add(b, " = ANY(CAST(? AS INTEGER[])) THEN Event.");
			sql_add(b, col);
			sql_add(b, " ELSE EXCLUDED.");
			sql_add(b, col);
			sql_add(b, " END");
		} else {
			sql_add(b, " = EXCLUDED.");
			sql_add(b, col);
		}
		first = 0;
	}
	sql_add(b, " RETURNING ");
	sql_add(b, key);
	sql_add(b, ", CAST((xmax = 0) AS INTEGER)");
	st->nparams = 1 + n_keep_fields;
}

/* "SELECT key FROM Event WHERE key IN (?, ...)" for rows keys */
static void
build_existing(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d, int rows)
{
	const char *key = event_fields[EVENT_KEY].column;

	sql_add(b, "SELECT ");
	sql_add(b, key);
	sql_add(b, " FROM Event WHERE ");
	sql_add(b, key);
	sql_add(b, " IN (");
	for (int r = 0; r < rows; r++) {
		sql_add(b, r ? ", " : "");
		sql_add(b, dialect_placeholder(d, event_fields[EVENT_KEY].type));
	}
	sql_add(b, ")");
	st->params[st->nparams++] = EVENT_KEY;
	st->rows = rows;
}

/* The text of a statement built from the field table, into b. */
static void
build_statement(struct sqlbuf *b, struct db_stmt *st, const struct dialect *d, int k)
{
	if (k == ST_JSON_UPSERT)
		build_json_upsert(b, st, d);
	else if (k == ST_INSERT)
		build_insert(b, st, d, 1);
	else if (k < ST_EXISTING)
		build_write(b, st, d, (unsigned)(k - ST_WRITE));
	else if (k < ST_BULK)
		build_existing(b, st, d, 1 << (k - ST_EXISTING));
	else
		build_bulk(b, st, d, (unsigned)((k - ST_BULK) / BULK_SIZES),
			   1 << ((k - ST_BULK) % BULK_SIZES));
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
	struct sqlbuf b = {.text = NULL};
	const char *text;

	if (st->h != SQL_NULL_HSTMT)
		return st;
	st->nparams = 0;
	st->rows = 1;
	text = fixed_text(c->dialect, (enum stmt_kind)k);
	if (text == NULL) {
		build_statement(&b, st, c->dialect, k);
		if (b.overflow) {
			free(b.text);
			return NULL;
		}
		text = b.text;
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &st->h))) {
		diag(SQL_HANDLE_DBC, c->dbc, "allocating a statement", sqlstate, native);
		st->h = SQL_NULL_HSTMT;
	} else if (!SQL_SUCCEEDED(SQLPrepare(st->h, (SQLCHAR *)text, SQL_NTS))) {
		diag(SQL_HANDLE_STMT, st->h, "prepare", sqlstate, native);
		SQLFreeHandle(SQL_HANDLE_STMT, st->h);
		st->h = SQL_NULL_HSTMT;
	}
	free(b.text);
	return st->h != SQL_NULL_HSTMT ? st : NULL;
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

/* Bind the fields of rows[0..st->rows) and execute st.  On success the
 * caller reads what it needs and closes the cursor (SQL_CLOSE). */
static bool
stmt_exec(struct db_conn *c, struct db_stmt *st, const struct event_row *rows,
	  char sqlstate[6], long *native)
{
	SQLRETURN rc;

	for (int r = 0; r < st->rows && st->nparams > 0; r++) {
		for (int p = 0; p < st->nparams; p++) {
			if (!bind_param(c, st, r * st->nparams + p + 1, &rows[r], st->params[p])) {
				diag(SQL_HANDLE_STMT, st->h, "bind", sqlstate, native);
				return false;
			}
		}
	}
	rc = SQLExecute(st->h);
	if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
		diag(SQL_HANDLE_STMT, st->h, "execute", sqlstate, native);
		SQLFreeStmt(st->h, SQL_CLOSE);
		return false;
	}
	return true;
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

	if (!stmt_exec(c, st, row, sqlstate, native))
		return false;
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
	struct sqlbuf b = {.text = NULL};
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
	if (b.overflow || !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, c->dbc, &h))) {
		free(b.text);
		return DB_FAILED;
	}
	if (!SQL_SUCCEEDED(SQLExecDirect(h, (SQLCHAR *)b.text, SQL_NTS))) {
		diag(SQL_HANDLE_STMT, h, "checking the Event table", state, &native);
		st = status_of(c, state, native);
	}
	SQLFreeHandle(SQL_HANDLE_STMT, h);
	free(b.text);
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
	if (d->queue_writers)
		queue_open(c);
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
		queue_enter(c);
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

static int32_t
row_key(const struct event_row *row)
{
	return row->v[EVENT_KEY].u.i;
}

/* The index of the row with key in rows[0..n) (ascending keys), or -1. */
static long
find_row(const struct event_row *rows, size_t n, int32_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (row_key(&rows[mid]) < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && row_key(&rows[lo]) == key ? (long)lo : -1;
}

/*
 * Read the result of a bulk statement: each row names a key of rows[0..n),
 * and, when inserted is not NULL, has a second column telling whether that
 * row was inserted.  seen[i] marks the rows named, inserted[i] what the
 * second column said.  Returns the number of result rows, or -1 on a fetch
 * error or a key that is not one of the rows or comes twice.
 */
static long
fetch_keys(struct db_stmt *st, const struct event_row *rows, size_t n, bool *seen,
	   bool *inserted, char state[6], long *native)
{
	bool two_columns = inserted != NULL;
	SQLINTEGER key = 0, flag = 0;
	SQLLEN ind1 = 0, ind2 = 0;
	SQLRETURN rc = SQL_NO_DATA;
	long got = 0;

	if (!SQL_SUCCEEDED(SQLBindCol(st->h, 1, SQL_C_SLONG, &key, 0, &ind1)) ||
	    (two_columns && !SQL_SUCCEEDED(SQLBindCol(st->h, 2, SQL_C_SLONG, &flag, 0, &ind2)))) {
		diag(SQL_HANDLE_STMT, st->h, "bind column", state, native);
		got = -1;
	}
	while (got >= 0 && SQL_SUCCEEDED(rc = SQLFetch(st->h))) {
		long i = ind1 == SQL_NULL_DATA ? -1 : find_row(rows, n, key);
		if (i < 0 || seen[i]) {
			log_msg("database: a bulk statement answered a key it was not given");
			got = -1;
			continue;
		}
		seen[i] = true;
		if (two_columns)
			inserted[i] = ind2 != SQL_NULL_DATA && flag == 1;
		got++;
	}
	if (got >= 0 && rc != SQL_NO_DATA) {
		diag(SQL_HANDLE_STMT, st->h, "fetch", state, native);
		got = -1;
	}
	SQLFreeStmt(st->h, SQL_UNBIND); /* key and flag are this frame's */
	return got;
}

/* The index i with 1 << i == n, for n a power of two up to BULK_MAX. */
static int
size_index(size_t n)
{
	int i = 0;

	while ((size_t)1 << i < n)
		i++;
	return i;
}

/* The largest power of two not above n (n > 0). */
static size_t
pow2_floor(size_t n)
{
	size_t p = 1;

	while (p * 2 <= n)
		p *= 2;
	return p;
}

/*
 * BULK_EXISTING_THEN_UPSERT: upsert rows[0..n) (n a power of two, keys
 * distinct and ascending, one update variant) with one statement, after
 * asking which keys are stored; created[i] tells which rows are new.
 */
static enum row_outcome
upsert_bulk(struct db_conn *c, const struct event_row *rows, size_t n, bool *created,
	    char state[6], long *native)
{
	bool seen[BULK_MAX] = {false};
	int size = size_index(n);
	struct db_stmt *st;
	SQLLEN affected = 0;
	long got;

	/* which keys are stored already: those rows are updates */
	st = stmt_get(c, ST_EXISTING + size, state, native);
	if (st == NULL)
		return ROW_NO_STATEMENT;
	if (!stmt_exec(c, st, rows, state, native))
		return ROW_REFUSED;
	got = fetch_keys(st, rows, n, seen, NULL, state, native);
	SQLFreeStmt(st->h, SQL_CLOSE);
	if (got < 0)
		return ROW_REFUSED;
	for (size_t i = 0; i < n; i++)
		created[i] = !seen[i];
	st = stmt_get(c, ST_BULK + update_variant(&rows[0]) * BULK_SIZES + size, state, native);
	if (st == NULL)
		return ROW_NO_STATEMENT;
	if (!stmt_exec(c, st, rows, state, native))
		return ROW_REFUSED;
	got = SQL_SUCCEEDED(SQLRowCount(st->h, &affected)) ? (long)affected : -1;
	SQLFreeStmt(st->h, SQL_CLOSE);
	if (got != (long)n) {
		/* never report what was not seen stored: redo item by item */
		log_msg("database: a bulk upsert of %zu rows reported %ld", n, got);
		return ROW_REFUSED;
	}
	return ROW_STORED;
}

/* How many of rows[0..n) one bulk statement can take: keys distinct (a
 * repeated id is written again by the next statement, so the later item
 * still wins) and one update variant. */
static size_t
bulk_run(const struct event_row *rows, size_t n)
{
	size_t k = 1;
	int variant = update_variant(&rows[0]);

	while (k < n && k < BULK_MAX && row_key(&rows[k]) != row_key(&rows[k - 1]) &&
	       update_variant(&rows[k]) == variant)
		k++;
	return k;
}

/* The fast path: every row in bulk statements, no savepoints. */
static enum db_status
store_bulk(struct db_conn *c, const struct event_row *rows, struct item_result *const *results,
	   size_t n)
{
	for (size_t i = 0; i < n;) {
		char state[6] = "HY000";
		long native = 0;
		bool created[BULK_MAX];
		size_t piece = pow2_floor(bulk_run(rows + i, n - i));
		enum row_outcome outcome = upsert_bulk(c, rows + i, piece, created, state, &native);
		enum db_status st;

		if (outcome != ROW_STORED) {
			/* a row refused, or a bulk statement the database cannot
			 * take (a parameter limit): redo the batch item by item,
			 * which also finds the refused rows exactly */
			st = status_of(c, state, native);
			return st != DB_FAILED ? st : DB_RETRY_CAREFUL;
		}
		for (size_t k = 0; k < piece; k++)
			set_result(results[i + k], created[k]);
		i += piece;
	}
	return DB_OK;
}

/* Bind a text parameter (number p, 1-based) from o. */
static bool
bind_text(struct db_stmt *st, int p, struct outbuf *o, SQLLEN *ind)
{
	*ind = (SQLLEN)o->len;
	return SQL_SUCCEEDED(SQLBindParameter(st->h, (SQLUSMALLINT)p, SQL_PARAM_INPUT, SQL_C_CHAR,
					      SQL_VARCHAR, o->len ? o->len : 1, 0, o->text,
					      (SQLLEN)o->len, ind));
}

/*
 * Upsert rows[0..n) (keys distinct and ascending) with one BULK_JSON_ROWS
 * statement; created[i] tells which rows are new.
 */
static enum row_outcome
upsert_json(struct db_conn *c, const struct event_row *rows, size_t n, bool *created,
	    char state[6], long *native)
{
	struct db_stmt *st = stmt_get(c, ST_JSON_UPSERT, state, native);
	bool *seen = calloc(n, sizeof(*seen));
	enum row_outcome outcome = ROW_REFUSED;
	long got;

	if (st == NULL || seen == NULL) {
		free(seen);
		return st == NULL ? ROW_NO_STATEMENT : ROW_REFUSED;
	}
	out_clear(&c->json);
	rowjson_rows(&c->json, rows, n);
	for (int k = 0; k < n_keep_fields; k++) {
		out_clear(&c->absent[k]);
		rowjson_absent_keys(&c->absent[k], rows, n, keep_fields[k]);
	}
	if (c->json.failed) /* out of memory: the careful path needs none of this */
		goto done;
	for (int k = 0; k < n_keep_fields; k++)
		if (c->absent[k].failed)
			goto done;
	if (!bind_text(st, 1, &c->json, &c->json_ind[0]))
		goto bind_failed;
	for (int k = 0; k < n_keep_fields; k++)
		if (!bind_text(st, 2 + k, &c->absent[k], &c->json_ind[1 + k]))
			goto bind_failed;
	if (SQL_SUCCEEDED(SQLExecute(st->h))) {
		got = fetch_keys(st, rows, n, seen, created, state, native);
		SQLFreeStmt(st->h, SQL_CLOSE);
		if (got == (long)n)
			outcome = ROW_STORED;
		else
			log_msg("database: a bulk upsert of %zu rows reported %ld", n, got);
	} else {
		diag(SQL_HANDLE_STMT, st->h, "execute", state, native);
		SQLFreeStmt(st->h, SQL_CLOSE);
	}
	goto done;
bind_failed:
	diag(SQL_HANDLE_STMT, st->h, "bind", state, native);
done:
	free(seen);
	return outcome;
}

/* How many of the rows that did not give a kept field one BULK_JSON_ROWS
 * statement takes: each updated row looks its key up in that list, which
 * PostgreSQL's generic plan of a prepared statement does by a linear scan. */
#define JSON_ABSENT_MAX 128

/* How many of rows[0..n) one BULK_JSON_ROWS statement takes: keys
 * distinct (a repeated id goes to the next statement, so the later item
 * still wins), at most JSON_ROWS_MAX, and at most JSON_ABSENT_MAX rows
 * without any one kept field. */
static size_t
json_run(const struct event_row *rows, size_t n)
{
	size_t absent[KEEP_MAX] = {0}, k;

	for (k = 0; k < n && k < JSON_ROWS_MAX; k++) {
		bool full = false;
		if (k > 0 && row_key(&rows[k]) == row_key(&rows[k - 1]))
			break;
		for (int f = 0; f < n_keep_fields; f++)
			if (!rows[k].v[keep_fields[f]].given && ++absent[f] > JSON_ABSENT_MAX)
				full = true;
		if (full)
			break;
	}
	return k;
}

/* The fast path of BULK_JSON_ROWS: every run of rows one statement. */
static enum db_status
store_json(struct db_conn *c, const struct event_row *rows, struct item_result *const *results,
	   size_t n)
{
	bool *created = malloc((n ? n : 1) * sizeof(*created));

	if (created == NULL)
		return DB_RETRY_CAREFUL;
	for (size_t i = 0; i < n;) {
		char state[6] = "HY000";
		long native = 0;
		size_t run = json_run(rows + i, n - i);
		enum db_status st;

		if (upsert_json(c, rows + i, run, created, state, &native) != ROW_STORED) {
			free(created);
			st = status_of(c, state, native);
			return st != DB_FAILED ? st : DB_RETRY_CAREFUL;
		}
		for (size_t k = 0; k < run; k++)
			set_result(results[i + k], created[k]);
		i += run;
	}
	free(created);
	return DB_OK;
}

enum db_status
db_store(struct db_conn *c, const struct event_row *rows,
	 struct item_result *const *results, size_t n, bool careful)
{
	if (!careful && c->dialect->bulk == BULK_JSON_ROWS)
		return store_json(c, rows, results, n);
	if (!careful && c->dialect->bulk != BULK_NONE)
		return store_bulk(c, rows, results, n);
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
	queue_leave(c);
	return DB_OK;
}

void
db_rollback(struct db_conn *c)
{
	if (c->open && run_fixed(c, ST_ROLLBACK) != DB_OK)
		conn_close(c);
	queue_leave(c);
}
