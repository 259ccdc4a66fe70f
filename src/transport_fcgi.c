/*
 * transport_fcgi.c - FastCGI: the request's params and streams.
 */
#include "config.h"

#include <stdio.h>

#include "transport_fcgi.h"

static const char *
fcgi_param(void *ctx, const char *name)
{
	FCGX_Request *req = ctx;

	return FCGX_GetParam(name, req->envp);
}

static ssize_t
fcgi_read(void *ctx, char *buf, size_t len)
{
	FCGX_Request *req = ctx;
	int want = len > (1 << 20) ? (1 << 20) : (int)len;
	int n = FCGX_GetStr(buf, want, req->in);

	if (n == 0 && FCGX_GetError(req->in) != 0)
		return -1;
	return n;
}

static bool
fcgi_write(void *ctx, const char *buf, size_t len)
{
	FCGX_Request *req = ctx;

	while (len > 0) {
		int chunk = len > (1 << 20) ? (1 << 20) : (int)len;
		if (FCGX_PutStr(buf, chunk, req->out) != chunk)
			return false;
		buf += chunk;
		len -= (size_t)chunk;
	}
	return true;
}

/* A log line as FCGI_STDERR: Apache, lighttpd and nginx all write those
 * to their error log, which a worker's own stderr may not reach. When the
 * connection is gone, the process's stderr keeps the line. */
static void
fcgi_log(void *ctx, const char *line)
{
	FCGX_Request *req = ctx;

	if (FCGX_GetError(req->err) == 0 && FCGX_PutS(line, req->err) >= 0 &&
	    FCGX_PutS("\n", req->err) >= 0 && FCGX_FFlush(req->err) == 0)
		return;
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void
transport_fcgi_init(struct eb_transport *t, FCGX_Request *req)
{
	t->param = fcgi_param;
	t->read = fcgi_read;
	t->write = fcgi_write;
	t->log = fcgi_log;
	t->ctx = req;
}
