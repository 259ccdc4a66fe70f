/*
 * resp.c - envelopes and CGI response headers.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "outbuf.h"
#include "resp.h"

/* Seconds a client should wait before retrying a 503. */
#define RETRY_AFTER_SECONDS "5"

/* The envelope of a 500 when memory ran out building the real one: made
 * without allocating, around the request's instance and activity id. */
static const char fallback_head[] =
	"{\"data\":null,\"error\":{\"type\":\"urn:events-batch:internal-error\","
	"\"title\":\"Internal Server Error\",\"status\":500,"
	"\"detail\":\"out of memory building the response\",\"instance\":";
static const char fallback_middle[] = "},\"debug\":{\"activityID\":";
static const char fallback_tail[] = "}}";

/* Headers, a blank line, then the body, in one write where possible. */
static bool
send(const struct eb_transport *t, const char *status_line, const char *extra, const char *more,
     const char *body, size_t len)
{
	char head[768];
	int n = snprintf(head, sizeof(head),
			 "Status: %s\r\n"
			 "Content-Type: application/json; charset=utf-8\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s%s\r\n",
			 status_line, len, extra, more != NULL ? more : "");

	if (n < 0 || (size_t)n >= sizeof(head))
		return false;
	return t->write(t->ctx, head, (size_t)n) && t->write(t->ctx, body, len);
}

/* Pieces of s that out_json_escape writes at a time: its room for them
 * is on the stack. */
#define ESCAPE_PIECE 256

/* s as a JSON string: its length, and when t is not NULL, written to t in
 * pieces (false when a write fails). */
static bool
json_string_pieces(const struct eb_transport *t, const char *s, size_t *len)
{
	char room[OUT_JSON_STRING_MAX(ESCAPE_PIECE)];
	size_t n = strlen(s);

	*len = 2;
	if (t != NULL && !t->write(t->ctx, "\"", 1))
		return false;
	for (size_t i = 0; i < n; i += ESCAPE_PIECE) {
		size_t piece = n - i < ESCAPE_PIECE ? n - i : ESCAPE_PIECE;
		/* without the quotes out_json_escape puts around each piece */
		size_t got = (size_t)(out_json_escape(room, s + i, piece) - room) - 2;
		*len += got;
		if (t != NULL && !t->write(t->ctx, room + 1, got))
			return false;
	}
	return t == NULL || t->write(t->ctx, "\"", 1);
}

/* The 500 envelope for when memory runs out, sent without allocating;
 * instance and activity are UTF-8 text. */
static bool
send_fallback(const struct eb_transport *t, const char *instance, const char *activity,
	      const char *more)
{
	char head[768];
	size_t inst_len, act_len;
	int n;

	json_string_pieces(NULL, instance, &inst_len);
	json_string_pieces(NULL, activity, &act_len);
	n = snprintf(head, sizeof(head),
		     "Status: 500 Internal Server Error\r\n"
		     "Content-Type: application/json; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: no-store\r\n"
		     "%s\r\n",
		     sizeof(fallback_head) - 1 + inst_len + sizeof(fallback_middle) - 1 + act_len +
			     sizeof(fallback_tail) - 1,
		     more != NULL ? more : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return false;
	return t->write(t->ctx, head, (size_t)n) &&
	       t->write(t->ctx, fallback_head, sizeof(fallback_head) - 1) &&
	       json_string_pieces(t, instance, &inst_len) &&
	       t->write(t->ctx, fallback_middle, sizeof(fallback_middle) - 1) &&
	       json_string_pieces(t, activity, &act_len) &&
	       t->write(t->ctx, fallback_tail, sizeof(fallback_tail) - 1);
}

static const char *
extra_headers(enum eb_err err, bool token_sent)
{
	switch (err) {
	case EB_ERR_METHOD: return "Allow: PUT\r\n";
	case EB_ERR_HEALTH_METHOD: return "Allow: GET, HEAD\r\n";
	case EB_ERR_API_KEY:
		/* RFC 9110 §15.5.2: every 401 carries a challenge; the key was
		 * wrong, so no token was judged and no error is named */
		return "WWW-Authenticate: Bearer realm=\"events-batch\"\r\n";
	case EB_ERR_TOKEN_MISSING:
	case EB_ERR_TOKEN_INVALID:
		return token_sent ? "WWW-Authenticate: Bearer realm=\"events-batch\", "
				    "error=\"invalid_token\"\r\n"
				  : "WWW-Authenticate: Bearer realm=\"events-batch\"\r\n";
	case EB_ERR_ENCODING: return "Accept-Encoding: gzip, deflate\r\n";
	case EB_ERR_DB_UNAVAILABLE: return "Retry-After: " RETRY_AFTER_SECONDS "\r\n";
	default: return "";
	}
}

int
resp_write_error(const struct eb_transport *t, enum eb_err err, const char *detail,
		 const char *instance, const char *activity, bool token_sent, const char *more)
{
	json_t *root = json_pack("{s:n, s:{s:s, s:s, s:i, s:s, s:s}, s:{s:s}}", "data", "error",
				 "type", eb_err_type(err), "title", eb_err_title(err), "status",
				 eb_err_status(err), "detail", detail ? detail : "", "instance",
				 instance, "debug", "activityID", activity);
	size_t len = root ? json_dumpb(root, NULL, 0, JSON_COMPACT) : 0;
	char *body = len ? malloc(len) : NULL;

	if (body == NULL || json_dumpb(root, body, len, JSON_COMPACT) != len) {
		free(body);
		json_decref(root);
		send_fallback(t, instance, activity, more);
		return 500;
	}
	json_decref(root);
	send(t, eb_err_status_line(err), extra_headers(err, token_sent), more, body, len);
	free(body);
	return eb_err_status(err);
}

static const char *
status_body(const struct item_result *r)
{
	if (r->detail != NULL)
		return r->detail;
	return r->status == 201 ? "Created" : r->status == 200 ? "Updated" : "Error";
}

/* The 207 body is written straight into one buffer: building a Jansson
 * tree per item and dumping it was an eighth of the program's instructions
 * on a large batch. */
static void
out_string(struct outbuf *o, const char *s)
{
	out_json_string(o, s, strlen(s));
}

char *
resp_multistatus_body(char *old, size_t old_len, const struct item_result *results, size_t n,
		      const char *activity, size_t *len)
{
	struct outbuf o = {old, 0, old_len, false};

	/* about 80 bytes an item: one allocation for a typical batch */
	if (old == NULL)
		out_reserve(&o, 128 + n * 80);
	OUT_LITERAL(&o, "{\"data\":[");
	for (size_t i = 0; i < n && !o.failed; i++) {
		const struct item_result *r = &results[i];
		if (i > 0)
			OUT_LITERAL(&o, ",");
		OUT_LITERAL(&o, "{\"id\":[{\"key\":\"event_ID\",\"value\":");
		if (r->id_valid)
			out_int(&o, r->id);
		else
			OUT_LITERAL(&o, "null");
		OUT_LITERAL(&o, "}],\"status\":");
		out_int(&o, r->status);
		OUT_LITERAL(&o, ",\"body\":");
		out_string(&o, status_body(r));
		OUT_LITERAL(&o, "}");
	}
	OUT_LITERAL(&o, "],\"error\":null,\"debug\":{\"activityID\":");
	out_string(&o, activity);
	OUT_LITERAL(&o, "}}");
	if (o.failed) {
		free(o.text);
		return NULL;
	}
	*len = o.len;
	return o.text;
}

bool
resp_send_multistatus(const struct eb_transport *t, const char *body, size_t len, bool dry_run,
		      const char *more)
{
	return send(t, "207 Multi-Status", dry_run ? "Preference-Applied: tx=rollback\r\n" : "",
		    more, body, len);
}

bool
resp_send_health(const struct eb_transport *t, bool head)
{
	static const char response[] = "Status: 200 OK\r\n"
				       "Content-Type: application/json; charset=utf-8\r\n"
				       "Content-Length: 15\r\n"
				       "Cache-Control: no-store\r\n"
				       "\r\n"
				       "{\"status\":\"ok\"}";
	size_t len = sizeof(response) - 1;

	/* HEAD: the same header fields, no content (RFC 9110 §9.3.2) */
	return t->write(t->ctx, response, head ? len - 15 : len);
}
