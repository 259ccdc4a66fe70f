/*
 * sqltext.c - statement texts from the field table and the dialect.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rowjson.h"
#include "sqltext.h"

/* A string builder; overflow: out of memory. */
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

unsigned
sqltext_variant(const struct event_row *row)
{
	unsigned variant = 0;

	for (int k = 0; k < EVENT_NKEPT; k++)
		if (row->v[event_kept[k]].given)
			variant |= 1u << k;
	return variant;
}

/* The index in event_kept[] of kept field f, or -1. */
static int
kept_index(int f)
{
	for (int k = 0; k < EVENT_NKEPT; k++)
		if (event_kept[k] == f)
			return k;
	return -1;
}

/* Whether field f keeps its stored value in an update of this variant. */
static bool
field_kept(int f, unsigned variant)
{
	int k = kept_index(f);

	return k >= 0 && !(variant & (1u << k));
}

static void
add_param(struct stmt_shape *sh, int f)
{
	sh->params[sh->nparams++] = (signed char)f;
}

/* "col, col, ..." of every field */
static void
add_columns(struct sqlbuf *b)
{
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(b, f ? ", " : "");
		sql_add(b, event_fields[f].column);
	}
}

/* "(?, ...), ..." for rows rows, a parameter per field of a row */
static void
add_value_rows(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, int rows)
{
	for (int f = 0; f < EVENT_NFIELDS; f++)
		add_param(sh, f);
	for (int r = 0; r < rows; r++) {
		sql_add(b, r ? ", (" : "(");
		for (int f = 0; f < EVENT_NFIELDS; f++) {
			sql_add(b, f ? ", " : "");
			sql_add(b, dialect_placeholder(d, event_fields[f].type));
		}
		sql_add(b, ")");
	}
	sh->rows = rows;
}

/* "INSERT INTO Event (all columns) VALUES (?, ...), ..." for rows rows */
static void
build_insert(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, int rows)
{
	sql_add(b, "INSERT INTO Event (");
	add_columns(b);
	sql_add(b, ") VALUES ");
	add_value_rows(b, sh, d, rows);
}

/* The columns an update sets: all but the key and the kept fields this
 * variant did not get, as "col = " + the value expression, where the value
 * is a parameter (NULL from) or from.col. */
static void
build_set_list(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, unsigned variant,
	       const char *from)
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
			add_param(sh, f);
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
build_write(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, unsigned variant)
{
	switch (d->style) {
	case UPSERT_UPDATE_THEN_INSERT:
		sql_add(b, "UPDATE Event SET ");
		build_set_list(b, sh, d, variant, NULL);
		sql_add(b, " WHERE ");
		sql_add(b, event_fields[EVENT_KEY].column);
		sql_add(b, " = ");
		sql_add(b, dialect_placeholder(d, event_fields[EVENT_KEY].type));
		add_param(sh, EVENT_KEY);
		break;
	case UPSERT_ON_CONFLICT_RETURNING:
		build_insert(b, sh, d, 1);
		sql_add(b, " ON CONFLICT (");
		sql_add(b, event_fields[EVENT_KEY].column);
		sql_add(b, ") DO UPDATE SET ");
		build_set_list(b, sh, d, variant, "EXCLUDED.");
		/* xmax is 0 on a freshly inserted row version */
		sql_add(b, " RETURNING CAST((xmax = 0) AS INTEGER)");
		if (d->in_doubt == IN_DOUBT_TXID)
			sql_add(b, ", txid_current()");
		break;
	case UPSERT_ON_DUPLICATE_KEY:
		build_insert(b, sh, d, 1);
		sql_add(b, " ON DUPLICATE KEY UPDATE ");
		build_set_list(b, sh, d, variant, "VALUES(");
		break;
	}
}

/*
 * BULK_EXISTING_THEN_UPSERT: the upsert of rows rows (distinct keys, one
 * variant) in one statement, answering each row's key.  The rows come as a
 * common table expression, so that the text begins with WITH: the SQLite
 * ODBC driver compiles a statement that begins with WITH (or SELECT) once,
 * at SQLPrepare, and runs it again at each SQLExecute, where it compiles an
 * INSERT again at every execute.  ("WHERE true" tells SQLite's parser that
 * ON CONFLICT is the upsert's, not a join's.)
 */
static void
build_bulk(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, unsigned variant,
	   int rows)
{
	sql_add(b, "WITH r (");
	add_columns(b);
	sql_add(b, ") AS (VALUES ");
	add_value_rows(b, sh, d, rows);
	sql_add(b, ") INSERT INTO Event (");
	add_columns(b);
	sql_add(b, ") SELECT * FROM r WHERE true ON CONFLICT (");
	sql_add(b, event_fields[EVENT_KEY].column);
	sql_add(b, ") DO UPDATE SET ");
	build_set_list(b, sh, d, variant, "EXCLUDED.");
	sql_add(b, " RETURNING ");
	sql_add(b, event_fields[EVENT_KEY].column);
}

/* "SELECT key FROM Event WHERE key IN (?, ...)" for rows keys */
static void
build_existing(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, int rows)
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
	add_param(sh, EVENT_KEY);
	sh->rows = rows;
}

_Static_assert(SQL_JSON_BATCH <= 9, "the JSON function's parameters are $1 to $9");

/* The marker of parameter n (from 1) of the JSON upsert: "?" for the
 * statement, "$n" for the body of the dialect's json_function. */
static const char *
json_param(char buf[8], bool positional, int n)
{
	if (!positional)
		return "?";
	buf[0] = '$';
	buf[1] = (char)('0' + n);
	buf[2] = '\0';
	return buf;
}

/* The value of kept field k in an update: the stored one for the rows whose
 * keys parameter 2 + k lists (they did not give it), else the new one. */
static void
build_kept_value(struct sqlbuf *b, int k, bool positional)
{
	const char *col = event_fields[event_kept[k]].column;
	char param[8];

	sql_add(b, " = CASE WHEN EXCLUDED.");
	sql_add(b, event_fields[EVENT_KEY].column);
	sql_add(b, " = ANY(CAST(");
	sql_add(b, json_param(param, positional, 2 + k));
	sql_add(b, " AS INTEGER[])) THEN Event.");
	sql_add(b, col);
	sql_add(b, " ELSE EXCLUDED.");
	sql_add(b, col);
	sql_add(b, " END");
}

/*
 * BULK_JSON_ROWS: the upsert of a run of rows (distinct keys) given as one
 * JSON parameter (rowjson.h), then per kept field the keys of the rows that
 * did not give it, as an integer array: those rows keep the stored value
 * when they update, read from the row the upsert has locked.
 */
static void
build_json_upsert(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d, bool positional)
{
	const char *key = event_fields[EVENT_KEY].column;
	char name[ROWJSON_NAME_MAX], param[8];

	sql_add(b, "INSERT INTO Event (");
	add_columns(b);
	sql_add(b, ") SELECT ");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		rowjson_name(f, name);
		sql_add(b, f ? ", " : "");
		sql_add(b, name);
	}
	sql_add(b, " FROM json_to_recordset(CAST(");
	sql_add(b, json_param(param, positional, 1));
	sql_add(b, " AS JSON)) AS j(");
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
		if (f == EVENT_KEY)
			continue;
		sql_add(b, first ? "" : ", ");
		sql_add(b, event_fields[f].column);
		if (field_kept(f, 0)) {
			build_kept_value(b, kept_index(f), positional);
		} else {
			sql_add(b, " = EXCLUDED.");
			sql_add(b, event_fields[f].column);
		}
		first = 0;
	}
	sql_add(b, " RETURNING ");
	sql_add(b, key);
	sql_add(b, ", CAST((xmax = 0) AS INTEGER)");
	if (d->in_doubt == IN_DOUBT_TXID)
		sql_add(b, ", txid_current()");
	sh->nparams = 1 + EVENT_NKEPT;
}

/* The columns of the JSON upsert's answer, as json_function names them. */
static void
add_json_answer(struct sqlbuf *b, const struct dialect *d, bool typed)
{
	sql_add(b, "stored_id");
	if (typed) {
		sql_add(b, " ");
		sql_add(b, d->sql_type[event_fields[EVENT_KEY].type]);
	}
	sql_add(b, typed ? ", created INTEGER" : ", created");
	if (d->in_doubt == IN_DOUBT_TXID)
		sql_add(b, typed ? ", txid BIGINT" : ", txid");
}

/* "events_batch_upsert_v2(CAST(? AS JSON), CAST(? AS INTEGER[]), ...)":
 * the call of json_function, or with types only, its signature. */
static void
add_json_function(struct sqlbuf *b, const struct dialect *d, bool signature)
{
	sql_add(b, d->json_function);
	sql_add(b, signature ? "(JSON" : "(CAST(? AS JSON)");
	for (int k = 0; k < EVENT_NKEPT; k++)
		sql_add(b, signature ? ", INTEGER[]" : ", CAST(? AS INTEGER[])");
	for (int p = SQL_JSON_WRITER; p <= SQL_JSON_BATCH; p++)
		sql_add(b, signature ? ", TEXT" : ", CAST(? AS TEXT)");
	sql_add(b, ")");
}

/* The function's body after its plain branch (no writer: in a
 * transaction, whose txid tells): the upsert, and in the same statement
 * the writer's marker row with the batch id and the created flags, a '1'
 * or '0' per row in key order, for the dialect's fence to answer when the
 * statement's own answer is lost.  The marker is refused once the fence
 * has given the writer up: then no row comes back, and the function fails
 * (a batch is never empty), which undoes the upsert. */
static void
build_json_marked(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d)
{
	char writer[8], batch[8];

	json_param(writer, true, SQL_JSON_WRITER);
	json_param(batch, true, SQL_JSON_BATCH);
	sql_add(b, "\tRETURN QUERY WITH u (k, c, t) AS (");
	build_json_upsert(b, sh, d, true);
	sql_add(b, "), m AS (INSERT INTO EventBatchCommit (Writer, Batch, Created, Written) "
		   "VALUES (");
	sql_add(b, writer);
	sql_add(b, ", ");
	sql_add(b, batch);
	sql_add(b, ", COALESCE((SELECT string_agg(CAST(c AS TEXT), '' ORDER BY k) FROM u), ''), "
		   "timezone('UTC', statement_timestamp())) ON CONFLICT (Writer) DO UPDATE SET "
		   "Batch = EXCLUDED.Batch, Created = EXCLUDED.Created, Written = EXCLUDED.Written "
		   "WHERE EventBatchCommit.Batch <> 'lost' RETURNING 1) SELECT k, c, t FROM u, "
		   "m;\n\tIF NOT FOUND THEN\n\t\tRAISE EXCEPTION 'events-batch: writer % was given "
		   "up after a lost answer', ");
	sql_add(b, writer);
	sql_add(b, ";\n\tEND IF;\n");
}

/* BULK_JSON_ROWS with json_function: the same upsert, through the
 * function; the same parameters and answer. */
static void
build_json_call(struct sqlbuf *b, struct stmt_shape *sh, const struct dialect *d)
{
	sql_add(b, "SELECT ");
	add_json_answer(b, d, false);
	sql_add(b, " FROM ");
	add_json_function(b, d, false);
	sh->nparams = SQL_JSON_BATCH;
}

static const char *
fixed_text(const struct dialect *d, int kind)
{
	switch (kind) {
	case ST_BEGIN: return d->begin;
	case ST_COMMIT: return d->commit;
	case ST_ROLLBACK: return d->rollback;
	case ST_SAVEPOINT: return d->savepoint;
	case ST_RELEASE: return d->release;
	case ST_ROLLBACK_TO: return d->rollback_to;
	case ST_MARK: return d->mark;
	case ST_OUTCOME: return d->outcome;
	case ST_FENCE: return d->fence;
	default: return NULL;
	}
}

/* Whether the dialect writes with statements of this kind at all. */
static bool
dialect_uses(const struct dialect *d, int kind)
{
	if (kind == ST_JSON_UPSERT)
		return d->bulk == BULK_JSON_ROWS;
	if (kind == ST_JSON_CALL)
		return d->bulk == BULK_JSON_ROWS && d->json_function != NULL;
	if (kind == ST_INSERT)
		return d->style == UPSERT_UPDATE_THEN_INSERT;
	if (kind >= ST_EXISTING)
		return d->bulk == BULK_EXISTING_THEN_UPSERT;
	return true;
}

char *
sqltext_build(const struct dialect *d, int kind, struct stmt_shape *shape)
{
	struct sqlbuf b = {NULL, 0, 0, false};
	const char *fixed;

	memset(shape, 0, sizeof(*shape));
	shape->rows = 1;
	if (kind < 0 || kind >= ST__COUNT || !dialect_uses(d, kind))
		return NULL;
	if (kind < ST_JSON_UPSERT) {
		fixed = fixed_text(d, kind);
		return fixed != NULL ? strdup(fixed) : NULL;
	}
	if (kind == ST_JSON_UPSERT)
		build_json_upsert(&b, shape, d, false);
	else if (kind == ST_JSON_CALL)
		build_json_call(&b, shape, d);
	else if (kind == ST_INSERT)
		build_insert(&b, shape, d, 1);
	else if (kind < ST_EXISTING)
		build_write(&b, shape, d, (unsigned)(kind - ST_WRITE));
	else if (kind < ST_BULK)
		build_existing(&b, shape, d, 1 << (kind - ST_EXISTING));
	else
		build_bulk(&b, shape, d, (unsigned)((kind - ST_BULK) / BULK_SIZES),
			   1 << ((kind - ST_BULK) % BULK_SIZES));
	if (b.overflow) {
		free(b.text);
		return NULL;
	}
	return b.text;
}

char *
sqltext_json_function(const struct dialect *d)
{
	struct sqlbuf b = {NULL, 0, 0, false};
	struct stmt_shape sh;
	char param[8];

	if (!dialect_uses(d, ST_JSON_CALL))
		return NULL;
	sql_add(&b, "CREATE OR REPLACE FUNCTION ");
	add_json_function(&b, d, true);
	sql_add(&b, "\nRETURNS TABLE (");
	add_json_answer(&b, d, true);
	sql_add(&b, ")\nLANGUAGE plpgsql AS $$\nBEGIN\n\tIF ");
	sql_add(&b, json_param(param, true, SQL_JSON_WRITER));
	sql_add(&b, " IS NULL THEN\n\t\tRETURN QUERY ");
	build_json_upsert(&b, &sh, d, true);
	sql_add(&b, ";\n\t\tRETURN;\n\tEND IF;\n");
	build_json_marked(&b, &sh, d);
	sql_add(&b, "END\n$$;\n");
	if (b.overflow) {
		free(b.text);
		return NULL;
	}
	return b.text;
}

char *
sqltext_schema_probe(void)
{
	struct sqlbuf b = {NULL, 0, 0, false};

	sql_add(&b, "SELECT ");
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		sql_add(&b, f ? ", " : "");
		sql_add(&b, event_fields[f].column);
	}
	sql_add(&b, " FROM Event WHERE 1 = 0");
	if (b.overflow) {
		free(b.text);
		return NULL;
	}
	return b.text;
}
