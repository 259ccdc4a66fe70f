/*
 * main.c - events-batch.fcgi: start-up, the three ways to run, signals.
 *
 *   spawned FastCGI  the web server hands over a listening socket on fd 0
 *   --listen ADDR    we open the socket ourselves (nginx fastcgi_pass)
 *   plain CGI        fd 0 is no socket: one request, then exit
 *
 * SIGTERM and SIGUSR1 (what mod_fcgid and spawn-fcgi send) are blocked while
 * a request runs, so it finishes and commits; the process then exits 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	(void)sig;
	stop_requested = 1;
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
	/* no SA_RESTART: a blocking accept() must return EINTR to stop; while a
	 * request runs the signals are blocked, so its I/O is never interrupted */
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

/* Wait for a connection with the stop signals unblocked; false to stop. */
static bool
wait_for_connection(int listen_fd, const sigset_t *waiting_mask)
{
	struct pollfd pfd = {.fd = listen_fd, .events = POLLIN};

	while (!stop_requested) {
		int n = ppoll(&pfd, 1, NULL, waiting_mask);
		if (n > 0)
			return !stop_requested;
		if (n < 0 && errno != EINTR) {
			log_msg("poll on the listening socket failed: %s", strerror(errno));
			return false;
		}
	}
	return false;
}

static int
serve_fastcgi(int listen_fd, const struct eb_config *cfg, struct db_pool *pool,
	      const sigset_t *waiting_mask)
{
	FCGX_Request req;
	int flags;

	/* FAIL_ACCEPT_ON_INTR: libfcgi's accept loop gives up when a stop signal
	 * interrupts it, instead of waiting for the next connection */
	if (FCGX_InitRequest(&req, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg("cannot initialise a FastCGI request");
		return 1;
	}
	/* After a connection that brings no request, libfcgi goes back to
	 * accept() and looks for a stop only just before it: a stop signal that
	 * lands in between would wait for the next connection. With the
	 * listening socket non-blocking, that accept() fails with EAGAIN
	 * instead, and we wait in ppoll() again, where a stop always ends the
	 * wait. (Accepted sockets do not inherit O_NONBLOCK.) */
	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		log_msg("cannot make the listening socket non-blocking: %s", strerror(errno));
		FCGX_Free(&req, 1);
		return 1;
	}
	while (wait_for_connection(listen_fd, waiting_mask)) {
		struct eb_transport t;
		sigset_t blocked;
		int rc;

		/* libfcgi may accept a connection that brings no request and
		 * block in accept() again: let a stop signal interrupt that */
		sigprocmask(SIG_SETMASK, waiting_mask, &blocked);
		rc = FCGX_Accept_r(&req);
		sigprocmask(SIG_SETMASK, &blocked, NULL);
		if (rc == -EAGAIN || rc == -EWOULDBLOCK)
			continue; /* no connection (any more): wait again */
		if (rc < 0)
			break;
		transport_fcgi_init(&t, &req);
		handler_serve(cfg, pool, &t);
		FCGX_Finish_r(&req);
	}
	FCGX_Free(&req, 1);
	return 0;
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
