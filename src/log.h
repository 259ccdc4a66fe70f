/*
 * log.h - one line per event on stderr, which the web server puts in its
 * error log.  Nothing secret is ever passed here: no API key, token,
 * password or connection string.
 */
#ifndef EB_LOG_H
#define EB_LOG_H

#include <stdbool.h>

/* The activity id that following lines carry, and where they go (sink
 * with its ctx; NULL: stderr). Both NULL outside a request. */
void log_set_request(const char *activity_id, void (*sink)(void *ctx, const char *line, bool last),
		     void *ctx);

/* "events-batch[PID]: [activity=ID ]message" */
__attribute__((format(printf, 1, 2))) void log_msg(const char *fmt, ...);

/* log_msg for a request's last line: the sink may close its log with it.
 * Nothing is logged for that request after it. */
__attribute__((format(printf, 1, 2))) void log_last(const char *fmt, ...);

#endif
