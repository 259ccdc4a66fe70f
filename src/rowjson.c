/*
 * rowjson.c - validated rows as JSON text.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rowjson.h"

void
rowjson_name(int f, char out[ROWJSON_NAME_MAX])
{
	/* by hand: this runs for every value of every row */
	unsigned n = (unsigned)f % 100u;
	char *p = out;

	*p++ = 'c';
	if (n >= 10)
		*p++ = (char)('0' + n / 10);
	*p++ = (char)('0' + n % 10);
	*p = '\0';
}

/* The most bytes one member takes: ',"c24":' and the value. */
static size_t
member_max(const struct event_field *f, const struct event_value *v)
{
	switch (f->type) {
	case FT_STRING: return 8 + OUT_JSON_STRING_MAX(v->u.s.len);
	case FT_DATETIME: return 8 + OUT_JSON_STRING_MAX(EB_TIME_TEXT_LEN);
	default: return 8 + 32; /* an int32, a boolean, %.17g of a double */
	}
}

/* One value, known not to be NULL, at p (room for member_max); the end. */
static char *
put_value(char *p, const struct event_field *field, const struct event_value *v)
{
	char text[EB_TIME_TEXT_LEN + 1];
	int n;

	switch (field->type) {
	case FT_INT32: return out_decimal(p, v->u.i);
	case FT_BOOL:
		memcpy(p, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
		return p + (v->u.b ? 4 : 5);
	case FT_DOUBLE:
		/* 17 significant digits read back as the same double; ".0" keeps
		 * an integral value (-0 too) a real for every JSON reader */
		n = snprintf(p, 30, "%.17g", v->u.d);
		if (n <= 0 || n >= 30)
			return p;
		if (memchr(p, '.', (size_t)n) == NULL && memchr(p, 'e', (size_t)n) == NULL)
			memcpy(p + n, ".0", 2), n += 2;
		return p + n;
	case FT_STRING: return out_json_escape(p, v->u.s.ptr, v->u.s.len);
	case FT_DATETIME:
		eb_time_format(&v->u.t, text);
		return out_json_escape(p, text, EB_TIME_TEXT_LEN);
	}
	return p;
}

void
rowjson_rows(struct outbuf *o, const struct event_row *rows, size_t n)
{
	OUT_LITERAL(o, "[");
	for (size_t r = 0; r < n; r++) {
		size_t room = 3;
		bool first = true;
		char *p;
		for (int f = 0; f < EVENT_NFIELDS; f++)
			if (!rows[r].v[f].null)
				room += member_max(&event_fields[f], &rows[r].v[f]);
		if (!out_reserve(o, room))
			return;
		p = o->text + o->len;
		if (r > 0)
			*p++ = ',';
		*p++ = '{';
		for (int f = 0; f < EVENT_NFIELDS; f++) {
			const struct event_value *v = &rows[r].v[f];
			char name[ROWJSON_NAME_MAX];
			size_t len;
			if (v->null)
				continue; /* an absent member reads as NULL */
			if (!first)
				*p++ = ',';
			first = false;
			rowjson_name(f, name);
			len = strlen(name);
			*p++ = '"';
			memcpy(p, name, len);
			p += len;
			*p++ = '"';
			*p++ = ':';
			p = put_value(p, &event_fields[f], v);
		}
		*p++ = '}';
		o->len = (size_t)(p - o->text);
	}
	OUT_LITERAL(o, "]");
}

void
rowjson_absent_keys(struct outbuf *o, const struct event_row *rows, size_t n, int f)
{
	bool first = true;

	OUT_LITERAL(o, "{");
	for (size_t r = 0; r < n; r++) {
		if (rows[r].v[f].given)
			continue;
		if (!first)
			OUT_LITERAL(o, ",");
		out_int(o, rows[r].v[EVENT_KEY].u.i);
		first = false;
	}
	OUT_LITERAL(o, "}");
}
