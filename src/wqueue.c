/*
 * wqueue.c - the writers' queue of an SQLite database file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "wqueue.h"

bool
wqueue_open(struct wqueue *q, const char *path)
{
	q->held = false;
	q->fd = open(path, O_RDONLY | O_CLOEXEC);
	return q->fd >= 0;
}

bool
wqueue_enter(struct wqueue *q)
{
	if (q->fd < 0 || q->held)
		return q->held;
	while (flock(q->fd, LOCK_EX) != 0)
		if (errno != EINTR)
			return false;
	return q->held = true;
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
