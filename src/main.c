/*
 * main.c - events-batch.fcgi: start-up, the three ways to run, signals.
 *
 *   spawned FastCGI  the web server hands over a listening socket on fd 0
 *   --listen ADDR    we open the socket ourselves (nginx fastcgi_pass)
 *   plain CGI        fd 0 is no socket: one request, then exit
 *
 * FastCGI (worker.c): cfg->threads threads serve requests; on SIGTERM or
 * SIGUSR1 (what mod_fcgid and spawn-fcgi send) each finishes and commits the
 * request it has, and the process exits 0. Plain CGI blocks them while its
 * one request runs, to the same end.
 */
#include "config.h"

#include <getopt.h>
#include <pthread.h>
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
#include "ratelimit.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/events-batch.conf"
#define LISTEN_BACKLOG 128

/* SIGTERM and SIGUSR1 stay blocked in every thread: a FastCGI worker reads
 * them from a signalfd (worker.c); plain CGI finishes its one request and
 * exits, which discards them. Their disposition is the default, never
 * ignored, since an ignored signal is never queued for the signalfd. */
static void
setup_signals(void)
{
	struct sigaction sa;
	sigset_t stop;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
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
	setup_signals();
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
			rc = worker_serve(fd, &cfg, pool);
		}
	} else if (!FCGX_IsCGI()) {
		rc = worker_serve(0, &cfg, pool);
	} else {
		struct eb_transport t;
		transport_cgi_init(&t);
		handler_serve(&cfg, pool, &t);
		drain_body(&t, cfg.max_body_bytes);
		rc = 0;
	}
	db_pool_free(pool);
	auth_forget_tokens();
	ratelimit_close();
	eb_config_free(&cfg);
	return rc;
}
