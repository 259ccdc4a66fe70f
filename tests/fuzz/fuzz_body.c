/*
 * fuzz_body.c - a request body through batch_parse (framing, JSON parsing
 * and item validation) to rows, as handler.c does it; and a differential
 * check: the verdict and every item's result must be what Jansson parsing
 * the whole body at once, then validating each element, gives.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "event.h"

#define MAX_ITEMS 8 /* small, so that "too many items" is reached too */

static const struct event_defaults defs = {.now = {2026, 1, 1, 0, 0, 0, 0}, .user = "fuzz"};

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
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		const struct event_value *got = &b->rows[*row].v[f];
		if (got->null != want.v[f].null || got->given != want.v[f].given)
			abort();
		if (event_fields[f].type == FT_STRING && !got->null &&
		    (got->u.s.len != want.v[f].u.s.len ||
		     memcmp(got->u.s.ptr, want.v[f].u.s.ptr, got->u.s.len) != 0))
			abort();
		if (event_fields[f].type == FT_DATETIME && !got->null) {
			char a[EB_TIME_TEXT_LEN + 1], c[EB_TIME_TEXT_LEN + 1];
			eb_time_format(&got->u.t, a);
			eb_time_format(&want.v[f].u.t, c);
			if (strcmp(a, c) != 0)
				abort();
		}
	}
	(*row)++;
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
