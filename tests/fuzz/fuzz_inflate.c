/*
 * fuzz_inflate.c - compressed request bodies (SPEC §10): the first byte
 * picks the Content-Encoding (even: gzip, odd: deflate) and, with the
 * second, how many bytes each read gives; the rest is the body.  Whatever
 * the bytes, http_read_body returns a body within the limit or an error
 * and no body, never more than it was given to read.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "../unit/memtransport.h"

#define FUZZ_MAX 65536

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *params[] = {"HTTP_CONTENT_ENCODING", NULL, NULL};
	char detail[256], *body;
	size_t len;
	struct eb_transport t;
	struct memtransport m;
	enum eb_err err;

	if (size < 2)
		return 0;
	params[1] = data[0] % 2 == 0 ? "gzip" : "deflate";
	memtransport_init(&t, &m, params, NULL);
	m.body = (const char *)data + 2;
	m.body_len = size - 2;
	m.read_chunk = 1 + (size_t)data[1] * (data[0] >> 1);
	err = http_read_body(&t, FUZZ_MAX, &body, &len, detail, sizeof(detail));
	if (m.body_pos > m.body_len)
		abort();
	if (err == EB_OK) {
		if (body == NULL || len > FUZZ_MAX || body[len] != '\0')
			abort();
		free(body);
	} else if (body != NULL || (err != EB_ERR_BODY_INVALID && err != EB_ERR_BODY_TOO_LARGE &&
				    err != EB_ERR_INTERNAL)) {
		abort();
	}
	return 0;
}
