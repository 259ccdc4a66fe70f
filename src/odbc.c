/*
 * odbc.c - ODBC plumbing: diagnostics, prepared statements, parameters,
 * results.  Statement texts come from sqltext.c only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "odbc.h"

void
odbc_diag(SQLSMALLINT type, SQLHANDLE h, const char *what, struct db_error *err)
{
	SQLCHAR state[6] = "", msg[512] = "";
	SQLINTEGER nat = 0;
	SQLSMALLINT len;

	if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, 1, state, &nat, msg, sizeof(msg), &len)))
		strcpy((char *)state, "HY000");
	for (SQLCHAR *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' '; /* one log line per message */
	if (err != NULL) {
		const char *text = (const char *)msg, *end;
		/* the server's own words follow the drivers' "[name]" prefixes */
		while (*text == '[' && (end = strchr(text, ']')) != NULL)
			text = end + 1;
		memcpy(err->state, state, sizeof(err->state));
		err->native = nat;
		snprintf(err->text, sizeof(err->text), "%.*s", (int)sizeof(err->text) - 1, text);
	}
	log_msg("database: %s failed: SQLSTATE %s (%ld): %s", what, state, (long)nat, msg);
}

void
odbc_own_error(struct db_error *err, const char *why)
{
	memcpy(err->state, "HY000", sizeof(err->state));
	err->native = 0;
	err->text[0] = '\0';
	log_msg("database: %s", why);
}

struct db_stmt *
odbc_prepared(struct stmt_cache *cache, SQLHDBC dbc, const struct dialect *d, int kind,
	      struct db_error *err)
{
	struct db_stmt *st;
	char *text;

	if (kind < 0 || kind >= ST__COUNT) {
		odbc_own_error(err, "no such statement");
		return NULL;
	}
	st = &cache->stmts[kind];
	if (st->h != SQL_NULL_HSTMT)
		return st;
	if ((text = sqltext_build(d, kind, &st->shape)) == NULL) {
		odbc_own_error(err, "no statement text (out of memory, or not of this dialect)");
		return NULL;
	}
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st->h))) {
		odbc_diag(SQL_HANDLE_DBC, dbc, "allocating a statement", err);
		st->h = SQL_NULL_HSTMT;
	} else if (d->exec_direct) {
		st->text = text; /* odbc_exec sends it */
		return st;
	} else if (!SQL_SUCCEEDED(SQLPrepare(st->h, (SQLCHAR *)text, SQL_NTS))) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "prepare", err);
		SQLFreeHandle(SQL_HANDLE_STMT, st->h);
		st->h = SQL_NULL_HSTMT;
	}
	free(text);
	return st->h != SQL_NULL_HSTMT ? st : NULL;
}

void
odbc_cache_clear(struct stmt_cache *cache)
{
	for (int i = 0; i < ST__COUNT; i++) {
		if (cache->stmts[i].h != SQL_NULL_HSTMT)
			SQLFreeHandle(SQL_HANDLE_STMT, cache->stmts[i].h);
		cache->stmts[i].h = SQL_NULL_HSTMT;
		free(cache->stmts[i].text);
		cache->stmts[i].text = NULL;
	}
}

/* Bind field f of row as parameter number p (1-based) of st. */
static bool
bind_field(struct db_stmt *st, struct param_buf *pb, int p, const struct event_row *row, int f)
{
	const struct event_value *v = &row->v[f];
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
	case FT_DOUBLE: ctype = SQL_C_DOUBLE, stype = SQL_DOUBLE, ptr = (SQLPOINTER)&v->u.d; break;
	case FT_STRING:
		ptr = v->null ? (SQLPOINTER) "" : (SQLPOINTER)v->u.s.ptr;
		if (!v->null)
			pb->ind = (SQLLEN)v->u.s.len;
		size = v->null || v->u.s.len == 0 ? 1 : v->u.s.len;
		break;
	case FT_DATETIME:
		if (!v->null) {
			eb_time_format(&v->u.t, pb->text);
			pb->ind = EB_TIME_TEXT_LEN;
		} else {
			pb->text[0] = '\0';
		}
		ptr = pb->text, size = EB_TIME_TEXT_LEN;
		break;
	}
	return SQL_SUCCEEDED(SQLBindParameter(st->h, (SQLUSMALLINT)p, SQL_PARAM_INPUT, ctype, stype,
					      size, 0, ptr, 0, &pb->ind));
}

bool
odbc_exec(struct db_stmt *st, struct db_error *err)
{
	SQLRETURN rc = st->text != NULL ? SQLExecDirect(st->h, (SQLCHAR *)st->text, SQL_NTS)
					: SQLExecute(st->h);

	if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "execute", err);
		SQLFreeStmt(st->h, SQL_CLOSE);
		return false;
	}
	return true;
}

bool
odbc_exec_rows(struct db_stmt *st, struct param_buf *pbuf, const struct event_row *rows,
	       struct db_error *err)
{
	const struct stmt_shape *sh = &st->shape;

	/* Last parameter first: a driver that grows its array of bound
	 * parameters to the highest number bound so far (sqliteodbc does, one
	 * realloc per new number) then sizes it once per statement. */
	for (int r = sh->rows - 1; r >= 0 && sh->nparams > 0; r--) {
		for (int p = sh->nparams - 1; p >= 0; p--) {
			int n = r * sh->nparams + p;
			if (!bind_field(st, &pbuf[n], n + 1, &rows[r], sh->params[p])) {
				odbc_diag(SQL_HANDLE_STMT, st->h, "bind", err);
				return false;
			}
		}
	}
	return odbc_exec(st, err);
}

bool
odbc_bind_text(struct db_stmt *st, int p, const char *s, size_t len, SQLLEN *ind,
	       struct db_error *err)
{
	*ind = s != NULL ? (SQLLEN)len : SQL_NULL_DATA;
	if (SQL_SUCCEEDED(SQLBindParameter(st->h, (SQLUSMALLINT)p, SQL_PARAM_INPUT, SQL_C_CHAR,
					   SQL_VARCHAR, len ? len : 1, 0,
					   (SQLPOINTER)(s != NULL ? s : ""), (SQLLEN)len, ind)))
		return true;
	odbc_diag(SQL_HANDLE_STMT, st->h, "bind", err);
	return false;
}

void
odbc_done(struct db_stmt *st)
{
	SQLFreeStmt(st->h, SQL_CLOSE);
}

long
odbc_row_count(struct db_stmt *st)
{
	SQLLEN n = 0;

	return SQL_SUCCEEDED(SQLRowCount(st->h, &n)) ? (long)n : -1;
}

bool
odbc_fetch_int(struct db_stmt *st, int *value, int64_t *txid, struct db_error *err)
{
	SQLINTEGER v = -1;
	SQLLEN ind = 0;
	SQLRETURN rc = SQLFetch(st->h);

	*value = -1;
	if (rc == SQL_NO_DATA)
		return true;
	if (!SQL_SUCCEEDED(rc)) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "fetch", err);
		return false;
	}
	if (SQL_SUCCEEDED(SQLGetData(st->h, 1, SQL_C_SLONG, &v, 0, &ind)) && ind != SQL_NULL_DATA)
		*value = (int)v;
	if (txid != NULL) {
		SQLBIGINT tx = 0;
		if (SQL_SUCCEEDED(SQLGetData(st->h, 2, SQL_C_SBIGINT, &tx, 0, &ind)) &&
		    ind != SQL_NULL_DATA)
			*txid = (int64_t)tx;
	}
	return true;
}

bool
odbc_connection_dead(SQLHDBC dbc)
{
	SQLUINTEGER dead = SQL_CD_FALSE;

	return SQL_SUCCEEDED(SQLGetConnectAttr(dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
	       dead == SQL_CD_TRUE;
}

bool
odbc_fetch_text(struct db_stmt *st, char *text, size_t size, struct db_error *err)
{
	SQLLEN ind = 0;
	SQLRETURN rc = SQLFetch(st->h);

	text[0] = '\0';
	if (rc == SQL_NO_DATA)
		return true;
	if (!SQL_SUCCEEDED(rc)) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "fetch", err);
		return false;
	}
	rc = SQLGetData(st->h, 1, SQL_C_CHAR, text, (SQLLEN)size, &ind);
	if (!SQL_SUCCEEDED(rc)) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "get data", err);
		return false;
	}
	if (ind == SQL_NULL_DATA)
		text[0] = '\0';
	return true;
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

long
odbc_fetch_keys(struct db_stmt *st, const struct event_row *rows, size_t n, bool *seen,
		bool *inserted, int64_t *txid, struct db_error *err)
{
	bool two_columns = inserted != NULL;
	SQLINTEGER key = 0, flag = 0;
	SQLBIGINT tx = 0;
	SQLLEN ind1 = 0, ind2 = 0, ind3 = 0;
	SQLRETURN rc = SQL_NO_DATA;
	long got = 0;

	if (!SQL_SUCCEEDED(SQLBindCol(st->h, 1, SQL_C_SLONG, &key, 0, &ind1)) ||
	    (two_columns && !SQL_SUCCEEDED(SQLBindCol(st->h, 2, SQL_C_SLONG, &flag, 0, &ind2))) ||
	    (txid != NULL && !SQL_SUCCEEDED(SQLBindCol(st->h, 3, SQL_C_SBIGINT, &tx, 0, &ind3)))) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "bind column", err);
		got = -1;
	}
	while (got >= 0 && SQL_SUCCEEDED(rc = SQLFetch(st->h))) {
		long i = ind1 == SQL_NULL_DATA ? -1 : find_row(rows, n, key);
		if (i < 0 || seen[i]) {
			odbc_own_error(err, "a bulk statement answered a key it was not given");
			got = -1;
			continue;
		}
		seen[i] = true;
		if (two_columns)
			inserted[i] = ind2 != SQL_NULL_DATA && flag == 1;
		if (txid != NULL && ind3 != SQL_NULL_DATA)
			*txid = (int64_t)tx;
		got++;
	}
	if (got >= 0 && rc != SQL_NO_DATA) {
		odbc_diag(SQL_HANDLE_STMT, st->h, "fetch", err);
		got = -1;
	}
	SQLFreeStmt(st->h, SQL_UNBIND); /* key, flag and tx are this frame's */
	return got;
}
