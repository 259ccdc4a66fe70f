/*
 * dialect.c - the dialect table.
 */
#include "config.h"

#include <string.h>

#include "dialect.h"

/* SQLSTATE classes that are never one item's fault, on any database. */
static const char *const common_fatal_states[] = {
	"25",  /* invalid transaction state */
	"53",  /* insufficient resources: disk full, out of memory */
	"57",  /* operator intervention: a cancel */
	"58",  /* system error: I/O */
	"HYT", /* timeout expired */
	NULL,
};

/* A failover under way: the batch runs again on a new connection. */
static const char *const common_lost_states[] = {
	"08",    /* connection exception: lost, refused, not ready */
	"25006", /* read-only SQL transaction: a standby */
	"57P01", /* admin shutdown: the server is stopping */
	"57P02", /* crash shutdown: another backend crashed */
	"57P03", /* cannot connect now: starting up, or promoting */
	NULL,
};

/* Serialization failure and deadlock: the batch can simply run again. */
static const char *const common_conflict_states[] = {"40001", "40P01", NULL};

static const int no_natives[] = {0};

static const char *const sqlite_on_connect[] = {
	"PRAGMA journal_mode=WAL",
	NULL,
};

/* SQLite result codes (primary, native & 0xff) that abort a batch. */
static const int sqlite_fatal_natives[] = {
	5,  /* SQLITE_BUSY: lock not obtained within the busy timeout */
	6,  /* SQLITE_LOCKED */
	7,  /* SQLITE_NOMEM */
	8,  /* SQLITE_READONLY */
	10, /* SQLITE_IOERR */
	11, /* SQLITE_CORRUPT */
	13, /* SQLITE_FULL */
	14, /* SQLITE_CANTOPEN */
	26, /* SQLITE_NOTADB */
	0,
};

static const char *const mariadb_on_connect[] = {
	/* no gap locks: concurrent upserts of neighbouring ids do not block */
	"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	NULL,
};

/* MariaDB error numbers that abort a batch. */
static const int mariadb_fatal_natives[] = {
	1021, /* disk full */
	1040, /* too many connections */
	1114, /* table is full */
	1205, /* lock wait timeout */
	0,
};

/* MariaDB error numbers of a failover: the batch runs again. */
static const int mariadb_lost_natives[] = {
	1047, /* Galera: the node is not ready (WSREP has not yet prepared...) */
	1053, /* server shutdown in progress */
	1290, /* read-only (--read-only) */
	1836, /* read-only mode */
	1927, /* connection killed */
	2002, /* cannot connect (socket) */
	2003, /* cannot connect (TCP) */
	2006, /* server has gone away */
	2013, /* lost connection */
	4031, /* disconnected by the server (idle timeout) */
	0,
};

static const int mariadb_conflict_natives[] = {1213 /* deadlock */, 0};

/* Galera's own words (1105 at COMMIT, 1180 at a statement) */
static const char *const mariadb_too_large[] = {
	"Maximum writeset size exceeded",
	"wsrep_max_ws_rows exceeded",
	NULL,
};

/* What every dialect shares: standard savepoints and SQLSTATE classes. */
#define STANDARD_SQL                                                                               \
	.savepoint = "SAVEPOINT eb_item", .release = "RELEASE SAVEPOINT eb_item",                  \
	.rollback_to = "ROLLBACK TO SAVEPOINT eb_item", .fatal_sqlstates = common_fatal_states,    \
	.conflict_sqlstates = common_conflict_states, .lost_sqlstates = common_lost_states

static const struct dialect dialects[] = {
	{
		.name = "sqlite",
		.dbms_prefix = "SQLite",
		.style = UPSERT_UPDATE_THEN_INSERT,
		.bulk = BULK_EXISTING_THEN_UPSERT,
		.on_connect = sqlite_on_connect,
		.queue_writers = true,
		/* IMMEDIATE takes the write lock up front, waiting out other
		 * writers with the busy timeout instead of failing later. */
		.begin = "BEGIN IMMEDIATE",
		.commit = "COMMIT",
		.rollback = "ROLLBACK",
		STANDARD_SQL,
		.fatal_natives = sqlite_fatal_natives,
		.conflict_natives = no_natives,
		.lost_natives = no_natives,
		.native_mask = 0xff,
		.in_doubt = IN_DOUBT_NONE,
	},
	{
		.name = "postgresql",
		.dbms_prefix = "PostgreSQL",
		.style = UPSERT_ON_CONFLICT_RETURNING,
		.bulk = BULK_JSON_ROWS,
		/* text and integers do not cast to these implicitly */
		.placeholder =
			{[FT_BOOL] = "CAST(? AS BOOLEAN)", [FT_DATETIME] = "CAST(? AS TIMESTAMP)"},
		.sql_type = {[FT_INT32] = "INTEGER",
			     [FT_BOOL] = "BOOLEAN",
			     [FT_DOUBLE] = "DOUBLE PRECISION",
			     [FT_STRING] = "TEXT",
			     [FT_DATETIME] = "TIMESTAMP"},
		/* planned once per server connection, where a statement is
		 * parsed and planned at every execute */
		.json_function = "events_batch_upsert_v2",
		/* psqlODBC's own per-statement savepoints (its default
		 * "rollback on errors" level) clash with the per-item ones:
		 * level 0 leaves error handling to the program */
		.connect_suffix = ";Protocol=7.4-0",
		/* Nothing is prepared under a name on the server: psqlODBC
		 * names SQLPrepare'd statements after memory addresses, which
		 * workers forked from one parent share, and behind pgbouncer's
		 * transaction pooling one worker's name reaches another's
		 * statement.  Every statement goes with SQLExecDirect instead,
		 * and UseServerSidePrepare=1 makes that PostgreSQL's unnamed
		 * statement, the parameters sent apart from the text.  A
		 * string that says UseServerSidePrepare=0 has the driver quote
		 * them into the text. */
		.default_key = "UseServerSidePrepare",
		.default_setting = ";UseServerSidePrepare=1",
		.exec_direct = true,
		/* autocommit off: the driver sends BEGIN before the first
		 * statement (its own round trip for an unnamed statement) */
		.begin = NULL,
		STANDARD_SQL,
		.fatal_natives = no_natives,
		.conflict_natives = no_natives,
		.lost_natives = no_natives,
		.native_mask = ~0,
		.in_doubt = IN_DOUBT_TXID,
		.outcome = "SELECT CAST(txid_status(CAST(? AS BIGINT)) AS TEXT)",
		.mark_probe = "SELECT Writer, Batch, Written FROM EventBatchCommit WHERE 1 = 0",
		.fence = "SELECT events_batch_outcome_v1(CAST(? AS TEXT))",
	},
	{
		.name = "mariadb",
		.dbms_prefix = "MariaDB",
		.style = UPSERT_ON_DUPLICATE_KEY,
		.bulk = BULK_NONE,
		.on_connect = mariadb_on_connect,
		.begin = "START TRANSACTION",
		.commit = "COMMIT",
		.rollback = "ROLLBACK",
		STANDARD_SQL,
		.fatal_natives = mariadb_fatal_natives,
		.conflict_natives = mariadb_conflict_natives,
		.lost_natives = mariadb_lost_natives,
		.too_large = mariadb_too_large,
		.native_mask = ~0,
		.in_doubt = IN_DOUBT_MARKER,
		.mark = "REPLACE INTO EventBatchCommit (Writer, Batch, Written) VALUES (?, ?, "
			"UTC_TIMESTAMP(3))",
		/* a locking read: a commit still under way on this server is
		 * waited for, not read as not committed */
		.outcome = "SELECT Batch FROM EventBatchCommit WHERE Writer = ? FOR UPDATE",
		.mark_probe = "SELECT Writer, Batch, Written FROM EventBatchCommit WHERE 1 = 0",
	},
};

const struct dialect *
dialect_find(const char *dbms_name)
{
	for (size_t i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++)
		if (strncmp(dbms_name, dialects[i].dbms_prefix, strlen(dialects[i].dbms_prefix)) ==
		    0)
			return &dialects[i];
	return NULL;
}

static bool
state_in(const char *const *list, const char *sqlstate)
{
	for (const char *const *s = list; *s; s++)
		if (strncmp(sqlstate, *s, strlen(*s)) == 0)
			return true;
	return false;
}

static bool
native_in(const int *list, long native)
{
	for (const int *n = list; *n; n++)
		if (native == *n)
			return true;
	return false;
}

/* What servers say, inside the driver's 08001, when they refuse the login
 * itself: no failover mends that (MariaDB says 1045 / 28000 on its own) */
static const char *const login_refused[] = {
	/* PostgreSQL 28P01 and 28000 (password, SASL, ident, peer ...) and
	 * pgbouncer's own words */
	"authentication failed",
	"no pg_hba.conf entry", /* PostgreSQL, 28000 */
	NULL,
};

static bool
text_has(const char *const *list, const char *text)
{
	for (const char *const *t = list; t != NULL && *t; t++)
		if (strstr(text, *t) != NULL)
			return true;
	return false;
}

enum error_scope
dialect_error_scope(const struct dialect *d, const char *sqlstate, long native, const char *text)
{
	native &= d->native_mask;
	if (text_has(login_refused, text))
		return ERR_FATAL;
	if (text_has(d->too_large, text))
		return ERR_TOO_LARGE;
	if (state_in(d->conflict_sqlstates, sqlstate) || native_in(d->conflict_natives, native))
		return ERR_CONFLICT;
	if (state_in(d->lost_sqlstates, sqlstate) || native_in(d->lost_natives, native))
		return ERR_LOST;
	if (state_in(d->fatal_sqlstates, sqlstate) || native_in(d->fatal_natives, native))
		return ERR_FATAL;
	return ERR_ITEM;
}

bool
dialect_lost_anywhere(const char *sqlstate, long native, const char *text)
{
	for (size_t i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++)
		if (dialect_error_scope(&dialects[i], sqlstate, native, text) == ERR_LOST)
			return true;
	return false;
}

const char *
dialect_placeholder(const struct dialect *d, enum event_type t)
{
	return d->placeholder[t] != NULL ? d->placeholder[t] : "?";
}
