/*
 * wqueue.h - the writers' queue of an SQLite database file.
 *
 * SQLite has one write lock per database, and its ODBC driver waits for it
 * by sleeping 10 ms a try.  Workers of this program instead take an
 * exclusive flock on the database file before BEGIN IMMEDIATE and hold it
 * to the commit or rollback.  flock and SQLite's own (fcntl) locks do not
 * interact on a local file system; a writer that is not this program is
 * still waited for by SQLite itself.
 */
#ifndef EB_WQUEUE_H
#define EB_WQUEUE_H

#include <stdbool.h>

struct wqueue {
	int fd;    /* the database file; -1: no queue */
	bool held; /* this process holds it */
};

#define WQUEUE_NONE                                                                                \
	{                                                                                          \
		-1, false                                                                          \
	}

/* Queue for the file at path (read-only open); false when it cannot be
 * opened, and then the queue is none. */
bool wqueue_open(struct wqueue *q, const char *path);

/*
 * Take the queue, waiting as long as it takes: the kernel wakes the next
 * writer the moment the lock is free, in turn.  A holder is itself bounded
 * by SQLite's busy timeout (the driver's Timeout), since it holds the queue
 * only from BEGIN to the commit or rollback.  (Polling with LOCK_NB instead
 * let the worker that had just committed win again and again: SQLite batch
 * 100 p99 went from 40 to 97 ms.)  False when there is no queue.
 */
bool wqueue_enter(struct wqueue *q);

void wqueue_leave(struct wqueue *q);

void wqueue_close(struct wqueue *q);

#endif
