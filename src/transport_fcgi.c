/*
 * transport_fcgi.c - FastCGI: the request's params and streams.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "transport_fcgi.h"
#include "worker.h"

/* A hash of a param's name from its length and three of its bytes:
 * names differ there (HTTP_USER_AGENT, HTTP_X_API_KEY...), and hashing
 * every byte cost more than the lookups it saved.  Collisions only probe. */
static size_t
name_hash(const char *name, size_t len)
{
	const unsigned char *u = (const unsigned char *)name;

	if (len == 0)
		return 0;
	return (len * 2654435761u) ^ (u[len - 1] * 40503u) ^ (u[len / 2] * 977u) ^ u[len * 3 / 4];
}

/* The slot of name[0..len): its own, or the free one where it would go. */
static size_t
slot_of(const struct transport_fcgi *f, const char *name, size_t len)
{
	size_t i = name_hash(name, len) & (FCGI_PARAM_SLOTS - 1);

	while (f->slot[i].entry != NULL &&
	       (f->slot[i].name_len != len || memcmp(f->slot[i].entry, name, len) != 0))
		i = (i + 1) & (FCGI_PARAM_SLOTS - 1);
	return i;
}

/* One pass over the params: libfcgi's FCGX_GetParam compares a name with
 * each param in turn, and a request asks for a dozen (a tenth of the
 * instructions of a request that stores nothing).  The first of a name
 * counts, as with FCGX_GetParam. */
static void
index_params(struct transport_fcgi *f)
{
	size_t used = 0;

	memset(f->slot, 0, sizeof(f->slot));
	f->all_by_libfcgi = false;
	for (char **e = f->req->envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		size_t i;

		if (eq == NULL)
			continue;
		if (++used > FCGI_PARAM_SLOTS * 3 / 4) {
			f->all_by_libfcgi = true;
			return;
		}
		i = slot_of(f, *e, (size_t)(eq - *e));
		if (f->slot[i].entry == NULL) {
			f->slot[i].entry = *e;
			f->slot[i].name_len = (size_t)(eq - *e);
		}
	}
}

static const char *
fcgi_param(void *ctx, const char *name)
{
	struct transport_fcgi *f = ctx;
	size_t len, i;

	if (f->all_by_libfcgi)
		return FCGX_GetParam(name, f->req->envp);
	len = strlen(name);
	i = slot_of(f, name, len);
	return f->slot[i].entry == NULL ? NULL : f->slot[i].entry + len + 1;
}

static ssize_t
fcgi_read(void *ctx, char *buf, size_t len)
{
	FCGX_Request *req = ((struct transport_fcgi *)ctx)->req;
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
	FCGX_Request *req = ((struct transport_fcgi *)ctx)->req;
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
 * connection is gone, the process's stderr keeps the line.  The last line
 * closes the stream: libfcgi then writes the line and the stream's end in
 * one write, where a flush and FCGX_Finish_r's close would take two. */
static void
fcgi_log(void *ctx, const char *line, bool last)
{
	FCGX_Request *req = ((struct transport_fcgi *)ctx)->req;
	bool sent;

	worker_io(WORKER_IO_WRITE);
	sent = FCGX_GetError(req->err) == 0 && FCGX_PutS(line, req->err) >= 0 &&
	       FCGX_PutS("\n", req->err) >= 0 &&
	       (last ? FCGX_FClose(req->err) : FCGX_FFlush(req->err)) == 0;
	worker_io(WORKER_IO_NONE);
	if (sent)
		return;
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

void
transport_fcgi_init(struct eb_transport *t, struct transport_fcgi *f, FCGX_Request *req)
{
	f->req = req;
	index_params(f);
	t->param = fcgi_param;
	t->read = fcgi_read;
	t->write = fcgi_write;
	t->log = fcgi_log;
	t->ctx = f;
}
