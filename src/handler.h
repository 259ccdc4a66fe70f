/*
 * handler.h - one request, start to finish, over any transport.
 */
#ifndef EB_HANDLER_H
#define EB_HANDLER_H

#include "conf.h"
#include "db.h"
#include "transport.h"

/*
 * Serve the request on t: every check of SPEC §4 in order, then the batch,
 * then the response, then one log line.  Returns the HTTP status sent.
 */
int handler_serve(const struct eb_config *cfg, struct db_pool *pool, const struct eb_transport *t);

#endif
