/*
 * db.h - storing a batch through ODBC: one connection per configured
 * database per worker, reused across requests, with statements prepared
 * once.  The storage code is split by concern:
 *
 *   store.c    db_apply: the write order, the write strategies, the careful
 *              redo, the runs again after a conflict or a lost connection
 *   conn.c     the pool, connecting, the schema probe, transactions
 *   odbc.c     diagnostics, prepared statements, parameters, results
 *   sqltext.c  statement texts, from event_fields[] and the dialect
 *   rowjson.c  rows as one JSON parameter
 *   wqueue.c   the writers' queue of an SQLite file
 *   dialect.c  what differs between the databases, as data
 */
#ifndef EB_DB_H
#define EB_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "conf.h"

struct db_pool;

enum db_status {
	DB_OK,
	DB_REFUSED,     /* the database refused a row: that item's fault */
	DB_CONFLICT,    /* deadlock or serialization failure: run it again */
	DB_LOST,        /* the connection or the server went away: run it again */
	DB_IN_DOUBT,    /* the commit's answer was lost, and what it did is unknown */
	DB_UNAVAILABLE, /* connection, lock or disk trouble: 503, nothing applied */
	DB_TOO_LARGE,   /* larger than the database takes in one transaction: 413 */
	DB_FAILED,      /* the database is not usable as configured: 500 */
	DB_ABANDONED,   /* the caller's answer could not be made: rolled back */
};

/* A pool for every database of cfg; NULL when out of memory.  A batch cut
 * by a failover runs again for cfg->failover_seconds. */
struct db_pool *db_pool_new(const struct eb_config *cfg);
void db_pool_free(struct db_pool *pool);

/* Called once every row is stored, before the commit: false rolls the
 * batch back (db_apply then answers DB_ABANDONED). */
typedef bool db_ready_fn(void *ctx);

/*
 * Store every row of batch in database db, in one transaction: DB_OK when
 * it committed, with each row's item result 201 or 200, or 500 with a
 * detail for a row the database refused (rolled back alone).
 * DB_IN_DOUBT: the commit's answer was lost and no new connection could
 * tell whether it committed (SPEC §13).  Any other status: nothing
 * applied, no item result set.  The rows are written in
 * ascending event_ID (batch->rows is reordered, row_item with it), so that
 * concurrent batches take row locks in one order.  dry_run (SPEC §11): all
 * of it, the careful redo too, exactly as above, but rolled back where it
 * would commit; DB_OK then means the results say what a commit would have
 * done, and nothing is applied.
 */
enum db_status db_apply(struct db_pool *pool, const struct eb_database *db, struct batch *batch,
			bool dry_run, db_ready_fn *ready, void *ctx);

#endif
