/*
 * batch.c - the body's array, one element at a time.
 *
 * Jansson is the judge of all of the JSON: this file only finds where each
 * element of the top-level array ends (brackets and strings are enough for
 * that) and hands exactly that span to item_scan, which reads the valid
 * items it is sure about, and otherwise to Jansson and event_validate.
 * When anything about the body is wrong, the whole body is parsed again by
 * Jansson to report the error the way it always has (its message, line and
 * column), so that framing here can only make a body cheaper to read, never
 * accept or refuse a different one.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "item_scan.h"
#include "log.h"
#include "util.h"

/* The rows' strings live in blocks freed with the batch. */
struct text_block {
	struct text_block *next;
	size_t used, size;
	char data[];
};

#define TEXT_BLOCK_SIZE (64 * 1024)

/* Room for len bytes that lives as long as b, or NULL. */
static char *
text_alloc(struct batch *b, size_t len)
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
	t->used += len;
	return p;
}

/* text_alloc as item_scan asks for it. */
static char *
scan_alloc(void *b, size_t len)
{
	return text_alloc(b, len);
}

/* A copy of s[0..len) that lives as long as b, or NULL. */
static const char *
text_copy(struct batch *b, const char *s, size_t len)
{
	char *p = text_alloc(b, len);

	return p == NULL ? NULL : memcpy(p, s, len);
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

static bool
reserve(struct batch *b, struct capacity *cap)
{
	return grow(&b->results, &cap->results, b->n_items + 1, sizeof(*b->results)) &&
	       grow(&b->rows, &cap->rows, b->n_rows + 1, sizeof(*b->rows)) &&
	       grow(&b->row_item, &cap->row_item, b->n_rows + 1, sizeof(*b->row_item));
}

/* Validate item into the next result and, when valid, the next row (room
 * reserved). */
static bool
add_item(struct batch *b, const json_t *item, const struct event_defaults *defs)
{
	struct item_result *res = &b->results[b->n_items];
	struct event_row *row = &b->rows[b->n_rows];
	char err[EVENT_ERR_MAX];

	memset(res, 0, sizeof(*res));
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

/* Read the element at s[0..len) with item_scan into the next result and
 * row (room reserved); ITEM_SCAN_FALLBACK leaves both to add_item. */
static enum item_scan_result
add_scanned(struct batch *b, const char *s, size_t len, const struct event_defaults *defs,
	    size_t *used)
{
	struct item_result *res = &b->results[b->n_items];
	enum item_scan_result r;

	memset(res, 0, sizeof(*res));
	r = item_scan(s, len, defs, &b->rows[b->n_rows], &res->id, used, scan_alloc, b);
	if (r == ITEM_SCAN_OK) {
		res->id_valid = true;
		b->row_item[b->n_rows++] = b->n_items++;
	}
	return r;
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

/*
 * Jansson's limit on nesting (JSON_PARSER_MAX_DEPTH in its load.c): every
 * value, a scalar too, is one level deeper than the array or object it is
 * in, and a body with a value deeper than this is refused whole ("maximum
 * parsing depth reached").  An element parsed alone is one level less
 * deep than in the body, so its depth is checked here; test-batch holds
 * the two to agree at the edge.
 */
#define JSON_DEPTH_MAX 2048

/* Where the element starting at p ends: the ',' or ']' after it at the
 * array's own level (or len).  Only brackets and strings matter; Jansson
 * checks everything inside.  *deepest gets the depth of its deepest value
 * as Jansson counts it, the element itself being 1: exact for valid JSON,
 * and for invalid JSON Jansson refuses the body anyway. */
static size_t
element_end(const char *s, size_t len, size_t p, size_t *deepest)
{
	size_t depth = 0;
	bool in_string = false;

	*deepest = 1;
	for (; p < len; p++) {
		char c = s[p];
		if (in_string) {
			if (c == '\\')
				p++;
			else if (c == '"')
				in_string = false;
		} else if (c == '{' || c == '[') {
			if (++depth > *deepest)
				*deepest = depth;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			depth--;
		} else if (c == ',') {
			if (depth == 0)
				return p;
		} else if (c != ':' && !is_ws(c)) {
			/* a scalar's byte (a string's quote, a member name's
			 * too: its value is as deep) */
			if (depth + 1 > *deepest)
				*deepest = depth + 1;
			in_string = c == '"';
		}
	}
	return len;
}

enum element { ELEMENT_READ, ELEMENT_INVALID, ELEMENT_NO_MEMORY };

/* Parse the element at s[0..len) with Jansson and validate it into b when
 * store, else (past max_items) only check that it is JSON. */
static enum element
read_with_jansson(struct batch *b, const char *s, size_t len, bool store,
		  const struct event_defaults *defs)
{
	unsigned long failures = util_json_alloc_failures();
	/* NUL inside strings is let through to be refused per item */
	json_t *item = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
	bool ok;

	/* Jansson reports running out of memory as just another parse
	 * error, or not at all (a member can go missing): any failed
	 * allocation means the item cannot be trusted */
	if (util_json_alloc_failures() != failures) {
		json_decref(item);
		return ELEMENT_NO_MEMORY;
	}
	if (item == NULL)
		return ELEMENT_INVALID;
	ok = !store || add_item(b, item, defs);
	json_decref(item);
	return ok ? ELEMENT_READ : ELEMENT_NO_MEMORY;
}

/*
 * Read the element that starts at body[p] into b when store, else (past
 * max_items) only check that it is JSON; *end gets the ',' or ']' after it.
 * item_scan reads the items it is sure about, Jansson and event_validate
 * the others (and word every refusal).  An item item_scan reads is a whole
 * value: when no ',' or ']' follows, the array is broken.
 */
static enum element
read_element(struct batch *b, const char *body, size_t len, size_t p, size_t *end, bool store,
	     const struct event_defaults *defs, struct capacity *cap)
{
	enum item_scan_result r;
	struct event_row scratch;
	int32_t id;
	size_t used, stop, deepest;

	if (store && !reserve(b, cap))
		return ELEMENT_NO_MEMORY;
	r = store ? add_scanned(b, body + p, len - p, defs, &used)
		  : item_scan(body + p, len - p, defs, &scratch, &id, &used, NULL, NULL);
	if (r == ITEM_SCAN_NO_MEMORY)
		return ELEMENT_NO_MEMORY;
	if (r == ITEM_SCAN_OK) {
		*end = p + used;
		return *end < len && (body[*end] == ',' || body[*end] == ']') ? ELEMENT_READ
									      : ELEMENT_INVALID;
	}
	/* too deep inside the body's own array: Jansson refuses the body */
	if ((*end = stop = element_end(body, len, p, &deepest)) == len ||
	    deepest + 1 > JSON_DEPTH_MAX)
		return ELEMENT_INVALID;
	while (stop > p && is_ws(body[stop - 1]))
		stop--;
	return read_with_jansson(b, body + p, stop - p, store, defs);
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

	memset(b, 0, sizeof(*b));
	if (p == len || body[p] != '[')
		return body_error(body, len, detail, detail_len);
	p = skip_ws(body, len, p + 1);
	if (p < len && body[p] == ']')
		goto closed;
	for (;;) {
		size_t end;

		/* past the limit the rest is only parsed: to tell invalid JSON
		 * (row 10) from too many items (row 11), and to count them */
		counted++;
		switch (read_element(b, body, len, p, &end, counted <= (size_t)max_items, defs,
				     &cap)) {
		case ELEMENT_READ: break;
		case ELEMENT_INVALID: goto refused;
		case ELEMENT_NO_MEMORY: goto no_memory;
		}
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
