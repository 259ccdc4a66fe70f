/*
 * resp.h - the VBAPI response envelope of SPEC §6, written to a transport.
 */
#ifndef EB_RESP_H
#define EB_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "event.h"
#include "transport.h"

/*
 * A request-level failure: {"data": null, "error": RFC 7807 problem,
 * "debug": {"activityID"}} with the status of err and the headers it calls
 * for (Allow, WWW-Authenticate, Retry-After).  token_sent picks the RFC 6750
 * challenge for EB_ERR_TOKEN_*.  more (NULL or CRLF-ended header lines:
 * the RateLimit-* ones) is sent too.  instance (the request path) and activity
 * must be UTF-8.  When memory runs out, a 500 envelope with the same
 * instance and activity is sent instead.  Returns the status sent.
 */
int resp_write_error(const struct eb_transport *t, enum eb_err err, const char *detail,
		     const char *instance, const char *activity, bool token_sent, const char *more);

/*
 * The 207 body, one entry per item in order: built before the batch commits,
 * so that running out of memory here still leaves nothing applied.
 * Returns a malloc'd body (length in *len), or NULL when memory runs out.
 * old (old_len bytes, or NULL) is a body made before for the same items,
 * written over: nothing is allocated when the new one is no longer (a 201
 * that became a 200), else old is grown or, when that fails, freed.
 */
char *resp_multistatus_body(char *old, size_t old_len, const struct item_result *results, size_t n,
			    const char *activity, size_t *len);

/* Send a body from resp_multistatus_body as 207 Multi-Status; dry_run adds
 * Preference-Applied: tx=rollback (SPEC §11), more the header lines more
 * (NULL or CRLF-ended). */
bool resp_send_multistatus(const struct eb_transport *t, const char *body, size_t len, bool dry_run,
			   const char *more);

/* The health answer of SPEC §12: 200 {"status":"ok"}, Cache-Control:
 * no-store, from a constant; head: the header fields alone. */
bool resp_send_health(const struct eb_transport *t, bool head);

#endif
