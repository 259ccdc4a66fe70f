/*
 * log.c - stderr logging.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

/* The request each thread is serving. */
static _Thread_local const char *current_activity;
static _Thread_local void (*current_sink)(void *ctx, const char *line);
static _Thread_local void *current_ctx;

void
log_set_request(const char *activity_id, void (*sink)(void *ctx, const char *line), void *ctx)
{
	current_activity = activity_id;
	current_sink = sink;
	current_ctx = ctx;
}

void
log_msg(const char *fmt, ...)
{
	char line[2048];
	int n;
	va_list ap;

	n = snprintf(line, sizeof(line), "events-batch[%ld]: ", (long)getpid());
	if (current_activity != NULL)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "activity=%s ", current_activity);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (current_sink != NULL) {
		current_sink(current_ctx, line);
		return;
	}
	/* one write per line, so concurrent workers do not interleave */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}
