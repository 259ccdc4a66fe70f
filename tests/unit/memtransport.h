/*
 * memtransport.h - the transport interface over memory, so unit tests drive
 * the real request code without a web server.
 */
#ifndef EB_MEMTRANSPORT_H
#define EB_MEMTRANSPORT_H

#include <stdlib.h>
#include <string.h>

#include "transport.h"

struct memtransport {
	const char *const *params; /* NAME, value, NAME, value, ..., NULL */
	const char *body;
	size_t body_len, body_pos;
	size_t read_chunk; /* at most this many bytes per read, 0 = all */
	char *out;
	size_t out_len;
};

static const char *
mem_param(void *ctx, const char *name)
{
	struct memtransport *m = ctx;

	for (const char *const *p = m->params; p && *p; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static ssize_t
mem_read(void *ctx, char *buf, size_t len)
{
	struct memtransport *m = ctx;
	size_t left = m->body_len - m->body_pos;

	if (len > left)
		len = left;
	if (m->read_chunk && len > m->read_chunk)
		len = m->read_chunk;
	memcpy(buf, m->body + m->body_pos, len);
	m->body_pos += len;
	return (ssize_t)len;
}

static bool
mem_write(void *ctx, const char *buf, size_t len)
{
	struct memtransport *m = ctx;
	char *bigger = realloc(m->out, m->out_len + len + 1);

	if (bigger == NULL)
		return false;
	m->out = bigger;
	memcpy(m->out + m->out_len, buf, len);
	m->out_len += len;
	m->out[m->out_len] = '\0';
	return true;
}

static inline void
memtransport_init(struct eb_transport *t, struct memtransport *m, const char *const *params,
		  const char *body)
{
	memset(m, 0, sizeof(*m));
	m->params = params;
	m->body = body ? body : "";
	m->body_len = strlen(m->body);
	t->param = mem_param;
	t->read = mem_read;
	t->write = mem_write;
	t->log = NULL;
	t->ctx = m;
}

/* The body of the captured response (after the blank line). */
static inline const char *
memtransport_body(const struct memtransport *m)
{
	const char *p = m->out ? strstr(m->out, "\r\n\r\n") : NULL;

	return p ? p + 4 : NULL;
}

#endif
