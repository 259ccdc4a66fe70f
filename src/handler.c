/*
 * handler.c - request -> auth -> parse and validate -> store -> respond.
 *
 * The checks run in the order of SPEC §4; the first that fails answers with
 * the error envelope and nothing is written.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "batch.h"
#include "error.h"
#include "event.h"
#include "handler.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "resp.h"
#include "util.h"

struct request {
	const struct eb_config *cfg;
	struct db_pool *pool;
	const struct eb_transport *t;
	char activity[UUID_TEXT_LEN + 1];
	/* 8 KiB, out of the struct: zeroing it was a sixth of the instructions
	 * of a request that stores nothing */
	char *path;     /* [HTTP_PATH_MAX + 1] as received: what is judged */
	char *instance; /* [HTTP_PATH_TEXT_MAX] the path as UTF-8 text, for the envelope */
	const char *method;
	const struct eb_database *db;
	struct auth_principal who;
	bool token_sent;
	struct rl_verdict rate;                   /* the key's bucket, once the key is known */
	char rate_headers[RATELIMIT_HEADERS_MAX]; /* RateLimit-* (and Retry-After) lines, or "" */
	char detail[512];
	struct batch batch; /* every item's result, the valid items' rows */
	char *response;     /* the 207 body, built before the commit */
	size_t response_len;
	bool no_memory; /* the response could not be built: rolled back */
	bool dry_run;   /* Prefer: tx=rollback (SPEC §11) */
	struct event_defaults defs;
};

static const char *
param(const struct request *r, const char *name)
{
	return r->t->param(r->t->ctx, name);
}

/* The path's length, then rows 1 to 7 of SPEC §4: who may do what, where. */
static enum eb_err
check_caller(struct request *r)
{
	const char *ua = param(r, "HTTP_USER_AGENT");
	const char *auth = param(r, "HTTP_AUTHORIZATION");
	const char *dbname = param(r, "HTTP_VBASOFTWARE_DATABASE");
	/* judged whole: a cut path could end in /events-batch when the
	 * whole one does not */
	bool whole = http_request_path(r->t, r->path);
	enum eb_err err;
	size_t key;

	http_path_text(r->path, r->instance);
	if (!whole)
		return snprintf(r->detail, sizeof(r->detail),
				"the request path is longer than %d bytes", HTTP_PATH_MAX),
		       EB_ERR_URI_TOO_LONG;
	if (http_path_is_health(r->path)) /* GET and HEAD were answered already */
		return snprintf(r->detail, sizeof(r->detail), "only GET and HEAD are allowed here"),
		       EB_ERR_HEALTH_METHOD;
	if (!http_path_matches(r->path))
		return snprintf(r->detail, sizeof(r->detail),
				"no such resource; use PUT .../events-batch"),
		       EB_ERR_NOT_FOUND;
	if (r->method == NULL || strcmp(r->method, "PUT") != 0)
		return snprintf(r->detail, sizeof(r->detail), "only PUT is allowed here"),
		       EB_ERR_METHOD;
	if (ua == NULL || *ua == '\0')
		return snprintf(r->detail, sizeof(r->detail), "a User-Agent header is required"),
		       EB_ERR_USER_AGENT;
	if (auth_api_key(r->cfg, param(r, "HTTP_X_API_KEY"), &key) != EB_OK)
		return snprintf(r->detail, sizeof(r->detail),
				"a valid x-api-key header is required"),
		       EB_ERR_API_KEY;
	if (r->cfg->rate_per_second > 0) {
		/* row 4a: every later answer carries the bucket's headers */
		ratelimit_check(r->cfg, key, &r->rate);
		ratelimit_headers(&r->rate, r->rate_headers);
		if (r->rate.limited && !r->rate.allowed)
			return snprintf(r->detail, sizeof(r->detail),
					"this API key is over its rate limit of %ld requests per "
					"second (burst %ld); retry after %ld s",
					r->cfg->rate_per_second, r->cfg->rate_burst,
					r->rate.retry_after),
			       EB_ERR_RATE_LIMITED;
	}
	err = auth_bearer(r->cfg, auth, time(NULL), &r->who, r->detail, sizeof(r->detail));
	r->token_sent = err != EB_ERR_TOKEN_MISSING;
	if (err != EB_OK)
		return err;
	if (dbname == NULL || *dbname == '\0')
		return snprintf(r->detail, sizeof(r->detail),
				"the vbasoftware-database header is required"),
		       EB_ERR_DATABASE_UNKNOWN;
	r->db = eb_config_database(r->cfg, dbname);
	if (r->db == NULL)
		return snprintf(r->detail, sizeof(r->detail),
				"vbasoftware-database names no configured database"),
		       EB_ERR_DATABASE_UNKNOWN;
	return auth_database(r->cfg, &r->who, r->db->name, r->detail, sizeof(r->detail));
}

/* Rows 8 to 11: the body is a JSON array of acceptable size; and each
 * item validated (SPEC §5), with the request's time and user for defaults. */
static enum eb_err
read_items(struct request *r)
{
	char *body;
	size_t len;
	enum eb_err err;

	if (!http_content_type_ok(param(r, "CONTENT_TYPE")))
		return snprintf(r->detail, sizeof(r->detail),
				"Content-Type must be application/json (charset utf-8)"),
		       EB_ERR_MEDIA_TYPE;
	err = http_read_body(r->t, r->cfg->max_body_bytes, &body, &len, r->detail,
			     sizeof(r->detail));
	if (err != EB_OK)
		return err;
	if (len == 0) {
		free(body);
		return snprintf(r->detail, sizeof(r->detail), "the body is empty"),
		       EB_ERR_BODY_INVALID;
	}
	eb_time_now(&r->defs.now);
	r->defs.user = r->who.user;
	err = batch_parse(body, len, r->cfg->max_batch_items, &r->defs, &r->batch, r->detail,
			  sizeof(r->detail));
	free(body);
	return err;
}

/* Forget every item's outcome: a failed batch reports none. */
static void
reset_results(struct request *r)
{
	for (size_t i = 0; r->batch.results != NULL && i < r->batch.n_items; i++) {
		free(r->batch.results[i].detail);
		memset(&r->batch.results[i], 0, sizeof(r->batch.results[i]));
	}
}

static enum eb_err
db_error(struct request *r, enum db_status st)
{
	if (st == DB_ABANDONED) {
		snprintf(r->detail, sizeof(r->detail), "out of memory%s; nothing was applied",
			 r->no_memory ? " building the response" : "");
		return EB_ERR_INTERNAL;
	}
	if (st == DB_FAILED) {
		snprintf(r->detail, sizeof(r->detail),
			 "the database rejected the batch; nothing was applied");
		return EB_ERR_INTERNAL;
	}
	if (st == DB_TOO_LARGE) {
		snprintf(r->detail, sizeof(r->detail),
			 "the batch is larger than the database takes in one transaction (MariaDB "
			 "Galera: wsrep_max_ws_size, wsrep_max_ws_rows); nothing was applied: send "
			 "it in smaller batches");
		return EB_ERR_TOO_MANY_ITEMS;
	}
	if (st == DB_IN_DOUBT) {
		snprintf(r->detail, sizeof(r->detail),
			 "the connection to the database was lost during the commit, and whether "
			 "the batch was applied cannot be known; re-sending it is safe (the same "
			 "batch gives the same rows)");
		return EB_ERR_DB_UNAVAILABLE;
	}
	snprintf(r->detail, sizeof(r->detail),
		 "the database is unavailable; nothing was applied, retry later");
	return EB_ERR_DB_UNAVAILABLE;
}

/* The 207 body, from every item's result; false when memory runs out.
 * Made again over the last one, which allocates nothing after a commit
 * (db_apply: only 201s become 200s). */
static bool
build_response(struct request *r)
{
	r->response = resp_multistatus_body(r->response, r->response_len, r->batch.results,
					    r->batch.n_items, r->activity, &r->response_len);
	r->no_memory = r->response == NULL;
	return !r->no_memory;
}

/* db_apply's last step before the commit: the answer must exist, or
 * nothing is applied. */
static bool
response_ready(void *ctx)
{
	return build_response(ctx);
}

/* Row 12 and §7: one transaction for the batch, committed before the 207. */
static enum eb_err
store_items(struct request *r)
{
	enum db_status st;

	/* nothing to store ([] or only invalid items): no database at all */
	if (r->batch.n_rows == 0)
		return build_response(r) ? EB_OK : db_error(r, DB_ABANDONED);
	st = db_apply(r->pool, r->db, &r->batch, r->dry_run, response_ready, r);
	if (st == DB_OK)
		return EB_OK;
	free(r->response);
	r->response = NULL;
	return db_error(r, st);
}

static void
log_request(const struct request *r, int status, double started)
{
	size_t created = 0, updated = 0, failed = 0;
	const char *method = r->method ? r->method : "-";
	/* in tenths, as integers: %.1f was a fifth of the line's formatting */
	long tenths = (long)((util_monotonic_ms() - started) * 10.0 + 0.5);

	for (size_t i = 0; r->batch.results != NULL && i < r->batch.n_items; i++) {
		created += r->batch.results[i].status == 201;
		updated += r->batch.results[i].status == 200;
		failed += r->batch.results[i].status >= 400;
	}
	/* the database name is logged only once known to be configured */
	log_last("method=%.16s db=%s items=%zu created=%zu updated=%zu failed=%zu status=%d "
		 "duration_ms=%ld.%ld%s",
		 strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(method) ? method : "?",
		 r->db ? r->db->name : "-", r->batch.n_items, created, updated, failed, status,
		 tenths / 10, tenths % 10, r->dry_run ? " dry_run=1" : "");
}

/* SPEC §12: GET or HEAD of the health path, answered from a constant
 * before anything else is looked at: no activity id, no key, no database,
 * and no log line (a load balancer asks every second). */
static bool
serve_health(struct request *r)
{
	bool head = r->method != NULL && strcmp(r->method, "HEAD") == 0;

	if (!head && (r->method == NULL || strcmp(r->method, "GET") != 0))
		return false;
	if (!http_request_path(r->t, r->path) || !http_path_is_health(r->path))
		return false;
	resp_send_health(r->t, head);
	return true;
}

int
handler_serve(const struct eb_config *cfg, struct db_pool *pool, const struct eb_transport *t)
{
	char path[HTTP_PATH_MAX + 1], instance[HTTP_PATH_TEXT_MAX]; /* not zeroed: see r.path */
	struct request r = {.cfg = cfg, .pool = pool, .t = t, .path = path, .instance = instance};
	double started = util_monotonic_ms();
	enum eb_err err;
	int status;

	path[0] = instance[0] = '\0';
	r.method = param(&r, "REQUEST_METHOD");
	if (serve_health(&r))
		return 200;
	util_uuid4(r.activity);
	log_set_request(r.activity, t->log, t->ctx);
	r.dry_run = http_prefer_rollback(param(&r, "HTTP_PREFER"));
	err = check_caller(&r);
	if (err == EB_OK)
		err = read_items(&r);
	if (err == EB_OK)
		err = store_items(&r);
	if (err == EB_OK) {
		status = 207;
		resp_send_multistatus(t, r.response, r.response_len, r.dry_run, r.rate_headers);
	} else {
		/* a failed batch reports no per-item outcome in the log either */
		reset_results(&r);
		status = resp_write_error(t, err, r.detail, r.instance, r.activity, r.token_sent,
					  r.rate_headers);
	}
	log_request(&r, status, started);
	log_set_request(NULL, NULL, NULL);
	batch_free(&r.batch);
	free(r.response);
	auth_principal_free(&r.who);
	return status;
}
