/*
 * transport_fcgi.h - FastCGI through libfcgi.
 */
#ifndef EB_TRANSPORT_FCGI_H
#define EB_TRANSPORT_FCGI_H

#include <fcgiapp.h>

#include "transport.h"

/* Room for the request's params, looked up by name (up to three quarters
 * full; a request with more params than that is looked up by libfcgi). */
#define FCGI_PARAM_SLOTS 128

/* A FastCGI request as the transport holds it: the request, and its
 * params by name, found in one pass over them. */
struct transport_fcgi {
	FCGX_Request *req;
	bool all_by_libfcgi; /* too many params for the slots */
	struct {
		const char *entry; /* "NAME=value"; NULL: a free slot */
		size_t name_len;
	} slot[FCGI_PARAM_SLOTS];
};

/* A transport over an accepted FastCGI request; f holds what it needs and
 * lives as long as t is used. */
void transport_fcgi_init(struct eb_transport *t, struct transport_fcgi *f, FCGX_Request *req);

#endif
