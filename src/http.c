/*
 * http.c - request path, media type and body.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

static const char *
param_or_empty(const struct eb_transport *t, const char *name)
{
	const char *v = t->param(t->ctx, name);

	return v != NULL ? v : "";
}

/* Append s to out[*n..HTTP_PATH_MAX), counting in *n every byte it has,
 * copied or not. */
static void
path_add(char out[HTTP_PATH_MAX + 1], size_t *n, const char *s, size_t len)
{
	if (*n < HTTP_PATH_MAX)
		memcpy(out + *n, s, len < HTTP_PATH_MAX - *n ? len : HTTP_PATH_MAX - *n);
	*n += len;
}

bool
http_request_path(const struct eb_transport *t, char out[HTTP_PATH_MAX + 1])
{
	const char *script = param_or_empty(t, "SCRIPT_NAME");
	const char *info = param_or_empty(t, "PATH_INFO");
	const char *uri;
	size_t n = 0;

	if (*script != '\0' || *info != '\0') {
		path_add(out, &n, script, strlen(script));
		path_add(out, &n, info, strlen(info));
	} else {
		uri = param_or_empty(t, "REQUEST_URI");
		path_add(out, &n, uri, strcspn(uri, "?"));
	}
	out[n < HTTP_PATH_MAX ? n : HTTP_PATH_MAX] = '\0';
	return n <= HTTP_PATH_MAX;
}

/* Length of the well-formed UTF-8 sequence at p (a byte >= 0x80), or of
 * the maximal subpart of an ill-formed one (at least 1) as a negative
 * number: Unicode §3.9's "U+FFFD substitution of maximal subparts", which
 * Python, browsers and the WHATWG encoding standard follow too. */
static long
utf8_at(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xBF;
	long n, i;

	if (*p >= 0xC2 && *p <= 0xDF)
		n = 2;
	else if (*p >= 0xE0 && *p <= 0xEF)
		n = 3, lo = *p == 0xE0 ? 0xA0 : 0x80, hi = *p == 0xED ? 0x9F : 0xBF;
	else if (*p >= 0xF0 && *p <= 0xF4)
		n = 4, lo = *p == 0xF0 ? 0x90 : 0x80, hi = *p == 0xF4 ? 0x8F : 0xBF;
	else
		return -1;
	for (i = 1; i < n; i++, lo = 0x80, hi = 0xBF)
		if (p[i] < lo || p[i] > hi) /* the NUL at the end stops it too */
			return -i;
	return n;
}

void
http_path_text(const char *path, char out[HTTP_PATH_TEXT_MAX])
{
	const unsigned char *p = (const unsigned char *)path;
	char *o = out;

	while (*p != '\0') {
		long n = *p < 0x80 ? 1 : utf8_at(p);
		if (n > 0) {
			memcpy(o, p, (size_t)n);
			o += n, p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3, p += -n;
		}
	}
	*o = '\0';
}

/* Whether path ends in suffix (of s bytes), with one optional trailing '/'. */
static bool
path_ends_in(const char *path, const char *suffix, size_t s)
{
	size_t n = strlen(path);

	if (n > 0 && path[n - 1] == '/')
		n--;
	return n >= s && memcmp(path + n - s, suffix, s) == 0;
}

bool
http_path_matches(const char *path)
{
	static const char suffix[] = "/events-batch";

	return path_ends_in(path, suffix, sizeof(suffix) - 1);
}

bool
http_path_is_health(const char *path)
{
	static const char suffix[] = "/events-batch/health";

	return path_ends_in(path, suffix, sizeof(suffix) - 1);
}

/* Skip spaces and tabs. */
static const char *
skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static bool
media_type_is_json(const char *type, size_t len)
{
	static const char suffix[] = "+json";
	size_t s = sizeof(suffix) - 1;

	if ((len == 16 && strncasecmp(type, "application/json", len) == 0) ||
	    (len == 9 && strncasecmp(type, "text/json", len) == 0))
		return true;
	return len > 12 + s && strncasecmp(type, "application/", 12) == 0 &&
	       strncasecmp(type + len - s, suffix, s) == 0;
}

/* Parameters after the media type: only a charset other than UTF-8 fails. */
static bool
params_ok(const char *p)
{
	while (*p == ';') {
		const char *name = skip_ows(p + 1), *val, *end;
		size_t name_len = strcspn(name, "=; \t"), val_len;

		val = skip_ows(name + name_len);
		if (*val != '=') {
			p = val + strcspn(val, ";");
			continue;
		}
		val = skip_ows(val + 1);
		if (*val == '"') {
			val++;
			end = strchr(val, '"');
			if (end == NULL)
				return false;
			val_len = (size_t)(end - val);
			end++;
		} else {
			val_len = strcspn(val, "; \t");
			end = val + val_len;
		}
		if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    !(val_len == 5 && strncasecmp(val, "utf-8", 5) == 0))
			return false;
		p = skip_ows(end);
		if (*p != ';' && *p != '\0')
			return false;
	}
	return *p == '\0';
}

bool
http_content_type_ok(const char *content_type)
{
	const char *p, *type;
	size_t len;

	if (content_type == NULL)
		return false;
	type = skip_ows(content_type);
	len = strcspn(type, "; \t");
	if (!media_type_is_json(type, len))
		return false;
	p = skip_ows(type + len);
	return params_ok(p);
}

/* RFC 9110 tchar: the bytes of a token. */
static size_t
token_len(const char *p)
{
	static const char other[] = "!#$%&'*+-.^_`|~";
	size_t n = 0;

	while (p[n] != '\0' && (isalnum((unsigned char)p[n]) || strchr(other, p[n]) != NULL))
		n++;
	return n;
}

/* A word (token or quoted-string) at p: *val and *val_len its text
 * (quotes kept out, escapes left in); returns where it ends. */
static const char *
prefer_word(const char *p, const char **val, size_t *val_len)
{
	if (*p != '"') {
		*val = p;
		*val_len = token_len(p);
		return p + *val_len;
	}
	*val = ++p;
	while (*p != '\0' && *p != '"')
		p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
	*val_len = (size_t)(p - *val);
	return *p == '"' ? p + 1 : p;
}

/* Skip to the end of this preference: its parameters and anything not
 * understood, up to the comma that is outside a quoted string. */
static const char *
prefer_skip(const char *p)
{
	while (*p != '\0' && *p != ',') {
		if (*p == '"') {
			const char *v;
			size_t n;
			p = prefer_word(p, &v, &n);
		} else {
			p++;
		}
	}
	return p;
}

bool
http_prefer_rollback(const char *prefer)
{
	const char *p = prefer;

	while (p != NULL && *p != '\0') {
		const char *name, *val = "";
		size_t name_len, val_len = 0;

		p = skip_ows(p);
		name = p;
		name_len = token_len(p);
		p = skip_ows(p + name_len);
		if (name_len > 0 && *p == '=')
			p = prefer_word(skip_ows(p + 1), &val, &val_len);
		if (name_len == 2 && strncasecmp(name, "tx", 2) == 0)
			/* only the first tx counts (RFC 7240 §2) */
			return val_len == 8 && strncasecmp(val, "rollback", 8) == 0;
		p = prefer_skip(p);
		if (*p == ',')
			p++;
	}
	return false;
}

/* A CONTENT_LENGTH above this is counted as LENGTH_HUGE + 1: it is still
 * a number, and over any max_body_bytes (at most 2^30). */
#define LENGTH_HUGE (1LL << 50)

/* CONTENT_LENGTH as a number (LENGTH_HUGE + 1 for anything larger); -1
 * when absent or empty, -2 when malformed. */
static long long
content_length(const struct eb_transport *t)
{
	const char *v = t->param(t->ctx, "CONTENT_LENGTH");
	long long n = 0;

	if (v == NULL || *v == '\0')
		return -1;
	for (const char *p = v; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -2;
		n = n > LENGTH_HUGE ? n : n * 10 + (*p - '0');
	}
	return n > LENGTH_HUGE ? LENGTH_HUGE + 1 : n;
}

enum eb_err
http_read_body(const struct eb_transport *t, long long max, char **body, size_t *len, char *detail,
	       size_t detail_len)
{
	long long declared = content_length(t);
	size_t cap, used = 0;
	char *buf;

	*body = NULL;
	*len = 0;
	if (declared == -2) {
		snprintf(detail, detail_len, "CONTENT_LENGTH is not a number");
		return EB_ERR_BAD_LENGTH;
	}
	if (declared > max) {
		snprintf(detail, detail_len,
			 "the body of %s%lld bytes exceeds the limit of %lld bytes",
			 declared > LENGTH_HUGE ? "more than " : "",
			 declared > LENGTH_HUGE ? LENGTH_HUGE : declared, max);
		return EB_ERR_BODY_TOO_LARGE;
	}
	/* without a length, read until the end, one byte past max to notice */
	cap = declared >= 0 ? (size_t)declared : 65536;
	buf = malloc(cap + 1);
	if (buf == NULL) {
		snprintf(detail, detail_len, "out of memory reading the body");
		return EB_ERR_INTERNAL;
	}
	for (;;) {
		ssize_t n;
		if (used == cap) {
			char *bigger;
			if (declared >= 0 || (long long)cap > max)
				break;
			cap = cap * 2 > (size_t)max + 1 ? (size_t)max + 1 : cap * 2;
			bigger = realloc(buf, cap + 1);
			if (bigger == NULL) {
				free(buf);
				snprintf(detail, detail_len, "out of memory reading the body");
				return EB_ERR_INTERNAL;
			}
			buf = bigger;
		}
		n = t->read(t->ctx, buf + used, cap - used);
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	if (declared >= 0 && (long long)used < declared) {
		free(buf);
		snprintf(detail, detail_len, "the body ended after %zu of %lld bytes", used,
			 declared);
		return EB_ERR_BAD_LENGTH;
	}
	if ((long long)used > max) {
		free(buf);
		snprintf(detail, detail_len, "the body exceeds the limit of %lld bytes", max);
		return EB_ERR_BODY_TOO_LARGE;
	}
	*body = buf;
	*len = used;
	return EB_OK;
}
