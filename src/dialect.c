/*
 * dialect.c - the dialect table.
 */
#include "config.h"

#include <string.h>

#include "dialect.h"

/* SQLSTATE classes that are never one item's fault, on any database. */
static const char *const common_fatal_states[] = {
	"08",  /* connection exception */
	"40",  /* transaction rollback: serialization failure, deadlock */
	"25",  /* invalid transaction state, read-only transaction */
	"53",  /* insufficient resources: disk full, out of memory */
	"57",  /* operator intervention: shutdown, cancel */
	"58",  /* system error: I/O */
	"HYT", /* timeout expired */
	NULL,
};

static const char *const sqlite_on_connect[] = {
	"PRAGMA journal_mode=WAL",
	"PRAGMA foreign_keys=OFF",
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

static const struct dialect dialects[] = {
	{
		.name = "sqlite",
		.dbms_prefix = "SQLite",
		.style = UPSERT_UPDATE_THEN_INSERT,
		.on_connect = sqlite_on_connect,
		/* IMMEDIATE takes the write lock up front, waiting out other
		 * writers with the busy timeout instead of failing later. */
		.begin = "BEGIN IMMEDIATE",
		.commit = "COMMIT",
		.rollback = "ROLLBACK",
		.savepoint = "SAVEPOINT eb_item",
		.release = "RELEASE SAVEPOINT eb_item",
		.rollback_to = "ROLLBACK TO SAVEPOINT eb_item",
		.fatal_sqlstates = common_fatal_states,
		.fatal_natives = sqlite_fatal_natives,
		.native_mask = 0xff,
	},
};

const struct dialect *
dialect_find(const char *dbms_name)
{
	for (size_t i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++)
		if (strncmp(dbms_name, dialects[i].dbms_prefix, strlen(dialects[i].dbms_prefix)) == 0)
			return &dialects[i];
	return NULL;
}

bool
dialect_error_is_fatal(const struct dialect *d, const char *sqlstate, long native)
{
	for (const char *const *s = d->fatal_sqlstates; *s; s++)
		if (strncmp(sqlstate, *s, strlen(*s)) == 0)
			return true;
	for (const int *n = d->fatal_natives; *n; n++)
		if ((native & d->native_mask) == *n)
			return true;
	return false;
}
