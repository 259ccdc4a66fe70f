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
 * challenge for EB_ERR_TOKEN_*.
 */
bool resp_write_error(const struct eb_transport *t, enum eb_err err, const char *detail,
		      const char *instance, const char *activity, bool token_sent);

/* 207 Multi-Status with one entry per item, in order. */
bool resp_write_multistatus(const struct eb_transport *t, const struct item_result *results,
			    size_t n, const char *activity);

#endif
