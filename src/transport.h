/*
 * transport.h - what the handler needs from the outside world, and nothing
 * more: CGI/1.1 parameters, the request body, and a place for the response.
 * FastCGI (transport_fcgi.c), plain CGI (transport_cgi.c) and the tests each
 * implement it.
 */
#ifndef EB_TRANSPORT_H
#define EB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct eb_transport {
	/* A CGI/1.1 variable (REQUEST_METHOD, HTTP_X_API_KEY...) or NULL. */
	const char *(*param)(void *ctx, const char *name);
	/* Up to len body bytes: the count, 0 at the end, -1 on error. */
	ssize_t (*read)(void *ctx, char *buf, size_t len);
	/* Write the whole of buf; false when the client is gone. */
	bool (*write)(void *ctx, const char *buf, size_t len);
	/* Where the request's log lines go (FastCGI: its stderr stream, which
	 * the web server writes to its error log); NULL: the process's stderr.
	 * last: the request's last line, after which its log may be closed
	 * (FastCGI: the line and the stream's end go out in one record write). */
	void (*log)(void *ctx, const char *line, bool last);
	void *ctx;
};

/* Plain CGI: the environment, stdin and stdout. */
void transport_cgi_init(struct eb_transport *t);

#endif
