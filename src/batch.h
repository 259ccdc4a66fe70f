/*
 * batch.h - the request body, parsed and validated one item at a time.
 *
 * A batch of 10,000 events is 7 MB of JSON; as one Jansson tree it takes
 * five times that.  Here each array element is parsed by Jansson on its
 * own, validated into a row whose strings are copied out, and freed before
 * the next, so a worker holds the body and the rows, never the whole tree.
 */
#ifndef EB_BATCH_H
#define EB_BATCH_H

#include <stddef.h>

#include "error.h"
#include "event.h"

struct text_block;

struct batch {
	size_t n_items;              /* elements of the array */
	struct item_result *results; /* one per item: its id; 400 and why if invalid */
	struct event_row *rows;      /* the valid items, in batch order */
	size_t *row_item;            /* rows[k] is item row_item[k] */
	size_t n_rows;
	struct text_block *text; /* the rows' strings */
};

/*
 * Parse body (len > 0) as a JSON array of at most max_items items and
 * validate each item with defs.  EB_OK: *b holds every item's result and
 * the rows of the valid ones.  Otherwise detail says why the whole body is
 * refused (invalid JSON, not an array, too many items, out of memory) and
 * *b is empty.  Either way, batch_free(b) afterwards.
 */
enum eb_err batch_parse(const char *body, size_t len, long max_items,
			const struct event_defaults *defs, struct batch *b, char *detail,
			size_t detail_len);

/* Forget the stored outcome of the valid items (201, 200 or 500), keeping
 * their ids and the invalid items' 400s: before the batch is written again. */
void batch_reset_stored(struct batch *b);

void batch_free(struct batch *b);

#endif
