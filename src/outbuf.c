/*
 * outbuf.c - a growing text buffer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "outbuf.h"

bool
out_reserve(struct outbuf *o, size_t n)
{
	size_t cap;
	char *text;

	if (o->failed)
		return false;
	if (o->cap - o->len >= n)
		return true;
	cap = o->cap ? o->cap : 4096;
	while (cap - o->len < n)
		cap *= 2;
	if ((text = realloc(o->text, cap)) == NULL) {
		o->failed = true;
		return false;
	}
	o->text = text, o->cap = cap;
	return true;
}

void
out_add(struct outbuf *o, const char *s, size_t n)
{
	if (out_reserve(o, n)) {
		memcpy(o->text + o->len, s, n);
		o->len += n;
	}
}

void
out_int(struct outbuf *o, long long v)
{
	char digits[24], *p = digits + sizeof(digits);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	out_add(o, p, (size_t)(digits + sizeof(digits) - p));
}

void
out_json_string(struct outbuf *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s, *end = s + n;

	OUT_LITERAL(o, "\"");
	for (; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		out_add(o, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			out_add(o, esc, 2);
		} else {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			out_add(o, esc, 6);
		}
		run = s + 1;
	}
	out_add(o, run, (size_t)(end - run));
	OUT_LITERAL(o, "\"");
}

void
out_clear(struct outbuf *o)
{
	o->len = 0;
	o->failed = false;
}

void
out_free(struct outbuf *o)
{
	free(o->text);
	memset(o, 0, sizeof(*o));
}
