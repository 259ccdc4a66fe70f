/*
 * transport_fcgi.c - FastCGI: the request's params and streams.
 */
#include "config.h"

#include <stdio.h>

#include "transport_fcgi.h"
#include "worker.h"

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
	/* What libfcgi holds already, else one byte, which costs it one read
	 * of the socket: so each call blocks in one read at most, and a body
	 * times out on silence, not on its speed (worker.c). */
	size_t held = (size_t)(req->in->stop - req->in->rdNext);
	int want = held == 0 ? 1 : held < len ? (int)held : (int)len;
	int n;

	worker_io(WORKER_IO_READ);
	n = FCGX_GetStr(buf, want, req->in);
	worker_io(WORKER_IO_NONE);
	if (n == 0 && FCGX_GetError(req->in) != 0)
		return -1;
	return n;
}

static bool
fcgi_write(void *ctx, const char *buf, size_t len)
{
	FCGX_Request *req = ctx;

	bool ok = true;

	/* and a response must be taken this fast */
	while (ok && len > 0) {
		int chunk = len > 65536 ? 65536 : (int)len;
		worker_io(WORKER_IO_WRITE);
		ok = FCGX_PutStr(buf, chunk, req->out) == chunk;
		worker_io(WORKER_IO_NONE);
		buf += chunk;
		len -= (size_t)chunk;
	}
	return ok;
}

/* A log line as FCGI_STDERR: Apache, lighttpd and nginx all write those
 * to their error log, which a worker's own stderr may not reach. When the
 * connection is gone, the process's stderr keeps the line. */
static void
fcgi_log(void *ctx, const char *line)
{
	FCGX_Request *req = ctx;
	bool sent;

	worker_io(WORKER_IO_WRITE);
	sent = FCGX_GetError(req->err) == 0 && FCGX_PutS(line, req->err) >= 0 &&
	       FCGX_PutS("\n", req->err) >= 0 && FCGX_FFlush(req->err) == 0;
	worker_io(WORKER_IO_NONE);
	if (sent)
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
