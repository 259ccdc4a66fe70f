/*
 * main.c - events-batch.fcgi: start-up, the three ways to run, signals.
 *
 *   spawned FastCGI  the web server hands over a listening socket on fd 0
 *   --listen ADDR    we open the socket ourselves (nginx fastcgi_pass)
 *   plain CGI        fd 0 is no socket: one request, then exit
 *
 * FastCGI: cfg->threads threads serve requests; SIGTERM and SIGUSR1 (what
 * mod_fcgid and spawn-fcgi send) reach only the main thread, which then lets
 * each thread finish and commit the request it has; the process exits 0.
 * Plain CGI blocks them while its one request runs, to the same end.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "auth.h"
#include "conf.h"
#include "db.h"
#include "handler.h"
#include "log.h"
#include "transport.h"
#include "transport_fcgi.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/events-batch.conf"
#define LISTEN_BACKLOG 128

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	stop_requested = sig;
	FCGX_ShutdownPending();
}

/* Handle SIGTERM/SIGUSR1 ourselves, blocked except while waiting for a
 * request; *waiting_mask is the mask to wait with. */
static void
setup_signals(sigset_t *waiting_mask)
{
	struct sigaction sa;
	sigset_t stop;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a wait must end with EINTR to stop; while a request
	 * runs the signals are blocked, so its I/O is never interrupted */
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	sigprocmask(SIG_BLOCK, &stop, waiting_mask);
	sigdelset(waiting_mask, SIGTERM);
	sigdelset(waiting_mask, SIGUSR1);
}

/* What the threads of a FastCGI worker share. */
struct server {
	int listen_fd;
	int wake_fd; /* an eventfd: readable once the worker is to stop */
	const struct eb_config *cfg;
	struct db_pool *pool;
};

/* A thread's wait: the listening socket with EPOLLEXCLUSIVE, so that a new
 * connection wakes one waiting thread (of this worker or another), not all
 * of them; and wake_fd, which wakes every one. -1 when it cannot be made. */
static int
waiter_new(const struct server *s)
{
	struct epoll_event listen_ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = s->listen_fd};
	struct epoll_event wake_ev = {.events = EPOLLIN, .data.fd = s->wake_fd};
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0 && (epoll_ctl(ep, EPOLL_CTL_ADD, s->listen_fd, &listen_ev) != 0 ||
			epoll_ctl(ep, EPOLL_CTL_ADD, s->wake_fd, &wake_ev) != 0)) {
		log_msg("cannot wait on the listening socket: %s", strerror(errno));
		close(ep);
		return -1;
	}
	return ep;
}

/* Wait until the listening socket has a connection; false to stop (the
 * main thread made wake_fd readable, for good). */
static bool
wait_for_connection(const struct server *s, int ep)
{
	struct epoll_event ev[2];

	for (;;) {
		int n = epoll_wait(ep, ev, 2, -1);
		for (int i = 0; i < n; i++)
			if (ev[i].data.fd == s->wake_fd)
				return false;
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR) {
			log_msg("waiting on the listening socket failed: %s", strerror(errno));
			return false;
		}
	}
}

/* One thread of a FastCGI worker: accept a request, serve it, again,
 * until the worker is to stop.  The listening socket is non-blocking, so
 * a connection another thread took, or one that brings no request, sends
 * this one back to waiting, where a stop always ends the wait. */
static void *
serve_thread(void *arg)
{
	const struct server *s = arg;
	FCGX_Request req;
	int ep = waiter_new(s);

	if (ep < 0)
		return NULL;
	if (FCGX_InitRequest(&req, s->listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg("cannot initialise a FastCGI request");
		close(ep);
		return NULL;
	}
	while (wait_for_connection(s, ep)) {
		struct eb_transport t;
		int rc = FCGX_Accept_r(&req);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK)
			continue; /* no connection (any more): wait again */
		if (rc < 0)
			break;
		transport_fcgi_init(&t, &req);
		handler_serve(s->cfg, s->pool, &t);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	close(ep);
	auth_forget_tokens();
	return NULL;
}

/*
 * FastCGI: cfg->threads threads serve requests from listen_fd, each one at
 * a time; the main thread waits for SIGTERM or SIGUSR1 and then wakes them.
 * A thread finishes the request it has, then ends; the worker exits once
 * all have.
 */
static int
serve_fastcgi(int listen_fd, const struct eb_config *cfg, struct db_pool *pool,
	      const sigset_t *waiting_mask)
{
	struct server s = {.listen_fd = listen_fd, .cfg = cfg, .pool = pool};
	pthread_t threads[EB_THREADS_MAX];
	int flags, started = 0, rc = 0;
	uint64_t one = 1;

	/* After a connection that brings no request, libfcgi goes back to
	 * accept(): with the listening socket non-blocking, that accept()
	 * fails with EAGAIN instead of waiting for the next connection, and
	 * the thread waits in poll() again. (Accepted sockets do not inherit
	 * O_NONBLOCK.) */
	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_msg("cannot make the listening socket non-blocking: %s", strerror(errno));
		return 1;
	}
	if ((s.wake_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		log_msg("cannot make an eventfd: %s", strerror(errno));
		return 1;
	}
	/* the threads start with the stop signals blocked (this thread's mask) */
	for (; started < cfg->threads; started++)
		if (pthread_create(&threads[started], NULL, serve_thread, &s) != 0) {
			log_msg("cannot start a thread; serving with %d", started);
			break;
		}
	if (started == 0)
		rc = 1;
	while (started > 0 && !stop_requested)
		sigsuspend(waiting_mask);
	if (started > 0)
		log_msg("stop signal %s: finishing the requests in flight, then exiting",
			stop_requested == SIGUSR1 ? "SIGUSR1" : "SIGTERM");
	if (write(s.wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_msg("cannot wake the threads: %s", strerror(errno));
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	close(s.wake_fd);
	return rc;
}

/*
 * Read what is left of a CGI body before exiting, when stdin is a socket.
 * Closing a socket with request bytes unread resets the connection, and
 * under Apache's mod_cgid that socket is also stdout: the reset cuts off a
 * response sent without reading the body (401, 405, 413). A pipe has no
 * such problem, so there the body stays unread. Bounded, so a huge
 * declared body costs at most this much.
 */
static void
drain_body(const struct eb_transport *t, long long max_body)
{
	char sink[65536];
	long long left = max_body + (1 << 20);
	struct stat st;
	ssize_t n;

	if (fstat(STDIN_FILENO, &st) != 0 || !S_ISSOCK(st.st_mode))
		return;
	while (left > 0 && (n = t->read(t->ctx, sink, sizeof(sink))) > 0)
		left -= n;
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: events-batch.fcgi [--config FILE] [--listen ADDR]\n"
		"  --config FILE  configuration (default: $EVENTS_BATCH_CONFIG, else %s)\n"
		"  --listen ADDR  serve FastCGI on HOST:PORT, :PORT or a socket path\n"
		"Without --listen: FastCGI when fd 0 is a listening socket, else plain CGI.\n",
		DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config_path = NULL, *listen_addr = NULL;
	struct eb_config cfg;
	struct db_pool *pool;
	char err[1024];
	sigset_t waiting_mask;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': puts(PACKAGE_STRING); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (config_path == NULL)
		config_path = getenv("EVENTS_BATCH_CONFIG");
	if (config_path == NULL || *config_path == '\0')
		config_path = DEFAULT_CONFIG;
	if (!eb_config_load(config_path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	util_json_alloc_init();
	if (FCGX_Init() != 0) {
		fprintf(stderr, "events-batch: cannot initialise libfcgi\n");
		return 1;
	}
	setup_signals(&waiting_mask);
	pool = db_pool_new(&cfg);
	if (pool == NULL) {
		eb_config_free(&cfg);
		return 1;
	}
	if (listen_addr != NULL) {
		int fd = FCGX_OpenSocket(listen_addr, LISTEN_BACKLOG);
		if (fd < 0) {
			fprintf(stderr, "events-batch: cannot listen on %s\n", listen_addr);
			rc = 1;
		} else {
			rc = serve_fastcgi(fd, &cfg, pool, &waiting_mask);
		}
	} else if (!FCGX_IsCGI()) {
		rc = serve_fastcgi(0, &cfg, pool, &waiting_mask);
	} else {
		struct eb_transport t;
		transport_cgi_init(&t);
		handler_serve(&cfg, pool, &t);
		drain_body(&t, cfg.max_body_bytes);
		rc = 0;
	}
	db_pool_free(pool);
	auth_forget_tokens();
	eb_config_free(&cfg);
	return rc;
}
