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

/* One value, known not to be NULL. */
static void
write_value(struct outbuf *o, const struct event_field *field, const struct event_value *v)
{
	char text[32];
	int n;

	switch (field->type) {
	case FT_INT32:
		out_int(o, v->u.i);
		break;
	case FT_BOOL:
		if (v->u.b)
			OUT_LITERAL(o, "true");
		else
			OUT_LITERAL(o, "false");
		break;
	case FT_DOUBLE:
		/* 17 significant digits read back as the same double */
		n = snprintf(text, sizeof(text), "%.17g", v->u.d);
		out_add(o, text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0);
		break;
	case FT_STRING:
		out_json_string(o, v->u.s.ptr, v->u.s.len);
		break;
	case FT_DATETIME:
		eb_time_format(&v->u.t, text);
		out_json_string(o, text, EB_TIME_TEXT_LEN);
		break;
	}
}

void
rowjson_rows(struct outbuf *o, const struct event_row *rows, size_t n)
{
	OUT_LITERAL(o, "[");
	for (size_t r = 0; r < n; r++) {
		bool first = true;
		if (r > 0)
			OUT_LITERAL(o, ",");
		OUT_LITERAL(o, "{");
		for (int f = 0; f < EVENT_NFIELDS; f++) {
			const struct event_value *v = &rows[r].v[f];
			char name[ROWJSON_NAME_MAX];
			if (v->null)
				continue; /* an absent member reads as NULL */
			rowjson_name(f, name);
			if (!first)
				OUT_LITERAL(o, ",");
			OUT_LITERAL(o, "\"");
			out_add(o, name, strlen(name));
			OUT_LITERAL(o, "\":");
			write_value(o, &event_fields[f], v);
			first = false;
		}
		OUT_LITERAL(o, "}");
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
