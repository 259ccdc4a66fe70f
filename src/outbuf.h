/*
 * outbuf.h - a growing text buffer for JSON written by hand (the 207 body,
 * the rows sent to PostgreSQL as one parameter).
 *
 * Writing stops at the first failed allocation: every call after it does
 * nothing, and the writer checks `failed` once at the end.
 */
#ifndef EB_OUTBUF_H
#define EB_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct outbuf {
	char *text; /* malloc'd, not NUL-terminated */
	size_t len, cap;
	bool failed;
};

/* Room for n more bytes; false once an allocation failed. */
bool out_reserve(struct outbuf *o, size_t n);

void out_add(struct outbuf *o, const char *s, size_t n);

/* s must be a string literal ("" s does not compile otherwise) */
#define OUT_LITERAL(o, s) out_add((o), "" s, sizeof(s) - 1)

/* A decimal integer. */
void out_int(struct outbuf *o, long long v);

/* The most bytes out_decimal writes: a sign and 19 digits. */
#define OUT_DECIMAL_MAX 20

/* v in decimal at p, which has room for OUT_DECIMAL_MAX; the end of it. */
char *out_decimal(char *p, long long v);

/* s[0..n) as a JSON string: quotes, backslashes and control characters
 * escaped, every other byte (UTF-8) as it is. */
void out_json_string(struct outbuf *o, const char *s, size_t n);

/* The most bytes out_json_string writes for n bytes (each as \u00XX). */
#define OUT_JSON_STRING_MAX(n) (2 + 6 * (size_t)(n))

/* out_json_string into p, which has room for OUT_JSON_STRING_MAX(n);
 * returns the end of what it wrote. */
char *out_json_escape(char *p, const char *s, size_t n);

/* Forget the text, keep the memory. */
void out_clear(struct outbuf *o);

void out_free(struct outbuf *o);

#endif
