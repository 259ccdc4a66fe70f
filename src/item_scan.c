/*
 * item_scan.c - one Event item read in one pass, as Jansson would read it.
 *
 * Every rule here is Jansson's (its lexer: whitespace, string escapes,
 * UTF-8, the number grammar, strtoll and strtod) or event_validate()'s,
 * applied to the bytes directly; wherever following one exactly would take
 * more than a few lines (a \u0000, a member name with escapes, the same
 * member twice, a nested value, a 19-digit integer, a real strtod cannot
 * represent) the reader gives up and Jansson decides.  It reads in two
 * steps: first the whole item is checked, with string values only located
 * and measured, then, once the item is known to be valid, the strings are
 * copied out (decoded where they hold escapes), so that nothing is
 * allocated for an item that goes to Jansson after all.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "item_scan.h"

_Static_assert(EVENT_NFIELDS <= 32, "a member is one bit of a uint32_t");

/* The bytes still to read: p up to end. */
struct cursor {
	const char *p, *end;
};

/* A string read but not yet copied. */
struct str {
	const char *raw; /* after the opening quote */
	size_t len;      /* once decoded, in bytes */
	size_t chars;    /* once decoded, in code points */
	bool escaped;    /* holds escapes: decode rather than copy */
};

/* A number token, as Jansson's lexer makes it. */
struct number {
	bool integer; /* no fraction, no exponent: a JSON_INTEGER */
	long long i;
	double d; /* json_number_value() of it */
};

enum { B_PLAIN, B_QUOTE, B_BACKSLASH, B_CONTROL, B_HIGH };

/* What each byte is inside a string. */
static const unsigned char byte_class[256] = {
	[0x00 ... 0x1F] = B_CONTROL,
	['"'] = B_QUOTE,
	['\\'] = B_BACKSLASH,
	[0x80 ... 0xFF] = B_HIGH,
};

static void
skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
		c->p++;
}

/* Length of the UTF-8 sequence at p (lead byte >= 0x80) when it is one
 * Jansson accepts (no overlong form, surrogate, or code point past
 * U+10FFFF), else 0. */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (*p >= 0xC2 && *p <= 0xDF) {
		n = 2;
	} else if (*p >= 0xE0 && *p <= 0xEF) {
		n = 3;
		lo = *p == 0xE0 ? 0xA0 : 0x80;
		hi = *p == 0xED ? 0x9F : 0xBF;
	} else if (*p >= 0xF0 && *p <= 0xF4) {
		n = 4;
		lo = *p == 0xF0 ? 0x90 : 0x80;
		hi = *p == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* The four hex digits at p, or -1. */
static long
hex4(const char *p, const char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], lc = c | 0x20;
		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (lc >= 'a' && lc <= 'f')
			v = v * 16 + (lc - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/* The \u escape (after the backslash and u) at p as a code point, or -1
 * for an invalid one and for those left to Jansson: a lone surrogate (its
 * error) and \u0000 (a NUL, refused by event_validate). */
static long
read_u(const char **pp, const char *end)
{
	const char *p = *pp;
	long u = hex4(p, end), lo;

	if (u <= 0 || (u >= 0xDC00 && u <= 0xDFFF))
		return -1;
	p += 4;
	if (u >= 0xD800 && u <= 0xDBFF) {
		if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
		    (lo = hex4(p + 2, end)) < 0xDC00 || lo > 0xDFFF)
			return -1;
		u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
		p += 6;
	}
	*pp = p;
	return u;
}

/* The escape at *pp (a backslash) as a code point, moving *pp past it;
 * false when read_u or Jansson refuses it. */
static bool
read_escape(const char **pp, const char *end, unsigned long *cp)
{
	const char *p = *pp + 1;
	long u;

	if (p == end)
		return false;
	switch (*p) {
	case '"':
	case '\\':
	case '/': *cp = (unsigned char)*p; break;
	case 'b': *cp = '\b'; break;
	case 'f': *cp = '\f'; break;
	case 'n': *cp = '\n'; break;
	case 'r': *cp = '\r'; break;
	case 't': *cp = '\t'; break;
	case 'u':
		p++;
		if ((u = read_u(&p, end)) < 0)
			return false;
		*cp = (unsigned long)u;
		*pp = p;
		return true;
	default: return false;
	}
	*pp = p + 1;
	return true;
}

/* Bytes of code point cp in UTF-8. */
static size_t
utf8_len(unsigned long cp)
{
	return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Write cp as UTF-8 at out; its length. */
static size_t
utf8_put(char *out, unsigned long cp)
{
	size_t n = utf8_len(cp);

	if (n == 1) {
		out[0] = (char)cp;
		return 1;
	}
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		out[i] = (char)(0x80 | (cp & 0x3F));
	out[0] = (char)((n == 2 ? 0xC0 : n == 3 ? 0xE0 : 0xF0) | cp);
	return n;
}

/* Where the run of plain bytes (none of: quote, backslash, control
 * character, >= 0x80) that starts at p ends: eight bytes at a time, then
 * one at a time.  A borrow in the subtractions only ever comes from a byte
 * that is itself not plain, so no plain run is cut short wrongly. */
static const char *
plain_run(const char *p, const char *end)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t x;

	for (; end - p >= 8; p += 8) {
		memcpy(&x, p, 8);
		if ((x | (x - ones * 0x20) | ((x ^ (ones * '"')) - ones) |
		     ((x ^ (ones * '\\')) - ones)) &
		    high)
			break;
	}
	while (p < end && byte_class[(unsigned char)*p] == B_PLAIN)
		p++;
	return p;
}

/* Read the string at c->p (its opening quote) into *st: false when it is
 * not one Jansson reads the same (or at all). */
static bool
scan_string(struct cursor *c, struct str *st)
{
	const char *p = c->p + 1, *run;
	size_t n;
	unsigned long cp;

	st->raw = p;
	st->len = st->chars = 0;
	st->escaped = false;
	for (;;) {
		run = p;
		p = plain_run(p, c->end);
		st->len += (size_t)(p - run);
		st->chars += (size_t)(p - run);
		if (p == c->end)
			return false;
		switch (byte_class[(unsigned char)*p]) {
		case B_QUOTE: c->p = p + 1; return true;
		case B_BACKSLASH:
			if (!read_escape(&p, c->end, &cp))
				return false;
			st->len += utf8_len(cp);
			st->chars++;
			st->escaped = true;
			break;
		case B_HIGH:
			if ((n = utf8_seq((const unsigned char *)p,
					  (const unsigned char *)c->end)) == 0)
				return false;
			p += n;
			st->len += n;
			st->chars++;
			break;
		default: /* a raw control character */ return false;
		}
	}
}

/* Decode the string of len bytes whose text starts at raw (it was read
 * by scan_string, within end) into out. */
static void
decode_string(const char *raw, const char *end, size_t len, char *out)
{
	char *o = out, *stop = out + len;
	const char *bs;
	unsigned long cp;

	while (o < stop) {
		/* up to the next escape the text is its own decoding */
		if ((bs = memchr(raw, '\\', (size_t)(stop - o))) == NULL) {
			memcpy(o, raw, (size_t)(stop - o));
			return;
		}
		memcpy(o, raw, (size_t)(bs - raw));
		o += bs - raw;
		raw = bs;
		read_escape(&raw, end, &cp);
		o += utf8_put(o, cp);
	}
}

/* The real in t[0..n) as Jansson's strtod gives it; false for what it
 * would refuse (overflow) and what is left to it (underflow, long text, a
 * locale whose strtod does not stop where the token does). */
static bool
real_value(const char *t, size_t n, double *d)
{
	char buf[64], *stop;

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, t, n);
	buf[n] = '\0';
	errno = 0;
	*d = strtod(buf, &stop);
	return stop == buf + n && errno != ERANGE && isfinite(*d);
}

static bool
is_digit(const struct cursor *c, const char *p)
{
	return p < c->end && *p >= '0' && *p <= '9';
}

/* Read the number token at c->p: JSON's grammar exactly, an integer as
 * strtoll would give it (at most 18 digits, so it cannot overflow). */
static bool
scan_number(struct cursor *c, struct number *n)
{
	const char *p = c->p;
	long long v = 0;
	int digits = 0;

	if (p < c->end && *p == '-')
		p++;
	if (!is_digit(c, p))
		return false;
	if (*p == '0' && is_digit(c, ++p))
		return false; /* a leading zero */
	for (; is_digit(c, p); p++)
		if (++digits > 18)
			return false;
		else
			v = v * 10 + (*p - '0');
	n->integer = true;
	if (p < c->end && *p == '.') {
		if (!is_digit(c, ++p))
			return false;
		while (is_digit(c, p))
			p++;
		n->integer = false;
	}
	if (p < c->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < c->end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(c, p))
			return false;
		while (is_digit(c, p))
			p++;
		n->integer = false;
	}
	if (n->integer) {
		n->i = *c->p == '-' ? -v : v;
		n->d = (double)n->i;
	} else if (!real_value(c->p, (size_t)(p - c->p), &n->d)) {
		return false;
	}
	c->p = p;
	return true;
}

/* Read the literal word (true, false, null) at c->p. */
static bool
scan_word(struct cursor *c, const char *word, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* Read the value of a member event_validate ignores: any scalar Jansson
 * takes; objects and arrays are left to it. */
static bool
skip_value(struct cursor *c)
{
	struct str st;
	struct number n;

	switch (*c->p) {
	case '"': return scan_string(c, &st);
	case 't': return scan_word(c, "true", 4);
	case 'f': return scan_word(c, "false", 5);
	case 'n': return scan_word(c, "null", 4);
	default: return scan_number(c, &n);
	}
}

/* Read the string at c->p as a value of field f: the rules of
 * event_validate's convert() that a string can break. */
static bool
scan_text(struct cursor *c, const struct event_field *f, struct event_value *v, bool *escaped)
{
	struct str st;

	if (*c->p != '"' || !scan_string(c, &st))
		return false;
	if (f->type == FT_DATETIME)
		return !st.escaped && eb_time_parse(st.raw, st.len, &v->u.t);
	if (f->max_chars && st.chars > f->max_chars)
		return false;
	v->u.s.ptr = st.raw; /* copied out once the item is known valid */
	v->u.s.len = st.len;
	*escaped = st.escaped;
	return true;
}

/* Read the value at c->p of field f into *v, as event_validate would
 * convert it; false when it would not, or when Jansson must decide. */
static bool
scan_field(struct cursor *c, const struct event_field *f, struct event_value *v, bool *escaped)
{
	struct number n;

	v->given = true;
	v->null = *c->p == 'n';
	*escaped = false;
	if (v->null)
		return (f->flags & FF_NULLABLE) && scan_word(c, "null", 4);
	switch (f->type) {
	case FT_INT32:
		if (!scan_number(c, &n) || !n.integer || n.i < INT32_MIN || n.i > INT32_MAX)
			return false;
		v->u.i = (int32_t)n.i;
		return true;
	case FT_BOOL:
		v->u.b = *c->p == 't';
		return v->u.b ? scan_word(c, "true", 4) : scan_word(c, "false", 5);
	case FT_DOUBLE:
		if (!scan_number(c, &n))
			return false;
		v->u.d = n.d; /* finite: real_value saw to it */
		return true;
	case FT_STRING:
	case FT_DATETIME: return scan_text(c, f, v, escaped);
	}
	return false;
}

/* Whether event_fields[i] is named name[0..len) (which holds no NUL). */
static bool
field_is(int i, const char *name, size_t len)
{
	const char *json = event_fields[i].json;

	return len > 0 && json[0] == name[0] && strncmp(json, name, len) == 0 && json[len] == '\0';
}

/* The field named name[0..len), or -1; items tend to list the fields in
 * the table's order, so field `hint` is tried first. */
static int
field_lookup(const char *name, size_t len, int hint)
{
	if (hint < EVENT_NFIELDS && field_is(hint, name, len))
		return hint;
	for (int i = 0; i < EVENT_NFIELDS; i++)
		if (field_is(i, name, len))
			return i;
	return -1;
}

/* Read one member at c->p into row; *seen and *escaped get its bit. */
static bool
scan_member(struct cursor *c, struct event_row *row, uint32_t *seen, uint32_t *escaped, int *hint)
{
	struct str key;
	bool esc;
	int i;

	if (c->p == c->end || *c->p != '"' || !scan_string(c, &key) || key.escaped)
		return false;
	skip_ws(c);
	if (c->p == c->end || *c->p != ':')
		return false;
	c->p++;
	skip_ws(c);
	if (c->p == c->end)
		return false;
	if ((i = field_lookup(key.raw, key.len, *hint)) < 0)
		return skip_value(c);
	if ((*seen & (1u << i)) || !scan_field(c, &event_fields[i], &row->v[i], &esc))
		return false; /* Jansson keeps the last of a repeated member */
	*seen |= 1u << i;
	*escaped |= (uint32_t)esc << i;
	*hint = i + 1;
	return true;
}

/* Read the object at the start of c, and the whitespace after it: its
 * members' bits in *seen. */
static bool
scan_object(struct cursor *c, struct event_row *row, uint32_t *seen, uint32_t *escaped)
{
	int hint = 0;

	skip_ws(c);
	if (c->p == c->end || *c->p != '{')
		return false;
	c->p++;
	skip_ws(c);
	for (;;) {
		if (!scan_member(c, row, seen, escaped, &hint))
			return false; /* "{}" too: event_ID is required */
		skip_ws(c);
		if (c->p == c->end)
			return false;
		if (*c->p == '}')
			break;
		if (*c->p != ',')
			return false;
		c->p++;
		skip_ws(c);
	}
	c->p++;
	skip_ws(c);
	return true;
}

/* Copy (or decode) the string value v into room from alloc. */
static bool
store_string(struct event_value *v, bool escaped, const char *end, item_scan_alloc *alloc,
	     void *ctx)
{
	char *room;

	if (v->u.s.len == 0) {
		v->u.s.ptr = "";
		return true;
	}
	if ((room = alloc(ctx, v->u.s.len)) == NULL)
		return false;
	if (escaped)
		decode_string(v->u.s.ptr, end, v->u.s.len, room);
	else
		memcpy(room, v->u.s.ptr, v->u.s.len);
	v->u.s.ptr = room;
	return true;
}

enum item_scan_result
item_scan(const char *s, size_t len, const struct event_defaults *defs, struct event_row *row,
	  int32_t *id, size_t *used, item_scan_alloc *alloc, void *ctx)
{
	struct cursor c = {s, s + len};
	uint32_t seen = 0, escaped = 0;

	if (!scan_object(&c, row, &seen, &escaped))
		return ITEM_SCAN_FALLBACK;
	for (int i = 0; i < EVENT_NFIELDS; i++) {
		if (seen & (1u << i))
			continue;
		if (event_fields[i].flags & FF_REQUIRED)
			return ITEM_SCAN_FALLBACK;
		event_apply_default(&event_fields[i], defs, &row->v[i]);
	}
	for (int i = 0; alloc != NULL && i < EVENT_NFIELDS; i++)
		if (event_fields[i].type == FT_STRING && !row->v[i].null &&
		    !store_string(&row->v[i], (escaped >> i) & 1, c.end, alloc, ctx))
			return ITEM_SCAN_NO_MEMORY;
	*id = row->v[EVENT_KEY].u.i;
	*used = (size_t)(c.p - s);
	return ITEM_SCAN_OK;
}
