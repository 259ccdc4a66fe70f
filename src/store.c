/*
 * store.c - db_apply: a batch into the database, in one transaction.
 *
 * The rows go in ascending event_ID.  The fast path writes many rows per
 * statement, with no savepoints (the dialect's bulk style); when the
 * database refuses anything there, the batch is rolled back and written
 * again carefully, one row per statement in its own savepoint, so that
 * exactly the refused rows fail.  A deadlock runs the batch again; so does
 * a failover (SPEC §13): a lost connection, a standby, a Galera node that
 * refuses, each run again on a new connection until failover_seconds have
 * passed.  A commit whose answer was lost is found out before anything is
 * answered.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "conn.h"
#include "log.h"
#include "util.h"
#include "rowjson.h"
#include "sqltext.h"

/* Runs of a batch that met a deadlock before the failover_seconds deadline
 * counts. */
#define MAX_ATTEMPTS 3

/* Rows per BULK_JSON_ROWS statement: bounds the parameter's size (about
 * 600 bytes a row), not the statements per batch of a typical request. */
#define JSON_ROWS_MAX 2048

/* How many of the rows that did not give a kept field one BULK_JSON_ROWS
 * statement takes: each updated row looks its key up in that list, which
 * PostgreSQL's generic plan of a prepared statement does by a linear scan. */
#define JSON_ABSENT_MAX 128

/* The rows of one run of the batch, and where each row's result goes. */
struct rows {
	const struct event_row *v;
	struct item_result *const *results;
	size_t n;
	bool dry_run; /* roll back where the batch would commit (SPEC §11) */
};

static int32_t
row_key(const struct event_row *row)
{
	return row->v[EVENT_KEY].u.i;
}

static void
set_stored(struct item_result *r, bool created)
{
	r->status = created ? 201 : 200;
}

static void
set_refused(struct item_result *r, const struct db_error *err)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "database error (SQLSTATE %s)", err->state);
	r->status = 500;
	free(r->detail);
	r->detail = strdup(msg);
}

/* Where a write statement's transaction id goes: IN_DOUBT_TXID dialects
 * return it with every written row. */
static int64_t *
txid_of(struct db_conn *c)
{
	return c->dialect->in_doubt == IN_DOUBT_TXID ? &c->txid : NULL;
}

/* --- BULK_JSON_ROWS ------------------------------------------------------- */

/* How many of rows[0..n) one statement takes: keys distinct (a repeated id
 * goes to the next statement, so the later item still wins), at most
 * JSON_ROWS_MAX, and at most JSON_ABSENT_MAX without any one kept field. */
static size_t
json_run(const struct event_row *rows, size_t n)
{
	size_t absent[EVENT_NKEPT] = {0}, k;

	for (k = 0; k < n && k < JSON_ROWS_MAX; k++) {
		bool full = false;
		if (k > 0 && row_key(&rows[k]) == row_key(&rows[k - 1]))
			break;
		for (int f = 0; f < EVENT_NKEPT; f++)
			if (!rows[k].v[event_kept[f]].given && ++absent[f] > JSON_ABSENT_MAX)
				full = true;
		if (full)
			break;
	}
	return k;
}

/* Read the answer of a bulk upsert of rows[0..n), which names every row's
 * key once (with inserted and txid as odbc_fetch_keys), and close it.
 * False, with c->err, when it does not. */
static bool
fetch_every_row(struct db_conn *c, struct db_stmt *st, const struct event_row *rows, size_t n,
		bool *seen, bool *inserted, int64_t *txid)
{
	long got;

	memset(seen, 0, n * sizeof(*seen));
	got = odbc_fetch_keys(st, rows, n, seen, inserted, txid, &c->err);
	odbc_done(st);
	if (got == (long)n)
		return true;
	/* never report what was not seen stored */
	if (got >= 0)
		odbc_own_error(&c->err, "a bulk upsert did not answer for every row");
	return false;
}

/* Upsert rows[0..n) (keys distinct, ascending) with one statement;
 * created[i] tells which rows are new.  False: see c->err. */
static bool
upsert_json(struct db_conn *c, const struct event_row *rows, size_t n, bool *created, bool *seen)
{
	struct db_stmt *st = odbc_prepared(&c->cache, c->dbc, c->dialect,
					   c->json_call ? ST_JSON_CALL : ST_JSON_UPSERT, &c->err);

	if (st == NULL)
		return false;
	out_clear(&c->json);
	rowjson_rows(&c->json, rows, n);
	for (int k = 0; k < EVENT_NKEPT; k++) {
		out_clear(&c->absent[k]);
		rowjson_absent_keys(&c->absent[k], rows, n, event_kept[k]);
		c->json.failed |= c->absent[k].failed;
	}
	if (c->json.failed) {
		odbc_own_error(&c->err, "out of memory writing the rows");
		return false;
	}
	if (!odbc_bind_text(st, 1, c->json.text, c->json.len, &c->text_ind[0], &c->err))
		return false;
	for (int k = 0; k < EVENT_NKEPT; k++)
		if (!odbc_bind_text(st, 2 + k, c->absent[k].text, c->absent[k].len,
				    &c->text_ind[1 + k], &c->err))
			return false;
	/* a lone statement's marker; NULLs in a transaction (its txid tells) */
	if (c->json_call &&
	    (!odbc_bind_text(st, SQL_JSON_WRITER, c->alone ? c->writer : NULL, UUID_TEXT_LEN,
			     &c->text_ind[SQL_JSON_WRITER - 1], &c->err) ||
	     !odbc_bind_text(st, SQL_JSON_BATCH, c->alone ? c->run_id : NULL, UUID_TEXT_LEN,
			     &c->text_ind[SQL_JSON_BATCH - 1], &c->err)))
		return false;
	return odbc_exec(st, &c->err) && fetch_every_row(c, st, rows, n, seen, created, txid_of(c));
}

static enum db_status
store_json(struct db_conn *c, const struct rows *r)
{
	bool *flags = malloc((r->n ? r->n : 1) * 2 * sizeof(*flags));
	enum db_status st = DB_OK;

	if (flags == NULL)
		return DB_REFUSED; /* the careful path needs no such memory */
	for (size_t i = 0; i < r->n && st == DB_OK;) {
		size_t run = json_run(r->v + i, r->n - i);
		if (!upsert_json(c, r->v + i, run, flags, flags + run)) {
			/* a row's fault, or a statement the database cannot
			 * take: the careful redo finds out which */
			st = conn_status(c);
			break;
		}
		for (size_t k = 0; k < run; k++)
			set_stored(r->results[i + k], flags[k]);
		i += run;
	}
	free(flags);
	return st;
}

/* --- BULK_EXISTING_THEN_UPSERT ----------------------------------------------- */

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

/* Upsert rows[0..n) (n a power of two, keys distinct and ascending, one
 * variant) with one statement, after asking which keys are stored: the
 * write lock taken at BEGIN keeps that answer true. */
static bool
upsert_bulk(struct db_conn *c, const struct event_row *rows, size_t n, bool *created)
{
	bool seen[BULK_MAX] = {false};
	int size = size_index(n);
	struct db_stmt *st =
		odbc_prepared(&c->cache, c->dbc, c->dialect, sqltext_existing(size), &c->err);
	long got;

	if (st == NULL || !odbc_exec_rows(st, c->pbuf, rows, &c->err))
		return false;
	got = odbc_fetch_keys(st, rows, n, seen, NULL, NULL, &c->err);
	odbc_done(st);
	if (got < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		created[i] = !seen[i];
	st = odbc_prepared(&c->cache, c->dbc, c->dialect,
			   sqltext_bulk(sqltext_variant(&rows[0]), size), &c->err);
	return st != NULL && odbc_exec_rows(st, c->pbuf, rows, &c->err) &&
	       fetch_every_row(c, st, rows, n, seen, NULL, NULL);
}

/* How many of rows[0..n) one bulk statement can take: keys distinct and
 * one variant. */
static size_t
bulk_run(const struct event_row *rows, size_t n)
{
	size_t k = 1;
	unsigned variant = sqltext_variant(&rows[0]);

	while (k < n && k < BULK_MAX && row_key(&rows[k]) != row_key(&rows[k - 1]) &&
	       sqltext_variant(&rows[k]) == variant)
		k++;
	return k;
}

static enum db_status
store_bulk(struct db_conn *c, const struct rows *r)
{
	for (size_t i = 0; i < r->n;) {
		bool created[BULK_MAX];
		size_t piece = pow2_floor(bulk_run(r->v + i, r->n - i));
		if (!upsert_bulk(c, r->v + i, piece, created))
			return conn_status(c);
		for (size_t k = 0; k < piece; k++)
			set_stored(r->results[i + k], created[k]);
		i += piece;
	}
	return DB_OK;
}

/* --- one row per statement --------------------------------------------------- */

/* Upsert one row; *created tells which it was.  False: see c->err, and
 * *no_statement when not even a statement could be had. */
static bool
upsert_row(struct db_conn *c, const struct event_row *row, bool *created, bool *no_statement)
{
	struct db_stmt *st = odbc_prepared(&c->cache, c->dbc, c->dialect,
					   sqltext_write(sqltext_variant(row)), &c->err);
	int inserted = -1;
	long n;

	*no_statement = st == NULL;
	if (st == NULL || !odbc_exec_rows(st, c->pbuf, row, &c->err))
		return false;
	switch (c->dialect->style) {
	case UPSERT_ON_CONFLICT_RETURNING:
		if (!odbc_fetch_int(st, &inserted, txid_of(c), &c->err)) {
			odbc_done(st);
			return false;
		}
		odbc_done(st);
		*created = inserted == 1;
		return true;
	case UPSERT_ON_DUPLICATE_KEY:
		n = odbc_row_count(st);
		odbc_done(st);
		*created = n == 1;
		return true;
	case UPSERT_UPDATE_THEN_INSERT: break;
	}
	n = odbc_row_count(st);
	odbc_done(st);
	*created = n == 0;
	if (n > 0)
		return true;
	st = odbc_prepared(&c->cache, c->dbc, c->dialect, ST_INSERT, &c->err);
	*no_statement = st == NULL;
	if (st == NULL || !odbc_exec_rows(st, c->pbuf, row, &c->err))
		return false;
	odbc_done(st);
	return true;
}

/* Every row with its own statement; careful: each in a savepoint, and a
 * refused row gets its 500 while the others go on. */
static enum db_status
store_rows(struct db_conn *c, const struct rows *r, bool careful)
{
	for (size_t i = 0; i < r->n; i++) {
		bool created = false, no_statement;
		enum db_status st;

		if (careful && (st = conn_fixed(c, ST_SAVEPOINT)) != DB_OK)
			return st;
		if (upsert_row(c, &r->v[i], &created, &no_statement)) {
			set_stored(r->results[i], created);
			if (careful && (st = conn_fixed(c, ST_RELEASE)) != DB_OK)
				return st;
			continue;
		}
		st = conn_status(c);
		if (st != DB_REFUSED)
			return st;
		if (no_statement)
			return DB_FAILED; /* the schema, not the row */
		if (!careful)
			return DB_REFUSED;
		set_refused(r->results[i], &c->err);
		if ((st = conn_fixed(c, ST_ROLLBACK_TO)) != DB_OK ||
		    (st = conn_fixed(c, ST_RELEASE)) != DB_OK)
			return st;
	}
	return DB_OK;
}

/* Write every row, the fast way or the careful one. */
static enum db_status
store(struct db_conn *c, const struct rows *r, bool careful)
{
	if (!careful && c->dialect->bulk == BULK_JSON_ROWS)
		return store_json(c, r);
	if (!careful && c->dialect->bulk == BULK_EXISTING_THEN_UPSERT)
		return store_bulk(c, r);
	return store_rows(c, r, careful);
}

/* --- the write order --------------------------------------------------------- */

/* A row's place in the write order: its id, then its place in the batch. */
struct order_entry {
	int32_t key;
	size_t index;
};

static int
compare_order(const void *a, const void *b)
{
	const struct order_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	/* stable: the same id keeps batch order, so the later one wins */
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Move b->rows (and row_item with them) into the order e[] gives: position
 * k gets the row that was at e[k].index.  In place, a cycle at a time, so
 * a large batch is not held twice. */
static bool
permute_rows(struct batch *b, const struct order_entry *e)
{
	size_t n = b->n_rows;
	bool *placed = calloc(n ? n : 1, sizeof(*placed));

	if (placed == NULL)
		return false;
	for (size_t start = 0; start < n; start++) {
		struct event_row row;
		size_t item, k = start;
		if (placed[start])
			continue;
		row = b->rows[start];
		item = b->row_item[start];
		while (e[k].index != start) {
			b->rows[k] = b->rows[e[k].index];
			b->row_item[k] = b->row_item[e[k].index];
			placed[k] = true;
			k = e[k].index;
		}
		b->rows[k] = row;
		b->row_item[k] = item;
		placed[k] = true;
	}
	free(placed);
	return true;
}

/* Put b's rows in ascending event_ID (repeats in batch order); results[k]
 * is then the item result of rows[k].  NULL when memory runs out. */
static struct item_result **
order_rows(struct batch *b)
{
	size_t n = b->n_rows;
	struct order_entry *e = malloc((n ? n : 1) * sizeof(*e));
	struct item_result **results = malloc((n ? n : 1) * sizeof(*results));

	if (e == NULL || results == NULL)
		goto failed;
	for (size_t k = 0; k < n; k++) {
		e[k].key = row_key(&b->rows[k]);
		e[k].index = k;
	}
	qsort(e, n, sizeof(*e), compare_order);
	if (!permute_rows(b, e))
		goto failed;
	free(e);
	for (size_t k = 0; k < n; k++)
		results[k] = &b->results[b->row_item[k]];
	return results;
failed:
	free(e);
	free(results);
	return NULL;
}

/* --- the batch ---------------------------------------------------------------- */

/* How far a run of the batch got. */
enum phase { PHASE_BEGIN, PHASE_WRITE, PHASE_COMMIT };

/* Whether the batch can be one statement that commits by itself: one
 * call of the dialect's function, with its marker, and no dry run. */
static bool
goes_alone(const struct db_conn *c, const struct rows *r, bool careful)
{
	return c->can_go_alone && !careful && !r->dry_run && r->n > 0 &&
	       json_run(r->v, r->n) == r->n;
}

/* The batch as one statement in autocommit: one round trip, where a
 * transaction takes the driver's BEGIN, the statement and COMMIT.  The
 * caller's answer is made first, for the statement commits; the results
 * change only from 201 to 200, which the caller makes again in place. */
static enum db_status
run_alone(struct db_conn *c, const struct rows *r, db_ready_fn *ready, void *ctx)
{
	enum db_status st;

	/* the answer's length, until the statement tells */
	for (size_t k = 0; k < r->n; k++)
		set_stored(r->results[k], true);
	if (!ready(ctx))
		return DB_ABANDONED;
	if ((st = conn_alone(c)) != DB_OK)
		return st;
	return conn_alone_done(c, store_json(c, r)); /* db_apply makes the answer again */
}

/* One run of the batch: begin, write every row (and the marker), commit
 * once the caller is ready.  *phase: where it stopped. */
static enum db_status
run_batch(struct db_pool *pool, struct db_conn *c, const struct rows *r, bool careful,
	  db_ready_fn *ready, void *ctx, enum phase *phase)
{
	enum db_status st;

	*phase = PHASE_BEGIN;
	if ((st = conn_begin(pool, c)) != DB_OK)
		return st;
	*phase = PHASE_WRITE;
	if (goes_alone(c, r, careful))
		return run_alone(c, r, ready, ctx);
	st = store(c, r, careful);
	if (st == DB_OK)
		st = conn_mark(c);
	if (st != DB_OK) {
		conn_rollback(c);
		return st;
	}
	if (!ready(ctx)) {
		conn_rollback(c);
		return DB_ABANDONED;
	}
	*phase = PHASE_COMMIT;
	if (r->dry_run) {
		/* every row was written and answered for: undo it all, and
		 * release the writers' queue as a commit would */
		conn_rollback(c);
		return DB_OK;
	}
	return conn_commit(c);
}

/* The runs of one batch after a conflict or a failover: until the
 * deadline, failover_seconds after the first. */
struct retries {
	double deadline; /* ms, util_monotonic_ms(); 0 before the first */
	int waits;
};

/* Wait before the next try, with a pause that doubles from 20 ms to 1 s
 * (give or take a random quarter, so that writers that conflicted do not
 * meet again in step); false when the deadline has passed. */
static bool
wait_again(struct db_pool *pool, struct retries *rt, const struct db_conn *c, const char *what)
{
	double now = util_monotonic_ms(), pause;
	unsigned char jitter = 0;

	if (rt->deadline == 0)
		rt->deadline = now + 1000.0 * pool->failover_seconds;
	if (now >= rt->deadline) {
		log_msg("database %s: %s (SQLSTATE %s); failover_seconds (%d) ran out", c->db->name,
			what, c->err.state, pool->failover_seconds);
		return false;
	}
	pause = rt->waits < 6 ? 20.0 * (1 << rt->waits) : 1000.0;
	if (getrandom(&jitter, 1, 0) == 1)
		pause *= 0.75 + jitter / 512.0;
	if (pause > rt->deadline - now)
		pause = rt->deadline - now;
	rt->waits++;
	log_msg("database %s: %s (SQLSTATE %s); trying again in %.0f ms", c->db->name, what,
		c->err.state, pause);
	util_sleep_ms(pause);
	return true;
}

/* A lone statement's created flags, as its marker kept them, into r's
 * results; false when they are not one a row. */
static bool
set_created(const struct rows *r, const char *flags)
{
	if (strlen(flags) != r->n || strspn(flags, "01") != r->n)
		return false;
	for (size_t k = 0; k < r->n; k++)
		set_stored(r->results[k], flags[k] == '1');
	return true;
}

/* The commit's answer was lost: whether it committed, asked on a new
 * connection until the deadline.  DB_OK (it did), DB_LOST (it did not:
 * run it again), DB_IN_DOUBT (cannot be known), DB_UNAVAILABLE (time ran
 * out). */
static enum db_status
ask_outcome(struct db_pool *pool, struct db_conn *c, struct retries *rt, char *answer, size_t size)
{
	for (;;) {
		switch (conn_outcome(pool, c, answer, size)) {
		case OUTCOME_COMMITTED:
			log_msg("database %s: the lost commit's outcome: committed", c->db->name);
			return DB_OK;
		case OUTCOME_NOT_COMMITTED:
			log_msg("database %s: the lost commit's outcome: not committed; running "
				"the "
				"batch again",
				c->db->name);
			return DB_LOST;
		case OUTCOME_UNKNOWN:
			log_msg("database %s: the lost commit's outcome cannot be known",
				c->db->name);
			return DB_IN_DOUBT;
		case OUTCOME_NOT_YET:
			if (!wait_again(pool, rt, c, "the lost commit is still in progress"))
				return DB_IN_DOUBT;
			break;
		case OUTCOME_NO_ANSWER:
			conn_close(c);
			if (!wait_again(pool, rt, c, "cannot ask what the lost commit did"))
				return DB_IN_DOUBT;
			break;
		}
	}
}

/* The commit's answer was lost: ask_outcome, and for a run that went
 * alone, its rows' outcomes from its marker. */
static enum db_status
find_out(struct db_pool *pool, struct db_conn *c, const struct rows *r, struct retries *rt)
{
	bool alone = c->alone;
	size_t size = r->n + UUID_TEXT_LEN + 64;
	char *answer = malloc(size);
	enum db_status st;

	if (answer == NULL) {
		log_msg("database %s: out of memory asking what the lost commit did", c->db->name);
		return DB_IN_DOUBT;
	}
	st = ask_outcome(pool, c, rt, answer, size);
	if (st == DB_OK && alone && !set_created(r, answer)) {
		log_msg("database %s: the lost commit's marker does not hold its rows' outcomes",
			c->db->name);
		st = DB_IN_DOUBT;
	}
	free(answer);
	return st;
}

enum db_status
db_apply(struct db_pool *pool, const struct eb_database *db, struct batch *batch, bool dry_run,
	 db_ready_fn *ready, void *ctx)
{
	struct db_conn *c;
	struct rows r = {batch->rows, NULL, batch->n_rows, dry_run};
	struct item_result **results;
	struct retries rt = {0, 0};
	bool careful = false, reconnected = false;
	enum phase phase;
	int conflicts = 0;
	enum db_status st;

	if ((results = order_rows(batch)) == NULL)
		return DB_ABANDONED;
	if ((c = conn_acquire(pool, db)) == NULL) {
		free(results);
		log_msg("database %s: no connection free for this request", db->name);
		return DB_UNAVAILABLE;
	}
	r.results = results;
	for (;;) {
		bool reused = c->open, asked = false;
		st = run_batch(pool, c, &r, careful, ready, ctx, &phase);
		if (st == DB_IN_DOUBT) {
			asked = true;
			log_msg("database %s: the connection was lost during the commit (SQLSTATE "
				"%s); finding out whether it committed",
				db->name, c->err.state);
			st = find_out(pool, c, &r, &rt);
		}
		if (st == DB_OK || st == DB_ABANDONED || st == DB_FAILED || st == DB_IN_DOUBT ||
		    st == DB_TOO_LARGE)
			break;
		if (st == DB_REFUSED && !careful) {
			careful = true;
			log_msg("a statement of the batch failed; writing it again item by item");
		} else if (st == DB_CONFLICT && ++conflicts < MAX_ATTEMPTS) {
			log_msg("deadlock or serialization failure (SQLSTATE %s); running the "
				"batch "
				"again",
				c->err.state);
		} else if (st == DB_LOST && reused && !reconnected && phase != PHASE_COMMIT) {
			/* the kept connection died since the last request (a lone
			 * statement's question opened a new one already) */
			reconnected = true;
			if (!asked)
				conn_close(c);
			log_msg("database %s: the kept connection failed; connecting again",
				db->name);
		} else if (st == DB_LOST || st == DB_CONFLICT) {
			if (st == DB_LOST)
				conn_close(c);
			if (!wait_again(pool, &rt, c,
					st == DB_LOST ? "the connection or the server was lost"
						      : "the batch conflicted again")) {
				st = DB_UNAVAILABLE;
				break;
			}
		} else {
			if (st == DB_REFUSED) /* refused even item by item: not a row's fault */
				st = DB_FAILED;
			break;
		}
		batch_reset_stored(batch);
	}
	if (st != DB_OK) /* nothing applied, or not known: no item result */
		batch_reset_stored(batch);
	else if (c->alone && !ready(ctx)) /* the results came with the commit */
		log_msg("database %s: the batch was applied, but its answer could not be made",
			db->name);
	conn_release(pool, c);
	free(results);
	return st;
}
