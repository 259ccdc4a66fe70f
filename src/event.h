/*
 * event.h - the Event record: its 25 fields described once, and the
 * validation of one JSON item into a row ready to store.
 *
 * Everything that needs to know the fields (validation, SQL text, parameter
 * binding, tests) walks event_fields[]; nothing lists them a second time.
 */
#ifndef EB_EVENT_H
#define EB_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "datetime.h"

enum event_type {
	FT_INT32,
	FT_BOOL,
	FT_DOUBLE,
	FT_STRING,
	FT_DATETIME,
};

enum event_flag {
	FF_REQUIRED = 1 << 0,     /* must be present */
	FF_NULLABLE = 1 << 1,     /* null is a value */
	FF_KEY = 1 << 2,          /* the primary key */
	FF_DEFAULT_NOW = 1 << 3,  /* absent: the request's "now" */
	FF_DEFAULT_USER = 1 << 4, /* absent: the token's user */
	FF_KEEP = 1 << 5,         /* absent on update: the stored value stays */
};

struct event_field {
	const char *json;   /* JSON member name */
	const char *column; /* SQL column name (unquoted) */
	enum event_type type;
	unsigned flags;
	unsigned max_chars; /* FT_STRING: limit in code points, 0 = none */
};

#define EVENT_NFIELDS 25
#define EVENT_KEY 0 /* index of event_ID in event_fields */

extern const struct event_field event_fields[EVENT_NFIELDS];

/* One field's value after validation. */
struct event_value {
	bool given; /* the item carried the member (defaults are not "given") */
	bool null;
	union {
		int32_t i;
		bool b;
		double d;
		struct {
			const char *ptr; /* points into the JSON item */
			size_t len;
		} s;
		struct eb_time t;
	} u;
};

struct event_row {
	struct event_value v[EVENT_NFIELDS];
};

/* The outcome of one item, as the 207 reports it. */
struct item_result {
	int32_t id;
	bool id_valid;
	short status; /* 201, 200, 400 or 500 */
	char *detail; /* malloc'd reason for 400/500, else NULL */
};

/* What the request supplies for defaults. */
struct event_defaults {
	struct eb_time now;
	const char *user; /* NULL: no user known, the default is NULL */
};

/* Room for every message an item can collect. */
#define EVENT_ERR_MAX 1024

/*
 * Validate one array element into *row, applying SPEC §5 defaults.
 * Returns true when the item can be stored.  On failure err holds every rule
 * broken, "field: rule" joined by "; ".  In either case *id_valid and *id tell
 * whether the item carries a valid event_ID, for the response.
 * row's strings point into item, which must outlive row.
 */
bool event_validate(const json_t *item, const struct event_defaults *defs, struct event_row *row,
		    int32_t *id, bool *id_valid, char err[EVENT_ERR_MAX]);

/* Fill the value of field f, absent from an item, from the request's
 * defaults (or NULL): not given; strings point into defs. */
void event_apply_default(const struct event_field *f, const struct event_defaults *defs,
			 struct event_value *v);

/* Index of the field with JSON name `name`, or -1. */
int event_field_index(const char *name);

/* The FF_KEEP fields, by index in event_fields[] (test-event.c checks the
 * two agree): an update that leaves one out keeps the stored value, so the
 * storage code writes a statement variant per set of them given. */
#define EVENT_NKEPT 2
extern const int event_kept[EVENT_NKEPT];

#endif
