/*
 * error.h - the program's one error enum, and its HTTP face.
 *
 * Every request-level failure of SPEC §4 (and the few the SPEC leaves to us)
 * is one value here; error.c maps each to its HTTP status, reason phrase and
 * problem type in a single table.
 */
#ifndef EB_ERROR_H
#define EB_ERROR_H

enum eb_err {
	EB_OK = 0,
	EB_ERR_URI_TOO_LONG,       /* path longer than HTTP_PATH_MAX bytes */
	EB_ERR_NOT_FOUND,          /* path does not end in /events-batch */
	EB_ERR_METHOD,             /* not PUT */
	EB_ERR_HEALTH_METHOD,      /* the health path, not GET or HEAD */
	EB_ERR_USER_AGENT,         /* User-Agent missing or empty */
	EB_ERR_API_KEY,            /* x-api-key missing or unknown */
	EB_ERR_RATE_LIMITED,       /* that key is over its rate limit */
	EB_ERR_TOKEN_MISSING,      /* no bearer token */
	EB_ERR_TOKEN_INVALID,      /* bearer token present but not acceptable */
	EB_ERR_DATABASE_UNKNOWN,   /* vbasoftware-database missing or not configured */
	EB_ERR_DATABASE_FORBIDDEN, /* the token does not name that database */
	EB_ERR_MEDIA_TYPE,         /* content type is not JSON */
	EB_ERR_BODY_TOO_LARGE,     /* CONTENT_LENGTH, or the inflated body, over max_body_bytes */
	EB_ERR_ENCODING,           /* Content-Encoding not gzip, deflate or identity */
	EB_ERR_BAD_LENGTH,         /* CONTENT_LENGTH not a number, or body shorter */
	EB_ERR_BODY_INVALID,       /* empty, not UTF-8 JSON, not an array */
	EB_ERR_TOO_MANY_ITEMS,     /* more than max_batch_items */
	EB_ERR_DB_UNAVAILABLE,     /* cannot connect, or the batch could not commit */
	EB_ERR_INTERNAL,           /* out of memory, schema mismatch, bug */
	EB_ERR__COUNT
};

/* HTTP status code of err (200 for EB_OK). */
int eb_err_status(enum eb_err err);

/* Status line text, e.g. "404 Not Found". */
const char *eb_err_status_line(enum eb_err err);

/* Short human title of the problem, used as RFC 7807 "title". */
const char *eb_err_title(enum eb_err err);

/* RFC 7807 "type": a URN naming the problem, stable for clients to match on. */
const char *eb_err_type(enum eb_err err);

#endif
