/*
 * worker.c - a FastCGI worker process: cfg->threads threads accept and
 * serve requests; the main thread takes the stop signals and keeps the
 * deadlines.
 *
 * A free thread waits (epoll) on the listening socket and on the idle
 * set: the connections that have nothing to read yet, one just accepted
 * before its first bytes, or one the web server keeps open between
 * requests (FCGI_KEEP_CONN). Those are registered one-shot in an epoll of
 * their own, so when one has bytes to read exactly one free thread takes
 * it. A silent connection costs a descriptor, never a thread; the worker
 * holds at most IDLE_MAX of them and closes the oldest for a new one. Only
 * free threads accept, so a busy worker leaves new connections to others.
 *
 * libfcgi reads a request with blocking reads. Each read or write of a
 * serving thread has a deadline, read_timeout_seconds ahead (for a
 * request's head: from the moment its connection was accepted or given
 * back; for the body and the response: from the last progress), and the
 * main thread shuts down a connection past it, which ends the blocked
 * call with an error: nothing of that request is written. Idle
 * connections past theirs are closed. After a stop signal a request still
 * arriving has STOP_GRACE_MS more to arrive whole; a request that has
 * arrived is served and committed; then the worker exits 0 (SPEC §2).
 *
 * A thread hands libfcgi a duplicate of the connection's descriptor, so
 * the number the main thread may shut down stays the thread's own until
 * the thread closes it, whatever libfcgi closes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "auth.h"
#include "handler.h"
#include "log.h"
#include "transport_fcgi.h"
#include "worker.h"

#define IDLE_MAX 256       /* silent connections held open */
#define TICK_MS 1000       /* how often the deadlines are looked at */
#define STOP_TICK_MS 50    /* ... after a stop signal */
#define STOP_GRACE_MS 1000 /* SPEC §2: a request still arriving at a stop */
#define DRAIN_MAX 65536    /* unread body a kept connection may skip */
#define ADDRS_MAX 64       /* FCGI_WEB_SERVER_ADDRS entries */
#define ACCEPT_WAIT_MS 5   /* for the first bytes of a new connection */

struct conn {
	int fd;
	int64_t deadline; /* ms on CLOCK_MONOTONIC: its request's head is due */
};

/* A serving thread, as the main thread watches it. */
struct slot {
	pthread_mutex_t mu;
	int fd;            /* the connection it serves, or -1 */
	enum worker_io io; /* the blocking call it is in, if any */
	int64_t deadline;  /* when that call is cut */
	bool cut;          /* the main thread shut the connection down */
	pthread_t thread;
	struct worker *w;
};

struct worker {
	const struct eb_config *cfg;
	struct db_pool *pool;
	int listen_fd;
	int idle_ep; /* the idle set, one-shot */
	int main_ep; /* the main thread's: sig_fd */
	int sig_fd;
	int stop_fd; /* an eventfd, readable once stopping */
	bool tcp;    /* TCP_NODELAY on accepted connections */
	int64_t timeout_ms;
	struct in_addr addrs[ADDRS_MAX]; /* FCGI_WEB_SERVER_ADDRS, as libfcgi */
	int n_addrs;                     /* -1: any client */
	struct slot slots[EB_THREADS_MAX];
	int n_slots;

	pthread_mutex_t mu; /* guards the rest */
	struct conn idle[IDLE_MAX];
	int n_idle;
	int live_threads;
	bool stopping;
};

static __thread struct slot *this_slot;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the idle set (w->mu held) ------------------------------------------ */

static void
idle_drop(struct worker *w, int i)
{
	epoll_ctl(w->idle_ep, EPOLL_CTL_DEL, w->idle[i].fd, NULL);
	close(w->idle[i].fd);
	w->idle[i] = w->idle[--w->n_idle];
}

/* Hold c until it has bytes to read; a full set loses its oldest. */
static void
idle_add(struct worker *w, struct conn c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.fd = c.fd};

	if (w->n_idle == IDLE_MAX) {
		int oldest = 0;
		for (int i = 1; i < w->n_idle; i++)
			if (w->idle[i].deadline < w->idle[oldest].deadline)
				oldest = i;
		idle_drop(w, oldest);
	}
	w->idle[w->n_idle++] = c;
	if (epoll_ctl(w->idle_ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
		log_msg("cannot watch a connection: %s", strerror(errno));
		close(c.fd);
		w->n_idle--;
	}
}

/* Take fd out of the idle set (one-shot: its event came to this thread
 * alone); false if the main thread closed it meanwhile. */
static bool
idle_take(struct worker *w, int fd, struct conn *c)
{
	bool found = false;

	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->n_idle; i++)
		if (w->idle[i].fd == fd) {
			*c = w->idle[i];
			epoll_ctl(w->idle_ep, EPOLL_CTL_DEL, fd, NULL);
			w->idle[i] = w->idle[--w->n_idle];
			found = true;
			break;
		}
	pthread_mutex_unlock(&w->mu);
	return found;
}

/* --- serving threads ----------------------------------------------------- */

void
worker_io(enum worker_io io)
{
	struct slot *s = this_slot;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->io = io;
	s->deadline = io == WORKER_IO_NONE ? 0 : now_ms() + s->w->timeout_ms;
	pthread_mutex_unlock(&s->mu);
}

static void
slot_set(struct slot *s, int fd, enum worker_io io, int64_t deadline)
{
	pthread_mutex_lock(&s->mu);
	s->fd = fd;
	s->io = io;
	s->deadline = deadline;
	s->cut = false;
	pthread_mutex_unlock(&s->mu);
}

static bool
slot_cut(struct slot *s)
{
	bool cut;

	pthread_mutex_lock(&s->mu);
	cut = s->cut;
	pthread_mutex_unlock(&s->mu);
	return cut;
}

/* Close the thread's connection where the main thread cannot be shutting
 * it down. */
static void
slot_close(struct slot *s)
{
	pthread_mutex_lock(&s->mu);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->io = WORKER_IO_NONE;
	pthread_mutex_unlock(&s->mu);
}

static bool
stopping(struct worker *w)
{
	bool stop;

	pthread_mutex_lock(&w->mu);
	stop = w->stopping;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* A connection with nothing to read yet joins the idle set; false when
 * the worker is stopping (the caller closes it). */
static bool
give_back(struct worker *w, struct conn c)
{
	bool kept = false;

	pthread_mutex_lock(&w->mu);
	if (!w->stopping) {
		idle_add(w, c);
		kept = true;
	}
	pthread_mutex_unlock(&w->mu);
	return kept;
}

/* FCGI_WEB_SERVER_ADDRS, which libfcgi honours when it accepts: a comma
 * separated list of the IPv4 addresses a TCP client may have. */
static bool
read_web_server_addrs(struct worker *w)
{
	const char *list = getenv("FCGI_WEB_SERVER_ADDRS");
	char buf[1024], *save = NULL;

	w->n_addrs = -1;
	if (list == NULL)
		return true;
	if (strlen(list) >= sizeof(buf)) {
		log_msg("FCGI_WEB_SERVER_ADDRS is too long");
		return false;
	}
	strcpy(buf, list);
	w->n_addrs = 0;
	for (char *a = strtok_r(buf, ", ", &save); a != NULL; a = strtok_r(NULL, ", ", &save)) {
		if (w->n_addrs == ADDRS_MAX || inet_pton(AF_INET, a, &w->addrs[w->n_addrs]) != 1) {
			log_msg("FCGI_WEB_SERVER_ADDRS: cannot use '%s'", a);
			return false;
		}
		w->n_addrs++;
	}
	return true;
}

static bool
client_allowed(const struct worker *w, const struct sockaddr_storage *sa)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

	if (w->n_addrs < 0 || sa->ss_family != AF_INET)
		return true;
	for (int i = 0; i < w->n_addrs; i++)
		if (w->addrs[i].s_addr == in->sin_addr.s_addr)
			return true;
	return false;
}

/* Accept a connection; true with *c when it has bytes to read already,
 * else it joins the idle set (or another worker took it). */
static bool
accept_one(struct worker *w, struct conn *c)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	struct pollfd p = {.events = POLLIN};
	int one = 1, n;

	c->fd = accept4(w->listen_fd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
	c->deadline = now_ms() + w->timeout_ms;
	if (c->fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/* out of descriptors: the oldest silent connection goes,
			 * else wait a little rather than spin on the backlog */
			pthread_mutex_lock(&w->mu);
			if (w->n_idle > 0)
				idle_drop(w, 0);
			pthread_mutex_unlock(&w->mu);
			poll(NULL, 0, 10);
		}
		return false; /* EAGAIN: another thread or worker took it */
	}
	if (!client_allowed(w, &sa)) {
		close(c->fd);
		return false;
	}
	if (w->tcp)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a web server writes its request right after connecting: wait for
	 * it a moment rather than pass the connection to the idle set */
	p.fd = c->fd;
	n = poll(&p, 1, ACCEPT_WAIT_MS);
	if (n == 1)
		return true; /* bytes, or the end: FCGX_Accept_r tells */
	if (!give_back(w, *c))
		close(c->fd);
	return false;
}

static void
watch_off(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
}

/*
 * The next connection with bytes to read, for a free thread: one it
 * accepts, or one of the idle set. False once the worker stops and the
 * idle set is empty (after a stop, idle connections have STOP_GRACE_MS
 * to bring their request; the thread no longer accepts).
 */
static bool
next_connection(struct worker *w, int ep, bool *stop_seen, struct conn *c)
{
	for (;;) {
		struct epoll_event ev[4];
		int n;

		if (*stop_seen) {
			bool done;
			pthread_mutex_lock(&w->mu);
			done = w->n_idle == 0;
			pthread_mutex_unlock(&w->mu);
			if (done)
				return false;
		}
		n = epoll_wait(ep, ev, 4, *stop_seen ? STOP_TICK_MS : -1);
		if (n < 0 && errno != EINTR) {
			log_msg("waiting for connections failed: %s", strerror(errno));
			return false;
		}
		for (int i = 0; i < n; i++) {
			struct epoll_event one;
			if (ev[i].data.fd == w->stop_fd && !*stop_seen) {
				*stop_seen = true;
				watch_off(ep, w->listen_fd);
				watch_off(ep, w->stop_fd);
			} else if (ev[i].data.fd == w->listen_fd && !*stop_seen) {
				if (accept_one(w, c))
					return true;
			} else if (ev[i].data.fd == w->idle_ep &&
				   epoll_wait(w->idle_ep, &one, 1, 0) == 1 &&
				   idle_take(w, one.data.fd, c)) {
				return true;
			}
		}
	}
}

/* Read what the handler left of the body, so that the next request on a
 * kept connection starts at a record of its own; false when that is more
 * than DRAIN_MAX or the stream failed (then the connection is closed). */
static bool
body_read_to_end(FCGX_Request *req)
{
	char sink[8192];
	long left = DRAIN_MAX;
	int n = 1;

	while (left > 0 && n > 0) {
		worker_io(WORKER_IO_READ);
		n = FCGX_GetStr(sink, sizeof(sink), req->in);
		worker_io(WORKER_IO_NONE);
		left -= n;
	}
	return FCGX_HasSeenEOF(req->in) == EOF && FCGX_GetError(req->in) == 0;
}

static bool
readable_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/*
 * Serve the requests of connection c, the thread's own now. libfcgi reads
 * a request from req->ipcFd when that is open: with keepConnection set
 * (FCGX_Finish_r at the top of FCGX_Accept_r then leaves it open), it
 * never accepts one itself; its listening socket is -1, so after a
 * connection that brings no request it returns an error instead.
 */
static void
serve_connection(struct worker *w, struct slot *s, FCGX_Request *req, struct conn c)
{
	slot_set(s, c.fd, WORKER_IO_READ, c.deadline);
	for (;;) {
		struct transport_fcgi f;
		struct eb_transport t;
		bool kept;

		req->ipcFd = fcntl(c.fd, F_DUPFD_CLOEXEC, 0);
		if (req->ipcFd < 0) {
			log_msg("cannot duplicate a connection: %s", strerror(errno));
			break;
		}
		req->keepConnection = 1;
		if (FCGX_Accept_r(req) != 0) { /* it closed its descriptor */
			if (slot_cut(s))
				log_msg("closed a connection that brought no complete request "
					"in %d s (read_timeout_seconds)",
					w->cfg->read_timeout_seconds);
			break;
		}
		worker_io(WORKER_IO_NONE);
		transport_fcgi_init(&t, &f, req);
		handler_serve(w->cfg, w->pool, &t);
		if (slot_cut(s))
			log_msg("closed a connection whose request stalled for %d s "
				"(read_timeout_seconds)",
				w->cfg->read_timeout_seconds);
		kept = req->keepConnection && !slot_cut(s) && body_read_to_end(req);
		req->keepConnection = kept;
		worker_io(WORKER_IO_WRITE);
		FCGX_Finish_r(req);
		worker_io(WORKER_IO_NONE);
		if (req->ipcFd < 0)
			break;
		close(req->ipcFd);
		req->ipcFd = -1;
		if (stopping(w))
			break;
		c.deadline = now_ms() + w->timeout_ms;
		if (!readable_now(c.fd)) {
			slot_set(s, -1, WORKER_IO_NONE, 0);
			if (!give_back(w, c))
				close(c.fd);
			return;
		}
		/* the next request is here already: serve it at once */
		slot_set(s, c.fd, WORKER_IO_READ, c.deadline);
	}
	slot_close(s);
}

static int
thread_epoll(struct worker *w)
{
	struct epoll_event listen_ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
					.data.fd = w->listen_fd};
	struct epoll_event idle_ev = {.events = EPOLLIN, .data.fd = w->idle_ep};
	struct epoll_event stop_ev = {.events = EPOLLIN, .data.fd = w->stop_fd};
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0 && (epoll_ctl(ep, EPOLL_CTL_ADD, w->listen_fd, &listen_ev) != 0 ||
			epoll_ctl(ep, EPOLL_CTL_ADD, w->idle_ep, &idle_ev) != 0 ||
			epoll_ctl(ep, EPOLL_CTL_ADD, w->stop_fd, &stop_ev) != 0)) {
		log_msg("cannot wait for connections: %s", strerror(errno));
		close(ep);
		return -1;
	}
	return ep;
}

static void *
serve_thread(void *arg)
{
	struct slot *s = arg;
	struct worker *w = s->w;
	FCGX_Request req;
	struct conn c;
	bool stop_seen = false;
	int ep = thread_epoll(w);

	this_slot = s;
	FCGX_InitRequest(&req, -1, 0);
	while (ep >= 0 && next_connection(w, ep, &stop_seen, &c))
		serve_connection(w, s, &req, c);
	FCGX_Free(&req, 1);
	if (ep >= 0)
		close(ep);
	auth_forget_tokens();
	pthread_mutex_lock(&w->mu);
	w->live_threads--;
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* --- the main thread --------------------------------------------------- */

/* The stop signal read from sig_fd, or 0. */
static int
read_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	if (read(w->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

static void
begin_stop(struct worker *w, int sig, int64_t now)
{
	uint64_t one = 1;

	log_msg("stop signal %s: finishing the requests in flight, then exiting",
		sig == SIGUSR1 ? "SIGUSR1" : "SIGTERM");
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	for (int i = 0; i < w->n_idle; i++)
		if (w->idle[i].deadline > now + STOP_GRACE_MS)
			w->idle[i].deadline = now + STOP_GRACE_MS;
	pthread_mutex_unlock(&w->mu);
	if (write(w->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_msg("cannot tell the threads to stop: %s", strerror(errno));
}

/* Close idle connections past their deadline; ms until the next one. */
static int64_t
expire_idle(struct worker *w, int64_t now)
{
	int64_t next = INT64_MAX;

	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->n_idle;) {
		if (w->idle[i].deadline <= now) {
			idle_drop(w, i);
			continue;
		}
		if (w->idle[i].deadline - now < next)
			next = w->idle[i].deadline - now;
		i++;
	}
	pthread_mutex_unlock(&w->mu);
	return next;
}

/* Shut down the connections whose thread is blocked past its deadline
 * (after a stop, a request still arriving has STOP_GRACE_MS); ms until
 * the next deadline. */
static int64_t
cut_overdue(struct worker *w, int64_t now, int64_t stop_at)
{
	int64_t next = INT64_MAX;

	for (int i = 0; i < w->n_slots; i++) {
		struct slot *s = &w->slots[i];
		pthread_mutex_lock(&s->mu);
		if (s->fd >= 0 && s->io != WORKER_IO_NONE && !s->cut) {
			int64_t due = s->deadline;
			if (stop_at >= 0 && s->io == WORKER_IO_READ &&
			    stop_at + STOP_GRACE_MS < due)
				due = stop_at + STOP_GRACE_MS;
			if (due <= now) {
				shutdown(s->fd, SHUT_RDWR);
				s->cut = true;
			} else if (due - now < next) {
				next = due - now;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	return next;
}

/* Until the stop signal and then until the last thread has ended: keep
 * the deadlines. The threads' own waits never need this thread. */
static void
main_loop(struct worker *w)
{
	int64_t stop_at = -1;

	for (;;) {
		struct epoll_event ev;
		int64_t now = now_ms(), wait = stop_at >= 0 ? STOP_TICK_MS : TICK_MS, t;
		bool done;
		int n;

		pthread_mutex_lock(&w->mu);
		done = w->live_threads == 0;
		pthread_mutex_unlock(&w->mu);
		if (done)
			return;
		if ((t = expire_idle(w, now)) < wait)
			wait = t;
		if ((t = cut_overdue(w, now, stop_at)) < wait)
			wait = t;
		n = epoll_wait(w->main_ep, &ev, 1, (int)wait);
		if (n < 0 && errno != EINTR) {
			log_msg("waiting for a signal failed: %s", strerror(errno));
			return;
		}
		if (n == 1) {
			int sig = read_signal(w);
			if (sig != 0 && stop_at < 0) { /* a second one changes nothing */
				stop_at = now_ms();
				begin_stop(w, sig, stop_at);
			}
		}
	}
}

static bool
worker_open(struct worker *w, int listen_fd)
{
	sigset_t stop;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	struct epoll_event sig_ev = {.events = EPOLLIN};
	int flags = fcntl(listen_fd, F_GETFL);

	w->listen_fd = listen_fd;
	w->idle_ep = w->main_ep = w->sig_fd = w->stop_fd = -1;
	if (getsockname(listen_fd, (struct sockaddr *)&sa, &len) == 0)
		w->tcp = sa.ss_family == AF_INET || sa.ss_family == AF_INET6;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	/* non-blocking: a connection another thread or worker took is EAGAIN */
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    (w->idle_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (w->main_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (w->sig_fd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (sig_ev.data.fd = w->sig_fd,
	     epoll_ctl(w->main_ep, EPOLL_CTL_ADD, w->sig_fd, &sig_ev) != 0)) {
		log_msg("cannot set up the FastCGI worker: %s", strerror(errno));
		return false;
	}
	return read_web_server_addrs(w);
}

static void
worker_close(struct worker *w)
{
	while (w->n_idle > 0)
		idle_drop(w, 0);
	for (int i = 0; i < w->n_slots; i++)
		pthread_mutex_destroy(&w->slots[i].mu);
	if (w->idle_ep >= 0)
		close(w->idle_ep);
	if (w->main_ep >= 0)
		close(w->main_ep);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	pthread_mutex_destroy(&w->mu);
}

int
worker_serve(int listen_fd, const struct eb_config *cfg, struct db_pool *pool)
{
	static struct worker w; /* large: not on the stack */
	uint64_t one = 1;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.pool = pool;
	w.timeout_ms = (int64_t)cfg->read_timeout_seconds * 1000;
	pthread_mutex_init(&w.mu, NULL);
	if (!worker_open(&w, listen_fd)) {
		worker_close(&w);
		return 1;
	}
	/* the threads start with the stop signals blocked, as this one has them */
	for (; w.n_slots < cfg->threads; w.n_slots++) {
		struct slot *s = &w.slots[w.n_slots];
		pthread_mutex_init(&s->mu, NULL);
		s->fd = -1;
		s->w = &w;
		w.live_threads++;
		if (pthread_create(&s->thread, NULL, serve_thread, s) != 0) {
			w.live_threads--;
			pthread_mutex_destroy(&s->mu);
			log_msg("cannot start a thread; serving with %d", w.n_slots);
			break;
		}
	}
	if (w.n_slots == 0)
		rc = 1;
	else
		main_loop(&w);
	/* the threads have ended, or the main loop failed: end them */
	pthread_mutex_lock(&w.mu);
	w.stopping = true;
	while (w.n_idle > 0)
		idle_drop(&w, 0);
	pthread_mutex_unlock(&w.mu);
	if (write(w.stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_msg("cannot tell the threads to stop: %s", strerror(errno));
	for (int i = 0; i < w.n_slots; i++)
		pthread_join(w.slots[i].thread, NULL);
	worker_close(&w);
	return rc;
}
