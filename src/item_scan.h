/*
 * item_scan.h - one Event item read in one pass over its bytes.
 *
 * The fast path of batch.c.  Jansson stays the judge: this reader answers
 * ITEM_SCAN_OK only for an item it is sure that Jansson (parsing exactly
 * its bytes with JSON_ALLOW_NUL | JSON_DECODE_ANY) and event_validate()
 * accept, with the very row they give.  Anything invalid, unusual or not
 * fully checked here is left to them, so this reader never writes an error
 * message and can only make a valid item cheaper, never change a verdict.
 */
#ifndef EB_ITEM_SCAN_H
#define EB_ITEM_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum item_scan_result {
	ITEM_SCAN_FALLBACK,  /* not sure: parse and validate with Jansson */
	ITEM_SCAN_OK,        /* a valid item: *row and *id are filled */
	ITEM_SCAN_NO_MEMORY, /* a valid item whose strings found no room */
};

/* Room for len (> 0) bytes that lives as long as the row, or NULL. */
typedef char *item_scan_alloc(void *ctx, size_t len);

/*
 * Read the Event item that s[0..len) starts with, defs filling the absent
 * fields.  ITEM_SCAN_OK: the item and the whitespace after it are
 * s[0..*used); Jansson parsing exactly those bytes reads an object that
 * event_validate() accepts, giving *row, with every string (decoded, the
 * defaults too) copied into room from alloc(ctx, n); *id is its event_ID.
 * What follows s[*used - 1], if anything, is the caller's to judge.  With
 * alloc NULL the item is only checked and the row's strings point anywhere.
 * ITEM_SCAN_NO_MEMORY: alloc failed (what it gave stays its owner's).
 * ITEM_SCAN_FALLBACK: not sure; *row is garbage, ask Jansson.
 */
enum item_scan_result item_scan(const char *s, size_t len, const struct event_defaults *defs,
				struct event_row *row, int32_t *id, size_t *used,
				item_scan_alloc *alloc, void *ctx);

#endif
