/*
 * log.c - stderr logging.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

/* The request each thread is serving. */
static _Thread_local const char *current_activity;
static _Thread_local void (*current_sink)(void *ctx, const char *line, bool last);
static _Thread_local void *current_ctx;

/* The process's id, asked once (a system call per line was one in eight
 * of a request's), and again in the child of a fork() */
static long pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void
remember_pid(void)
{
	pid = (long)getpid();
}

static void
watch_pid(void)
{
	remember_pid();
	pthread_atfork(NULL, NULL, remember_pid);
}

static long
own_pid(void)
{
	pthread_once(&pid_once, watch_pid);
	return pid;
}

void
log_set_request(const char *activity_id, void (*sink)(void *ctx, const char *line, bool last),
		void *ctx)
{
	current_activity = activity_id;
	current_sink = sink;
	current_ctx = ctx;
}

static void
log_line(bool last, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = snprintf(line, sizeof(line), "events-batch[%ld]: ", own_pid());
	if (current_activity != NULL)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "activity=%s ", current_activity);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (current_sink != NULL) {
		current_sink(current_ctx, line, last);
		return;
	}
	/* one write per line, so concurrent workers do not interleave */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void
log_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(false, fmt, ap);
	va_end(ap);
}

void
log_last(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(true, fmt, ap);
	va_end(ap);
}
