/*
 * transport_fcgi.h - FastCGI through libfcgi.
 */
#ifndef EB_TRANSPORT_FCGI_H
#define EB_TRANSPORT_FCGI_H

#include <fcgiapp.h>

#include "transport.h"

/* A transport over an accepted FastCGI request. */
void transport_fcgi_init(struct eb_transport *t, FCGX_Request *req);

#endif
