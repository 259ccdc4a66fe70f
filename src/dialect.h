/*
 * dialect.h - what differs between the databases, as data.
 *
 * The storage code (db.c) is written once; a dialect gives it the statement
 * texts it cannot derive from the field table, how to tell created from
 * updated, and which errors are nobody's item.
 */
#ifndef EB_DIALECT_H
#define EB_DIALECT_H

#include <stdbool.h>

#include "event.h"

enum upsert_style {
	/* UPDATE ... WHERE key; when no row matched, INSERT.  Safe where the
	 * transaction already holds the write lock (SQLite BEGIN IMMEDIATE). */
	UPSERT_UPDATE_THEN_INSERT,
	/* INSERT ... ON CONFLICT (key) DO UPDATE ... RETURNING (xmax = 0):
	 * one statement, its one row says whether it inserted (PostgreSQL). */
	UPSERT_ON_CONFLICT_RETURNING,
	/* INSERT ... ON DUPLICATE KEY UPDATE: 1 affected row for an insert,
	 * 2 (or 0 when nothing changed) for an update (MariaDB, without the
	 * FOUND_ROWS client option). */
	UPSERT_ON_DUPLICATE_KEY,
};

/* How the fast path writes many rows with one statement, and still tells
 * each row's outcome. */
enum bulk_style {
	BULK_NONE, /* one statement per row (MariaDB: a multi-row upsert reports
		    * only the sum of affected rows) */
	/* SELECT key ... WHERE key IN (...), then the multi-row upsert: the
	 * write lock taken at BEGIN keeps the answer true (SQLite) */
	BULK_EXISTING_THEN_UPSERT,
	/* INSERT ... SELECT FROM json_to_recordset(one parameter) ON CONFLICT
	 * DO UPDATE ... RETURNING key, (xmax = 0): a whole run of rows in one
	 * statement with a handful of parameters (PostgreSQL) */
	BULK_JSON_ROWS,
};

/* How an error bears on the batch. */
enum error_scope {
	ERR_ITEM,     /* this row's fault: report it, go on with the others */
	ERR_CONFLICT, /* deadlock or serialization failure: run the batch again */
	/* the connection or the server went away, or the server cannot write
	 * now (a standby, a Galera node not ready): run the batch again on a
	 * new connection, for as long as failover_seconds allows */
	ERR_LOST,
	/* lock timeout, disk, resources, a login refused: 503, nothing applied */
	ERR_FATAL,
	/* larger than the server takes in one transaction: no run of the same
	 * batch can succeed (413) */
	ERR_TOO_LARGE,
};

struct dialect {
	const char *name;        /* for logs */
	const char *dbms_prefix; /* SQL_DBMS_NAME starts with this */
	enum upsert_style style;
	enum bulk_style bulk;
	/* the parameter marker for each enum event_type; NULL means "?" */
	const char *placeholder[FT_DATETIME + 1];
	/* BULK_JSON_ROWS: the SQL type each enum event_type is read as */
	const char *sql_type[FT_DATETIME + 1];
	/* BULK_JSON_ROWS: the name of the function (sql/, optional) whose
	 * body is the JSON upsert, planned once per server connection; NULL:
	 * none.  The name carries the text's version: a change to the
	 * upsert's text is a new name. */
	const char *json_function;
	/* Appended to the configured connection string once the dialect is
	 * known (the first connection is then opened again), for driver
	 * settings the storage code depends on; NULL for none. */
	const char *connect_suffix;
	/* Appended after the suffix unless the configured string names
	 * default_key itself (a setting an operator may choose otherwise) */
	const char *default_key, *default_setting;
	const char *const *on_connect; /* statements run once per connection */
	/* Send each statement's text with SQLExecDirect at every execute,
	 * never SQLPrepare: nothing is prepared under a name on the server */
	bool exec_direct;
	/* Writers queue for the database file (flock) before begin: the
	 * database has one write lock and its driver polls for it (SQLite:
	 * the ODBC driver's busy handler sleeps 10 ms a try). */
	bool queue_writers;
	/* Transactions.  begin NULL: the driver begins one itself (autocommit
	 * off).  commit and rollback NULL: the ODBC way, autocommit off and
	 * SQLEndTran, for drivers that track the transaction themselves. */
	const char *begin, *commit, *rollback;
	const char *savepoint, *release, *rollback_to;
	const char *const *fatal_sqlstates; /* SQLSTATE prefixes */
	const char *const *conflict_sqlstates;
	const char *const *lost_sqlstates;
	const int *fatal_natives; /* driver native codes, 0-terminated */
	const int *conflict_natives;
	const int *lost_natives;
	/* words of messages that say the transaction grew larger than the
	 * server takes (Galera's wsrep_max_ws_size and _rows), NULL-terminated;
	 * NULL: none */
	const char *const *too_large;
	int native_mask; /* applied to the native code before matching */
	/* How a commit whose answer was lost is found out (SPEC §13): */
	enum in_doubt {
		/* not needed: the database is a local file, a failed commit
		 * did not commit (SQLite) */
		IN_DOUBT_NONE,
		/* the write statements return txid_current(); a new connection
		 * asks txid_status() (PostgreSQL) */
		IN_DOUBT_TXID,
		/* the transaction writes a marker row of its own before COMMIT;
		 * a new connection looks for it (MariaDB, Galera) */
		IN_DOUBT_MARKER,
	} in_doubt;
	/* IN_DOUBT_MARKER: the marker row's upsert (parameters: the
	 * connection's writer id, the run's batch id) */
	const char *mark;
	/* One text parameter (the transaction id, or the writer id), one text
	 * column: txid_status() (IN_DOUBT_TXID), or the writer's last
	 * committed batch id (IN_DOUBT_MARKER) */
	const char *outcome;
	/* IN_DOUBT_MARKER, and fence: a statement that fails when the marker
	 * table is missing (the marker is then not written, and a lost commit
	 * answer stays in doubt; without fence, no batch goes alone) */
	const char *mark_probe;
	/* json_function dialects: a batch that is one call of the function
	 * goes alone, in autocommit (one round trip, no BEGIN or COMMIT), the
	 * function writing the marker row first.  fence (one text parameter,
	 * the writer id; one text column) answers the writer's last batch and
	 * gives the writer up, so that a call still on its way fails; with a
	 * NULL writer it answers NULL and does nothing.  NULL: none. */
	const char *fence;
};

/* The dialect whose dbms_prefix matches dbms_name, or NULL. */
const struct dialect *dialect_find(const char *dbms_name);

/* What an error with this SQLSTATE, native code and server message means
 * for the batch. */
enum error_scope dialect_error_scope(const struct dialect *d, const char *sqlstate, long native,
				     const char *text);

/* Whether any dialect takes this error for a failover (ERR_LOST): for a
 * connect that failed before the dialect was known. */
bool dialect_lost_anywhere(const char *sqlstate, long native, const char *text);

/* The parameter marker for a field of type t. */
const char *dialect_placeholder(const struct dialect *d, enum event_type t);

#endif
