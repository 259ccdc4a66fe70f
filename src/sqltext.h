/*
 * sqltext.h - the text of every statement the storage code prepares, built
 * from event_fields[] and the dialect's data, and the shape of its
 * parameters.  No value ever goes into a text: every value is a parameter.
 */
#ifndef EB_SQLTEXT_H
#define EB_SQLTEXT_H

#include "dialect.h"
#include "event.h"

/* A write statement has a variant per set of kept fields given: bit k for
 * event_kept[k]. */
#define SQL_VARIANTS (1 << EVENT_NKEPT)

/* BULK_EXISTING_THEN_UPSERT writes up to BULK_MAX rows with one statement,
 * in pieces of a power of two rows, so that only a few texts are prepared. */
#define BULK_SIZES 8
#define BULK_MAX (1 << (BULK_SIZES - 1)) /* 128 rows: 3,200 parameters */

enum stmt_kind {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_MARK,        /* IN_DOUBT_MARKER: the transaction's marker row */
	ST_OUTCOME,     /* what became of a commit whose answer was lost */
	ST_FENCE,       /* what became of a lone statement's batch, and no more */
	ST_JSON_UPSERT, /* BULK_JSON_ROWS: a run of rows as one JSON parameter */
	ST_JSON_CALL,   /* the same, through the dialect's json_function */
	ST_INSERT,      /* UPSERT_UPDATE_THEN_INSERT's second step */
	ST_WRITE,       /* + variant: the UPDATE, or the one upsert of a row */
	/* + size index: which of 2^index keys are stored */
	ST_EXISTING = ST_WRITE + SQL_VARIANTS,
	/* + variant * BULK_SIZES + size index: the upsert of 2^index rows */
	ST_BULK = ST_EXISTING + BULK_SIZES,
	ST__COUNT = ST_BULK + SQL_VARIANTS * BULK_SIZES
};

/* ST_JSON_CALL's last parameters: the writer and the batch id of the
 * marker row the function writes first (both NULL: no marker). */
#define SQL_JSON_WRITER (2 + EVENT_NKEPT)
#define SQL_JSON_BATCH (3 + EVENT_NKEPT)

/* Where a statement's parameters come from. */
struct stmt_shape {
	int rows;    /* rows of parameters: 1, or the rows of a bulk statement */
	int nparams; /* parameters per row */
	/* the field of each '?' of a row; for ST_JSON_UPSERT and
	 * ST_JSON_CALL, none: their parameters are the rows' text, then a key
	 * list per kept field (ST_JSON_CALL: then the marker's writer and
	 * batch ids, or two NULLs) */
	signed char params[EVENT_NFIELDS + 1];
};

/*
 * The text of statement kind for dialect d (malloc'd) and its shape.
 * NULL when the dialect has no such statement (a fixed text it leaves to
 * ODBC, a strategy it does not use) or memory runs out: a missing text is
 * an error for the caller, never another statement.
 */
char *sqltext_build(const struct dialect *d, int kind, struct stmt_shape *shape);

/* The write statement of a row that gave the kept fields of variant. */
static inline int
sqltext_write(unsigned variant)
{
	return ST_WRITE + (int)variant;
}

/* The "which of these keys are stored" of 2^size_index keys. */
static inline int
sqltext_existing(int size_index)
{
	return ST_EXISTING + size_index;
}

/* The upsert of 2^size_index rows of one variant. */
static inline int
sqltext_bulk(unsigned variant, int size_index)
{
	return ST_BULK + (int)variant * BULK_SIZES + size_index;
}

/* The CREATE OR REPLACE FUNCTION of the dialect's json_function, as
 * sql/ gives it (malloc'd), or NULL when the dialect has none. */
char *sqltext_json_function(const struct dialect *d);

/* "SELECT every column FROM Event WHERE 1 = 0" (malloc'd, or NULL): the
 * table has what the field table names. */
char *sqltext_schema_probe(void);

/* Which kept fields row gave: bit k for event_kept[k]. */
unsigned sqltext_variant(const struct event_row *row);

#endif
