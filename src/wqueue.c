/*
 * wqueue.c - the writers' queue of an SQLite database file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "wqueue.h"

bool
wqueue_open(struct wqueue *q, const char *path)
{
	q->held = false;
	q->fd = open(path, O_RDONLY | O_CLOEXEC);
	return q->fd >= 0;
}

bool
wqueue_enter(struct wqueue *q, int wait_ms)
{
	double deadline = util_monotonic_ms() + wait_ms;
	long pause_ns = 50 * 1000;

	if (q->fd < 0 || q->held)
		return q->held;
	for (;;) {
		struct timespec ts = {0, pause_ns};
		if (flock(q->fd, LOCK_EX | LOCK_NB) == 0)
			return q->held = true;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return false;
		if (util_monotonic_ms() >= deadline)
			return false;
		nanosleep(&ts, NULL);
		pause_ns = pause_ns * 2 < 1000 * 1000 ? pause_ns * 2 : 1000 * 1000;
	}
}

void
wqueue_leave(struct wqueue *q)
{
	if (q->held)
		flock(q->fd, LOCK_UN);
	q->held = false;
}

void
wqueue_close(struct wqueue *q)
{
	wqueue_leave(q);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}
