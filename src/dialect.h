/*
 * dialect.h - what differs between the databases, as data.
 *
 * The storage code (db.c) is written once; a dialect gives it the statement
 * texts it cannot derive from the field table, how to tell created from
 * updated, and which errors abort a whole batch rather than one item.
 */
#ifndef EB_DIALECT_H
#define EB_DIALECT_H

#include <stdbool.h>

enum upsert_style {
	/* UPDATE ... WHERE key; when no row matched, INSERT.  Safe where the
	 * transaction already holds the write lock (SQLite BEGIN IMMEDIATE). */
	UPSERT_UPDATE_THEN_INSERT,
};

struct dialect {
	const char *name;          /* for logs */
	const char *dbms_prefix;   /* SQL_DBMS_NAME starts with this */
	enum upsert_style style;
	const char *const *on_connect; /* statements run once per connection */
	const char *begin, *commit, *rollback;
	const char *savepoint, *release, *rollback_to;
	/* Errors that doom the whole batch (lock timeout, disk full, lost
	 * connection...): SQLSTATE class prefixes, and driver native codes. */
	const char *const *fatal_sqlstates;
	const int *fatal_natives;
	int native_mask; /* applied to the native code before matching */
};

/* The dialect whose dbms_prefix matches dbms_name, or NULL. */
const struct dialect *dialect_find(const char *dbms_name);

/* Whether an error with this SQLSTATE and native code aborts the batch. */
bool dialect_error_is_fatal(const struct dialect *d, const char *sqlstate, long native);

#endif
