/*
 * worker.h - a FastCGI worker process: connections, threads, timeouts, stop.
 */
#ifndef EB_WORKER_H
#define EB_WORKER_H

#include <stdbool.h>

#include "conf.h"
#include "db.h"

/*
 * Serve FastCGI on listen_fd until SIGTERM or SIGUSR1, which the caller
 * has blocked in every thread (the worker reads them from a signalfd).
 * Returns the process's exit status.
 */
int worker_serve(int listen_fd, const struct eb_config *cfg, struct db_pool *pool);

/* What a serving thread is about to block in, for the deadlines of
 * read_timeout_seconds (SPEC §2); a no-op outside a serving thread. */
enum worker_io {
	WORKER_IO_NONE,
	WORKER_IO_READ,  /* the request's head or body: cut one second after a stop */
	WORKER_IO_WRITE, /* the response */
};
void worker_io(enum worker_io io);

#endif
