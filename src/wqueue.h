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

#define WQUEUE_NONE {-1, false}

/* Queue for the file at path (read-only open); false when it cannot be
 * opened, and then the queue is none. */
bool wqueue_open(struct wqueue *q, const char *path);

/*
 * Take the queue, waiting at most wait_ms; false when the wait ran out
 * (the writer then goes on to SQLite's own waiting).  It waits without
 * signals or timers: it tries again after a pause that grows from 50 us
 * to 1 ms, so a writer starts at most a millisecond after the queue is
 * free.
 */
bool wqueue_enter(struct wqueue *q, int wait_ms);

void wqueue_leave(struct wqueue *q);

void wqueue_close(struct wqueue *q);

#endif
