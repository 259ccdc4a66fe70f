/*
 * odbc.h - ODBC plumbing for the storage code: diagnostics into one error
 * record, a cache of prepared statements per connection, binding rows,
 * executing and reading results.
 */
#ifndef EB_ODBC_H
#define EB_ODBC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sql.h>
#include <sqlext.h>

#include "datetime.h"
#include "dialect.h"
#include "event.h"
#include "sqltext.h"

/* What the last failed call on a connection said: filled in one place
 * (odbc_diag) and carried whole. */
struct db_error {
	char state[6];  /* SQLSTATE */
	long native;    /* the driver's own code */
	char text[512]; /* the message, less the drivers' [...] prefixes */
};

/* Scratch for one parameter whose value is converted before binding. */
struct param_buf {
	SQLINTEGER i;
	char text[EB_TIME_TEXT_LEN + 1];
	SQLLEN ind;
};

/* Room for the parameters of the largest statement that binds fields. */
#define PARAM_BUFS (BULK_MAX * EVENT_NFIELDS)

struct db_stmt {
	SQLHSTMT h; /* SQL_NULL_HSTMT until prepared */
	struct stmt_shape shape;
	char *text; /* the dialect's exec_direct: sent at every execute */
};

/* Every statement kind of one connection, each prepared on first use. */
struct stmt_cache {
	struct db_stmt stmts[ST__COUNT];
};

/* Log the first diagnostic record of a failed call on h ("database: WHAT
 * failed: SQLSTATE ..."), and fill *err unless it is NULL. */
void odbc_diag(SQLSMALLINT type, SQLHANDLE h, const char *what, struct db_error *err);

/* Record an error of the program's own (no ODBC call to ask). */
void odbc_own_error(struct db_error *err, const char *why);

/* The prepared statement of this kind, preparing it on first use; NULL
 * (and *err) when the dialect has no such statement or preparing fails. */
struct db_stmt *odbc_prepared(struct stmt_cache *cache, SQLHDBC dbc, const struct dialect *d,
			      int kind, struct db_error *err);

/* Free every prepared statement. */
void odbc_cache_clear(struct stmt_cache *cache);

/* Bind the fields of rows[0..st->shape.rows) (converted in pbuf) and
 * execute st.  On success the caller reads what it needs and calls
 * odbc_done(st). */
bool odbc_exec_rows(struct db_stmt *st, struct param_buf *pbuf, const struct event_row *rows,
		    struct db_error *err);

/* Bind s[0..len) as text parameter p (1-based), or NULL when s is NULL;
 * *ind must live until the statement has run. */
bool odbc_bind_text(struct db_stmt *st, int p, const char *s, size_t len, SQLLEN *ind,
		    struct db_error *err);

/* Execute st with the parameters already bound. */
bool odbc_exec(struct db_stmt *st, struct db_error *err);

/* Close st's cursor. */
void odbc_done(struct db_stmt *st);

/* The affected-row count of st's last execution; -1 when unknown. */
long odbc_row_count(struct db_stmt *st);

/* The first column of the first result row as an integer: *value, or -1
 * when there is no row or it is NULL; and, when txid is not NULL, the
 * second column as *txid (left as it is when NULL).  False on a fetch
 * error. */
bool odbc_fetch_int(struct db_stmt *st, int *value, int64_t *txid, struct db_error *err);

/* Whether the driver knows dbc's connection to be dead. */
bool odbc_connection_dead(SQLHDBC dbc);

/* The first column of the first result row as text in text[0..size)
 * ("" when there is no row or it is NULL).  False on a fetch error. */
bool odbc_fetch_text(struct db_stmt *st, char *text, size_t size, struct db_error *err);

/*
 * Read a result whose rows each name a key of rows[0..n) (ascending,
 * distinct) and, when inserted is not NULL, say in a second column whether
 * that row was inserted, and when txid is not NULL, in a third column the
 * transaction's id (*txid).  seen[i] marks the rows named, inserted[i] what
 * the second column said.  Returns the number of result rows, or -1 on a
 * fetch error or a key that is not one of the rows or comes twice.
 */
long odbc_fetch_keys(struct db_stmt *st, const struct event_row *rows, size_t n, bool *seen,
		     bool *inserted, int64_t *txid, struct db_error *err);

#endif
