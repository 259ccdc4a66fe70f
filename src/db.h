/*
 * db.h - storing rows through ODBC: one connection per configured database
 * per worker, reused across requests, with statements prepared once.
 */
#ifndef EB_DB_H
#define EB_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "event.h"

struct db_pool;
struct db_conn;

enum db_status {
	DB_OK,
	DB_RETRY_CAREFUL, /* an item failed on the fast path: roll back, redo carefully */
	DB_CONFLICT,      /* deadlock or serialization failure: roll back, run again */
	DB_UNAVAILABLE,   /* connection, lock or disk trouble: 503, nothing applied */
	DB_FAILED,        /* the database is not usable as configured: 500 */
};

/* A pool for every database of cfg; NULL when out of memory. */
struct db_pool *db_pool_new(const struct eb_config *cfg);
void db_pool_free(struct db_pool *pool);

/*
 * The connection to db, opened (or re-opened) when needed, with a transaction
 * begun.  A cached connection that fails to begin is re-opened once, so the
 * first request after a server restart succeeds.
 */
enum db_status db_begin(struct db_pool *pool, const struct eb_database *db,
			struct db_conn **out);

/*
 * Upsert rows[0..n) in order (ascending ids), setting each results[i]'s
 * status (201/200, or 500 with a detail when careful).  careful: one
 * statement per row, each in its own savepoint, so a failing row is rolled
 * back alone.  Otherwise no savepoints and, where the dialect can, many rows
 * per statement; any refused row answers DB_RETRY_CAREFUL.
 */
enum db_status db_store(struct db_conn *c, const struct event_row *rows,
			struct item_result *const *results, size_t n, bool careful);

/* Commit the transaction; on failure it is rolled back. */
enum db_status db_commit(struct db_conn *c);

/* Roll back; a connection that fails even this is closed for re-opening. */
void db_rollback(struct db_conn *c);

#endif
