/*
 * http.h - the HTTP-level checks of SPEC §4 that need no configuration
 * beyond limits: path, content type, and reading the body.
 */
#ifndef EB_HTTP_H
#define EB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "transport.h"

/* Longest request path served, in bytes: a longer one is 414. */
#define HTTP_PATH_MAX 2048

/*
 * The request path: SCRIPT_NAME + PATH_INFO, or REQUEST_URI without its query
 * when both are empty, NUL-terminated in out.  False when it is longer than
 * HTTP_PATH_MAX bytes: out then holds its first HTTP_PATH_MAX bytes.
 */
bool http_request_path(const struct eb_transport *t, char out[HTTP_PATH_MAX + 1]);

/* Room for http_path_text: every byte of a path may become 3. */
#define HTTP_PATH_TEXT_MAX (3 * HTTP_PATH_MAX + 1)

/*
 * A path from http_request_path as UTF-8 text for a response ("instance"):
 * the path itself when it is UTF-8, else each ill-formed part (as Unicode
 * §3.9 delimits it) replaced by U+FFFD.  The bytes that are judged stay the
 * path's own.
 */
void http_path_text(const char *path, char out[HTTP_PATH_TEXT_MAX]);

/* Whether path ends in "/events-batch", with one optional trailing '/'. */
bool http_path_matches(const char *path);

/* Whether path ends in "/events-batch/health", with one optional trailing
 * '/': the health path of SPEC §12. */
bool http_path_is_health(const char *path);

/*
 * Whether a Prefer header (RFC 7240) asks for a dry run: its first "tx"
 * preference is "rollback".  Preferences are separated by commas, names
 * and these values are case-insensitive, a value may be a token or a
 * quoted string, parameters after ';' are skipped, and anything not
 * understood is ignored (RFC 7240 §2).  NULL: no.
 */
bool http_prefer_rollback(const char *prefer);

/*
 * Whether a Content-Type names JSON: application/json, text/json or
 * application/ANYTHING+json, with no charset or charset=utf-8.
 */
bool http_content_type_ok(const char *content_type);

/* A request's content coding (SPEC §10). */
enum http_coding {
	HTTP_CODING_IDENTITY,   /* none, or only "identity" */
	HTTP_CODING_GZIP,       /* gzip (RFC 1952), or x-gzip */
	HTTP_CODING_DEFLATE,    /* deflate: the zlib format (RFC 1950, RFC 9110 §8.4.1.2) */
	HTTP_CODING_UNSUPPORTED /* anything else, or two codings stacked */
};

/*
 * The coding a Content-Encoding value names: a comma-separated list of
 * case-insensitive names, where "identity" and empty elements count for
 * nothing.  More than one other coding (gzip, gzip) is unsupported.  NULL:
 * identity.
 */
enum http_coding http_content_coding(const char *content_encoding);

/*
 * Read the body.  With CONTENT_LENGTH: over max (however many digits it
 * has) is EB_ERR_BODY_TOO_LARGE before anything is read; a value that is
 * not all digits, or a body shorter than it, is EB_ERR_BAD_LENGTH.
 * Without: read to the end, and over max is EB_ERR_BODY_TOO_LARGE.  *body
 * is NUL-terminated, malloc'd; the caller frees it.  detail receives a
 * sentence for the client.
 *
 * After the CONTENT_LENGTH check, HTTP_CONTENT_ENCODING: a coding that
 * http_content_coding does not support is EB_ERR_ENCODING, unread.  A gzip
 * or deflate body is inflated as it is read, 16 KiB of compressed bytes at
 * a time, and max counts the inflated bytes: EB_ERR_BODY_TOO_LARGE as soon
 * as they pass it.  One that does not inflate (not that format, corrupt,
 * truncated, data after its end) is EB_ERR_BODY_INVALID; gzip members one
 * after another are one body, as gunzip reads them.  An empty compressed
 * body is an empty body.
 */
enum eb_err http_read_body(const struct eb_transport *t, long long max, char **body, size_t *len,
			   char *detail, size_t detail_len);

#endif
