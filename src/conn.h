/*
 * conn.h - the connections of a worker: one per configured database, opened
 * when first needed and kept, with the dialect found at connect time.
 */
#ifndef EB_CONN_H
#define EB_CONN_H

#include <pthread.h>
#include <stdbool.h>

#include "conf.h"
#include "db.h"
#include "dialect.h"
#include "odbc.h"
#include "outbuf.h"
#include "sqltext.h"
#include "util.h"
#include "wqueue.h"

struct db_conn {
	const struct eb_database *db;
	SQLHDBC dbc;
	bool open;
	const struct dialect *dialect;
	const struct dialect *known; /* the last connection's, kept after a close */
	const char *suffix;          /* the dialect's connect_suffix, once known */
	struct stmt_cache cache;
	struct param_buf *pbuf; /* PARAM_BUFS of them */
	/* BULK_JSON_ROWS: the rows' text, then one key list per kept field */
	struct outbuf json, absent[EVENT_NKEPT];
	SQLLEN text_ind[SQL_JSON_BATCH];
	bool json_call; /* the dialect's json_function is there: call it */
	/* its fence and the marker table too: a batch that is one call may
	 * go alone, in autocommit; and whether this run does */
	bool can_go_alone, alone;
	struct wqueue queue; /* queue_writers dialects */
	struct db_error err; /* the last failure on this connection */
	bool busy;           /* a request of some thread has it */
	/* What a commit whose answer is lost is found out by (SPEC §13):
	 * IN_DOUBT_TXID, the run's transaction id (0: none seen yet);
	 * IN_DOUBT_MARKER, this connection's writer id and the run's id, when
	 * the marker table is there; a run that goes alone, the same, through
	 * the dialect's fence */
	int64_t txid;
	bool marker;
	char writer[UUID_TEXT_LEN + 1];
	char run_id[UUID_TEXT_LEN + 1];
};

/* Per configured database, one connection for each thread of the worker
 * (cfg->threads): a request takes one for itself, open or not, and gives
 * it back, so a worker opens only as many as it serves requests at once. */
struct db_pool {
	SQLHENV env;
	pthread_mutex_t lock; /* busy flags */
	int failover_seconds;
	size_t n;
	struct db_conn conns[];
};

/* A connection of pool to db for this request, preferring one already
 * open; NULL when db is not pool's or every one is in use. */
struct db_conn *conn_acquire(struct db_pool *pool, const struct eb_database *db);

/* Give c back to the pool, open (for the next request) or closed. */
void conn_release(struct db_pool *pool, struct db_conn *c);

/*
 * Open c when it is not, take the writers' queue when the dialect has one,
 * and begin a transaction: the dialect's BEGIN, or nothing where the
 * driver begins one with the first statement (autocommit off).  A
 * connection that died since the last request is not noticed here: its
 * first statement fails, and db_apply runs the batch again on a new one.
 */
enum db_status conn_begin(struct db_pool *pool, struct db_conn *c);

/*
 * A run that is one statement committing by itself (c open, can_go_alone,
 * no transaction begun by conn_begin's driver yet): a fresh run id for the
 * statement's marker, and autocommit on.  conn_alone_done ends it with the
 * statement's status: autocommit off again, and a connection lost on the
 * way closed, DB_IN_DOUBT (the statement may have committed).
 */
enum db_status conn_alone(struct db_conn *c);
enum db_status conn_alone_done(struct db_conn *c, enum db_status st);

/* Run a fixed statement (ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO). */
enum db_status conn_fixed(struct db_conn *c, int kind);

/* Write the run's marker row (IN_DOUBT_MARKER with its table; else
 * nothing), with a fresh run id. */
enum db_status conn_mark(struct db_conn *c);

/* Commit.  A commit the database refused is rolled back: DB_CONFLICT when
 * it can simply run again, else DB_UNAVAILABLE.  A connection lost during
 * the commit is closed: DB_IN_DOUBT where the dialect can find out what
 * happened (conn_outcome), else DB_UNAVAILABLE. */
enum db_status conn_commit(struct db_conn *c);

/* What became of a commit whose answer was lost. */
enum outcome {
	OUTCOME_COMMITTED,
	OUTCOME_NOT_COMMITTED,
	OUTCOME_NOT_YET,   /* still in progress: ask again */
	OUTCOME_UNKNOWN,   /* cannot be known */
	OUTCOME_NO_ANSWER, /* the question failed (c->err): no connection yet */
};

/* What became of c's last commit, asked on a new connection; answer
 * (size bytes) is room for the answer, which for a run that went alone
 * and committed holds its rows' created flags, a '1' or '0' each in key
 * order. */
enum outcome conn_outcome(struct db_pool *pool, struct db_conn *c, char *answer, size_t size);

/* Roll back; a connection that fails even this is closed. */
void conn_rollback(struct db_conn *c);

void conn_close(struct db_conn *c);

/* What c->err means for the batch: DB_UNAVAILABLE, DB_CONFLICT, or
 * DB_REFUSED (the statement's own fault: a row, or the schema). */
enum db_status conn_status(const struct db_conn *c);

#endif
