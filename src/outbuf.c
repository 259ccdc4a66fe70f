/*
 * outbuf.c - a growing text buffer.
 */
#include "config.h"

#include <stdint.h>
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

char *
out_decimal(char *p, long long v)
{
	char digits[OUT_DECIMAL_MAX], *d = digits + sizeof(digits);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do
		*--d = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--d = '-';
	memcpy(p, d, (size_t)(digits + sizeof(digits) - d));
	return p + (digits + sizeof(digits) - d);
}

void
out_int(struct outbuf *o, long long v)
{
	char digits[OUT_DECIMAL_MAX];

	out_add(o, digits, (size_t)(out_decimal(digits, v) - digits));
}

/* The length of the run at the start of s[0..n) that JSON takes as it is
 * (no quote, backslash or control character): eight bytes at a time, then
 * one at a time.  A borrow in the subtractions only ever starts at a byte
 * that needs escaping, so no run is cut short wrongly (a cut short one
 * only costs a slower look). */
static size_t
plain_prefix(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	size_t i = 0;
	uint64_t x;

	for (; n - i >= 8; i += 8) {
		memcpy(&x, s + i, 8);
		/* a byte < 0x20, '"' or '\\' sets its high bit (x itself
		 * masks the bytes >= 0x80, which need no escape) */
		if ((((x - ones * 0x20) | ((x ^ (ones * '"')) - ones) |
		      ((x ^ (ones * '\\')) - ones)) &
		     ~x & high) != 0)
			break;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

char *
out_json_escape(char *p, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const char *end = s + n;

	*p++ = '"';
	while (s < end) {
		size_t run = plain_prefix(s, (size_t)(end - s));
		unsigned char c;
		memcpy(p, s, run);
		p += run;
		s += run;
		if (s == end)
			break;
		c = (unsigned char)*s++;
		*p++ = '\\';
		if (c == '"' || c == '\\') {
			*p++ = (char)c;
		} else {
			*p++ = 'u', *p++ = '0', *p++ = '0';
			*p++ = hex[c >> 4], *p++ = hex[c & 15];
		}
	}
	*p++ = '"';
	return p;
}

void
out_json_string(struct outbuf *o, const char *s, size_t n)
{
	if (out_reserve(o, OUT_JSON_STRING_MAX(n)))
		o->len = (size_t)(out_json_escape(o->text + o->len, s, n) - o->text);
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
