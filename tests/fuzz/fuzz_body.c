/*
 * fuzz_body.c - a request body through JSON parsing and item validation to
 * rows, as handler.c does it.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct event_defaults defs = {.now = {2026, 1, 1, 0, 0, 0, 0}, .user = "fuzz"};
	json_t *items = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
	struct event_row row;
	char err[EVENT_ERR_MAX];
	int32_t id;
	bool id_valid;
	size_t i;
	json_t *item;

	json_array_foreach(items, i, item) {
		if (event_validate(item, &defs, &row, &id, &id_valid, err)) {
			char text[EB_TIME_TEXT_LEN + 1];
			for (int f = 0; f < EVENT_NFIELDS; f++)
				if (event_fields[f].type == FT_DATETIME && !row.v[f].null)
					eb_time_format(&row.v[f].u.t, text);
		}
	}
	json_decref(items);
	return 0;
}
