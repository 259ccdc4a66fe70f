/*
 * rowjson.h - validated rows as JSON text, for databases that take a whole
 * run of rows as one parameter (PostgreSQL's json_to_recordset).
 *
 * The rows' values are already converted (date-times in UTC, defaults
 * applied), so the text holds exactly what is stored: field f is the member
 * "c<f>", a NULL value is left out, a date-time is "YYYY-MM-DD HH:MM:SS.SSS".
 */
#ifndef EB_ROWJSON_H
#define EB_ROWJSON_H

#include <stddef.h>

#include "event.h"
#include "outbuf.h"

/* The alias of field f in the text and in the statement: "c<f>". */
#define ROWJSON_NAME_MAX 4
void rowjson_name(int f, char out[ROWJSON_NAME_MAX]);

/* Append rows[0..n) to o as a JSON array of objects. */
void rowjson_rows(struct outbuf *o, const struct event_row *rows, size_t n);

/* Append, as an SQL array literal "{1,2}", the keys of the rows of
 * rows[0..n) that did not give field f. */
void rowjson_absent_keys(struct outbuf *o, const struct event_row *rows, size_t n, int f);

#endif
