/*
 * transport_cgi.c - plain CGI: one request from the environment and stdin.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "transport.h"

static const char *
cgi_param(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static ssize_t
cgi_read(void *ctx, char *buf, size_t len)
{
	ssize_t n;

	(void)ctx;
	do
		n = read(STDIN_FILENO, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

static bool
cgi_write(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

void
transport_cgi_init(struct eb_transport *t)
{
	t->param = cgi_param;
	t->read = cgi_read;
	t->write = cgi_write;
	t->log = NULL; /* a CGI program's stderr is the server's error log */
	t->ctx = NULL;
}
