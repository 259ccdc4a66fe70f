/*
 * fuzz_body.c - a request body through batch_parse (framing, JSON parsing
 * and item validation) to rows, as handler.c does it; and a differential
 * check: the verdict and every item's result must be what Jansson parsing
 * the whole body at once, then validating each element, gives.  The input
 * is also read as one item by item_scan (batch.c's fast path), which must
 * give exactly what Jansson and event_validate give whenever it answers.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "event.h"
#include "item_scan.h"

#define MAX_ITEMS 8 /* small, so that "too many items" is reached too */

static const struct event_defaults defs = {.now = {2026, 1, 1, 0, 0, 0, 0}, .user = "fuzz"};

/* Every field of two valid rows is the same: flags, int32, bool, the
 * double's bits, the strings' bytes, the date-times. */
static void
rows_agree(const struct event_row *got_row, const struct event_row *want_row)
{
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		const struct event_value *got = &got_row->v[f], *want = &want_row->v[f];
		if (got->null != want->null || got->given != want->given)
			abort();
		if (got->null)
			continue;
		switch (event_fields[f].type) {
		case FT_INT32:
			if (got->u.i != want->u.i)
				abort();
			break;
		case FT_BOOL:
			if (got->u.b != want->u.b)
				abort();
			break;
		case FT_DOUBLE:
			if (memcmp(&got->u.d, &want->u.d, sizeof(double)) != 0)
				abort();
			break;
		case FT_STRING:
			if (got->u.s.len != want->u.s.len ||
			    memcmp(got->u.s.ptr, want->u.s.ptr, got->u.s.len) != 0)
				abort();
			break;
		case FT_DATETIME:
			if (memcmp(&got->u.t, &want->u.t, sizeof(got->u.t)) != 0)
				abort();
			break;
		}
	}
}

/* Item i of the whole tree validates as batch_parse said it did. */
static void
check_item(const struct batch *b, const json_t *item, size_t i, size_t *row)
{
	const struct item_result *res = &b->results[i];
	struct event_row want;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid, ok = event_validate(item, &defs, &want, &id, &id_valid, err);

	if (ok != (res->status != 400) || id_valid != res->id_valid || (id_valid && id != res->id))
		abort();
	if (!ok) {
		if (strcmp(err, res->detail) != 0)
			abort();
		return;
	}
	if (*row >= b->n_rows || b->row_item[*row] != i)
		abort();
	rows_agree(&b->rows[*row], &want);
	(*row)++;
}

/* A bump arena for the strings item_scan copies out. */
static char fuzz_arena[1 << 20];
static size_t fuzz_arena_used;

static char *
arena_alloc(void *ctx, size_t len)
{
	char *p = fuzz_arena + fuzz_arena_used;

	(void)ctx;
	if (sizeof(fuzz_arena) - fuzz_arena_used < len)
		abort(); /* the decoded strings are never longer than the input */
	fuzz_arena_used += len;
	return p;
}

/* item_scan on the whole input: when it answers, Jansson parsing the bytes
 * it read accepts them and event_validate gives the same row. */
static void
check_item_scan(const char *s, size_t size)
{
	struct event_row got, want;
	char err[EVENT_ERR_MAX];
	int32_t id, want_id;
	bool id_valid;
	size_t used = 0;
	enum item_scan_result r;
	json_t *item;

	if (size > sizeof(fuzz_arena) - 64)
		return;
	fuzz_arena_used = 0;
	r = item_scan(s, size, &defs, &got, &id, &used, arena_alloc, NULL);
	if (r == ITEM_SCAN_NO_MEMORY)
		abort();
	if (r != ITEM_SCAN_OK)
		return;
	if (used == 0 || used > size)
		abort();
	item = json_loadb(s, used, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
	if (item == NULL || !event_validate(item, &defs, &want, &want_id, &id_valid, err) ||
	    !id_valid || want_id != id)
		abort();
	rows_agree(&got, &want);
	json_decref(item);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	char detail[512];
	struct batch b;
	enum eb_err err;
	json_t *all;
	size_t row = 0;

	check_item_scan(body, size);
	if (size == 0) /* the handler answers an empty body before parsing */
		return 0;
	err = batch_parse(body, size, MAX_ITEMS, &defs, &b, detail, sizeof(detail));
	all = json_loadb(body, size, JSON_ALLOW_NUL, NULL);
	if (!json_is_array(all)) {
		if (err != EB_ERR_BODY_INVALID)
			abort();
	} else if (json_array_size(all) > MAX_ITEMS) {
		if (err != EB_ERR_TOO_MANY_ITEMS)
			abort();
	} else {
		if (err != EB_OK || b.n_items != json_array_size(all))
			abort();
		for (size_t i = 0; i < b.n_items; i++)
			check_item(&b, json_array_get(all, i), i, &row);
		if (row != b.n_rows)
			abort();
	}
	json_decref(all);
	batch_free(&b);
	return 0;
}
