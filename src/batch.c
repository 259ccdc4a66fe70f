/*
 * batch.c - the body's array, one element at a time.
 *
 * Jansson does all of the JSON: this file only finds where each element of
 * the top-level array ends (brackets and strings are enough for that) and
 * hands Jansson exactly that span.  When anything about the body is wrong,
 * the whole body is parsed again by Jansson to report the error the way it
 * always has (its message, line and column), so that framing here can only
 * make a body cheaper to read, never accept or refuse a different one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "log.h"
#include "util.h"

/* The rows' strings live in blocks freed with the batch. */
struct text_block {
	struct text_block *next;
	size_t used, size;
	char data[];
};

#define TEXT_BLOCK_SIZE (64 * 1024)

/* A copy of s[0..len) that lives as long as b, or NULL. */
static const char *
text_copy(struct batch *b, const char *s, size_t len)
{
	struct text_block *t = b->text;
	char *p;

	if (t == NULL || t->size - t->used < len) {
		size_t size = len > TEXT_BLOCK_SIZE ? len : TEXT_BLOCK_SIZE;
		t = malloc(sizeof(*t) + size);
		if (t == NULL)
			return NULL;
		t->used = 0, t->size = size;
		if (b->text != NULL && len > TEXT_BLOCK_SIZE) {
			/* a large string gets a block of its own, behind the
			 * current one, which stays open for small strings */
			t->next = b->text->next;
			b->text->next = t;
		} else {
			t->next = b->text;
			b->text = t;
		}
	}
	p = t->data + t->used;
	memcpy(p, s, len);
	t->used += len;
	return p;
}

/* Make row independent of the JSON item it was validated from. */
static bool
row_detach(struct batch *b, struct event_row *row)
{
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		struct event_value *v = &row->v[f];
		if (event_fields[f].type != FT_STRING || v->null)
			continue;
		if (v->u.s.len == 0)
			v->u.s.ptr = "";
		else if ((v->u.s.ptr = text_copy(b, v->u.s.ptr, v->u.s.len)) == NULL)
			return false;
	}
	return true;
}

/* Grow *array (of *cap elements of size) to hold at least need. */
static bool
grow(void *array, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	if ((p = realloc(*(void **)array, n * size)) == NULL)
		return false;
	*(void **)array = p;
	*cap = n;
	return true;
}

/* Room for one more item and row. */
struct capacity {
	size_t results, rows, row_item;
};

/* Validate item into the next result and, when valid, the next row. */
static bool
add_item(struct batch *b, const json_t *item, const struct event_defaults *defs,
	 struct capacity *cap)
{
	struct item_result *res;
	struct event_row *row;
	char err[EVENT_ERR_MAX];

	if (!grow(&b->results, &cap->results, b->n_items + 1, sizeof(*b->results)) ||
	    !grow(&b->rows, &cap->rows, b->n_rows + 1, sizeof(*b->rows)) ||
	    !grow(&b->row_item, &cap->row_item, b->n_rows + 1, sizeof(*b->row_item)))
		return false;
	res = &b->results[b->n_items];
	memset(res, 0, sizeof(*res));
	row = &b->rows[b->n_rows];
	if (event_validate(item, defs, row, &res->id, &res->id_valid, err)) {
		if (!row_detach(b, row))
			return false;
		b->row_item[b->n_rows++] = b->n_items;
	} else {
		res->status = 400;
		if ((res->detail = strdup(err)) == NULL)
			return false;
	}
	b->n_items++;
	return true;
}

/* JSON's whitespace */
static bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
skip_ws(const char *s, size_t len, size_t p)
{
	while (p < len && is_ws(s[p]))
		p++;
	return p;
}

/* Where the element starting at p ends: the ',' or ']' after it at the
 * array's own level (or len).  Only brackets and strings matter; Jansson
 * checks everything inside. */
static size_t
element_end(const char *s, size_t len, size_t p)
{
	size_t depth = 0;
	bool in_string = false;

	for (; p < len; p++) {
		char c = s[p];
		if (in_string) {
			if (c == '\\')
				p++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			depth--;
		} else if (c == ',' && depth == 0) {
			return p;
		}
	}
	return len;
}

/* Why the whole body is refused, in Jansson's words. */
static enum eb_err
body_error(const char *body, size_t len, char *detail, size_t detail_len)
{
	json_error_t jerr;
	unsigned long failures = util_json_alloc_failures();
	json_t *all = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
	bool array = json_is_array(all);

	json_decref(all);
	if (util_json_alloc_failures() != failures)
		return snprintf(detail, detail_len, "out of memory reading the batch"),
		       EB_ERR_INTERNAL;
	if (all == NULL)
		return snprintf(detail, detail_len, "invalid JSON: %s at line %d column %d",
				jerr.text, jerr.line, jerr.column),
		       EB_ERR_BODY_INVALID;
	if (!array)
		return snprintf(detail, detail_len, "the body must be a JSON array of events"),
		       EB_ERR_BODY_INVALID;
	/* the framing above refused a body Jansson takes: a bug here */
	log_msg("batch: a body Jansson reads as an array was refused");
	return snprintf(detail, detail_len, "the batch could not be read"), EB_ERR_INTERNAL;
}

enum eb_err
batch_parse(const char *body, size_t len, long max_items, const struct event_defaults *defs,
	    struct batch *b, char *detail, size_t detail_len)
{
	struct capacity cap = {0, 0, 0};
	size_t counted = 0;
	size_t p = skip_ws(body, len, 0);
	unsigned long failures = util_json_alloc_failures();

	memset(b, 0, sizeof(*b));
	if (p == len || body[p] != '[')
		return body_error(body, len, detail, detail_len);
	p = skip_ws(body, len, p + 1);
	if (p < len && body[p] == ']')
		goto closed;
	for (;;) {
		size_t end = element_end(body, len, p), stop = end;
		json_t *item;

		if (end == len)
			goto refused;
		while (stop > p && is_ws(body[stop - 1]))
			stop--;
		/* NUL inside strings is let through to be refused per item */
		item = json_loadb(body + p, stop - p, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
		/* Jansson reports running out of memory as just another parse
		 * error, or not at all (a member can go missing): any failed
		 * allocation means the item cannot be trusted */
		if (util_json_alloc_failures() != failures) {
			json_decref(item);
			goto no_memory;
		}
		if (item == NULL)
			goto refused;
		/* past the limit the rest is only parsed: to tell invalid JSON
		 * (row 10) from too many items (row 11), and to count them */
		if (++counted <= (size_t)max_items && !add_item(b, item, defs, &cap)) {
			json_decref(item);
			goto no_memory;
		}
		json_decref(item);
		if (body[end] == ']') {
			p = end;
			break;
		}
		if (body[end] != ',')
			goto refused;
		p = skip_ws(body, len, end + 1);
	}
closed:
	if (skip_ws(body, len, p + 1) != len)
		goto refused;
	if (counted > (size_t)max_items) {
		batch_free(b);
		return snprintf(detail, detail_len, "%zu items exceed the limit of %ld", counted,
				max_items),
		       EB_ERR_TOO_MANY_ITEMS;
	}
	return EB_OK;
refused:
	batch_free(b);
	return body_error(body, len, detail, detail_len);
no_memory:
	batch_free(b);
	return snprintf(detail, detail_len, "out of memory reading the batch"), EB_ERR_INTERNAL;
}

void
batch_reset_stored(struct batch *b)
{
	for (size_t k = 0; k < b->n_rows; k++) {
		struct item_result *r = &b->results[b->row_item[k]];
		free(r->detail);
		r->detail = NULL;
		r->status = 0;
	}
}

void
batch_free(struct batch *b)
{
	for (size_t i = 0; b->results != NULL && i < b->n_items; i++)
		free(b->results[i].detail);
	free(b->results);
	free(b->rows);
	free(b->row_item);
	while (b->text != NULL) {
		struct text_block *next = b->text->next;
		free(b->text);
		b->text = next;
	}
	memset(b, 0, sizeof(*b));
}
