/*
 * http.c - request path, media type and body.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

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

/* Whether the n-byte token at p is name, case-insensitively. */
static bool
coding_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

enum http_coding
http_content_coding(const char *content_encoding)
{
	enum http_coding coding = HTTP_CODING_IDENTITY;
	const char *p = content_encoding;

	while (p != NULL && *p != '\0') {
		enum http_coding this;
		size_t n;

		p = skip_ows(p);
		n = token_len(p);
		if (n == 0 && *p != ',' && *p != '\0')
			return HTTP_CODING_UNSUPPORTED;
		if (n == 0 || coding_is(p, n, "identity"))
			this = HTTP_CODING_IDENTITY; /* an empty element (RFC 9110 §5.6.1) */
		else if (coding_is(p, n, "gzip") || coding_is(p, n, "x-gzip"))
			this = HTTP_CODING_GZIP;
		else if (coding_is(p, n, "deflate"))
			this = HTTP_CODING_DEFLATE;
		else
			return HTTP_CODING_UNSUPPORTED;
		/* one coding at most: a stacked gzip, gzip is not undone twice */
		if (this != HTTP_CODING_IDENTITY && coding != HTTP_CODING_IDENTITY)
			return HTTP_CODING_UNSUPPORTED;
		if (this != HTTP_CODING_IDENTITY)
			coding = this;
		p = skip_ows(p + n);
		if (*p != ',' && *p != '\0')
			return HTTP_CODING_UNSUPPORTED;
		if (*p == ',')
			p++;
	}
	return coding;
}

/* The body as it arrives: buf[0..used) of cap, grown by doubling up to
 * max + 1 bytes (one past max, to notice), NUL-terminated at the end. */
struct body_buf {
	char *buf;
	size_t used, cap;
	long long max;
};

/* Room for at least one more byte; false when out of memory. */
static bool
body_grow(struct body_buf *b)
{
	size_t cap = b->cap * 2 > (size_t)b->max + 1 ? (size_t)b->max + 1 : b->cap * 2;
	char *bigger = realloc(b->buf, cap + 1);

	if (bigger == NULL)
		return false;
	b->buf = bigger;
	b->cap = cap;
	return true;
}

static enum eb_err
out_of_memory(char *detail, size_t detail_len)
{
	snprintf(detail, detail_len, "out of memory reading the body");
	return EB_ERR_INTERNAL;
}

static enum eb_err
too_large(long long max, const char *what, char *detail, size_t detail_len)
{
	snprintf(detail, detail_len, "the %sbody exceeds the limit of %lld bytes", what, max);
	return EB_ERR_BODY_TOO_LARGE;
}

/* The body as sent: declared bytes (at once), or up to the end. */
static enum eb_err
read_plain(const struct eb_transport *t, long long declared, struct body_buf *b, char *detail,
	   size_t detail_len)
{
	for (;;) {
		ssize_t n;
		if (b->used == b->cap) {
			if (declared >= 0 || (long long)b->cap > b->max)
				break;
			if (!body_grow(b))
				return out_of_memory(detail, detail_len);
		}
		n = t->read(t->ctx, b->buf + b->used, b->cap - b->used);
		if (n <= 0)
			break;
		b->used += (size_t)n;
	}
	if (declared >= 0 && (long long)b->used < declared) {
		snprintf(detail, detail_len, "the body ended after %zu of %lld bytes", b->used,
			 declared);
		return EB_ERR_BAD_LENGTH;
	}
	if ((long long)b->used > b->max)
		return too_large(b->max, "", detail, detail_len);
	return EB_OK;
}

/* zlib allocates through malloc and free, as the rest of the program does
 * (test-oom fails each of them in turn). */
static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return malloc((size_t)items * size);
}

static void
z_free(voidpf opaque, voidpf p)
{
	(void)opaque;
	free(p);
}

/* Compressed bytes read at once: the only compressed part held. */
#define INFLATE_CHUNK 16384

struct inflater {
	z_stream z;
	unsigned char in[INFLATE_CHUNK];
	long long left; /* compressed bytes still to come; -1: up to the end */
	size_t read;    /* compressed bytes read so far */
	bool ended;     /* a stream (gzip: a member) ended, and nothing after it yet */
};

/* More compressed input when z has none: 1, 0 at the end, or -1 when the
 * body is shorter than CONTENT_LENGTH. */
static int
inflate_input(const struct eb_transport *t, struct inflater *f)
{
	size_t want = f->left >= 0 && f->left < INFLATE_CHUNK ? (size_t)f->left : INFLATE_CHUNK;
	ssize_t n;

	if (f->z.avail_in > 0)
		return 1;
	if (want == 0)
		return 0;
	n = t->read(t->ctx, (char *)f->in, want);
	if (n <= 0)
		return f->left > 0 ? -1 : 0;
	f->read += (size_t)n;
	if (f->left >= 0)
		f->left -= n;
	f->z.next_in = f->in;
	f->z.avail_in = (uInt)n;
	return 1;
}

/* Inflate what comes, chunk by chunk, into b: 413 as soon as the inflated
 * bytes pass max, 400 when they do not inflate. */
static enum eb_err
inflate_body(const struct eb_transport *t, enum http_coding coding, struct inflater *f,
	     struct body_buf *b, char *detail, size_t detail_len)
{
	int in, zr;

	while ((in = inflate_input(t, f)) > 0) {
		if (f->ended) {
			/* gzip: members may follow one another (RFC 1952 §2.2),
			 * as gunzip reads them; zlib: one stream, nothing after */
			if (coding != HTTP_CODING_GZIP || inflateReset(&f->z) != Z_OK)
				return snprintf(detail, detail_len,
						"the body does not inflate: data after the end "
						"of the compressed stream"),
				       EB_ERR_BODY_INVALID;
			f->ended = false;
		}
		if (b->used == b->cap && !body_grow(b))
			return out_of_memory(detail, detail_len);
		f->z.next_out = (unsigned char *)b->buf + b->used;
		f->z.avail_out = (uInt)(b->cap - b->used);
		zr = inflate(&f->z, Z_NO_FLUSH);
		b->used = b->cap - f->z.avail_out;
		if ((long long)b->used > b->max)
			return too_large(b->max, "inflated ", detail, detail_len);
		if (zr == Z_STREAM_END)
			f->ended = true;
		else if (zr == Z_MEM_ERROR)
			return out_of_memory(detail, detail_len);
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return snprintf(detail, detail_len, "the body does not inflate: %s",
					f->z.msg != NULL ? f->z.msg : "not compressed data"),
			       EB_ERR_BODY_INVALID;
	}
	if (in < 0)
		return snprintf(detail, detail_len, "the body ended after %zu of %lld bytes",
				f->read, f->read + f->left),
		       EB_ERR_BAD_LENGTH;
	if (!f->ended && f->read > 0)
		return snprintf(detail, detail_len,
				"the body does not inflate: the compressed stream is truncated"),
		       EB_ERR_BODY_INVALID;
	return EB_OK;
}

/* A gzip (RFC 1952) or zlib (RFC 1950, HTTP's "deflate") body. */
static enum eb_err
read_inflated(const struct eb_transport *t, long long declared, enum http_coding coding,
	      struct body_buf *b, char *detail, size_t detail_len)
{
	struct inflater *f = calloc(1, sizeof(*f));
	enum eb_err err;

	if (f == NULL)
		return out_of_memory(detail, detail_len);
	f->z.zalloc = z_alloc;
	f->z.zfree = z_free;
	f->left = declared;
	/* 15: the largest window; + 16: gzip only, with its header and CRC */
	if (inflateInit2(&f->z, coding == HTTP_CODING_GZIP ? 15 + 16 : 15) != Z_OK) {
		free(f);
		return out_of_memory(detail, detail_len);
	}
	err = inflate_body(t, coding, f, b, detail, detail_len);
	inflateEnd(&f->z);
	free(f);
	return err;
}

enum eb_err
http_read_body(const struct eb_transport *t, long long max, char **body, size_t *len, char *detail,
	       size_t detail_len)
{
	long long declared = content_length(t);
	enum http_coding coding;
	struct body_buf b = {.max = max};
	enum eb_err err;

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
	coding = http_content_coding(t->param(t->ctx, "HTTP_CONTENT_ENCODING"));
	if (coding == HTTP_CODING_UNSUPPORTED) {
		snprintf(detail, detail_len,
			 "Content-Encoding must be gzip, deflate or identity, one coding at most");
		return EB_ERR_ENCODING;
	}
	/* as sent with a length: that many bytes at once; else (and inflated,
	 * whose size nothing tells) from 64 KiB up, doubling */
	b.cap = declared >= 0 && coding == HTTP_CODING_IDENTITY ? (size_t)declared : 65536;
	if ((long long)b.cap > max + 1)
		b.cap = (size_t)max + 1;
	b.buf = malloc(b.cap + 1);
	if (b.buf == NULL)
		return out_of_memory(detail, detail_len);
	err = coding == HTTP_CODING_IDENTITY
		      ? read_plain(t, declared, &b, detail, detail_len)
		      : read_inflated(t, declared, coding, &b, detail, detail_len);
	if (err != EB_OK) {
		free(b.buf);
		return err;
	}
	b.buf[b.used] = '\0';
	*body = b.buf;
	*len = b.used;
	return EB_OK;
}
