/*
 * fuzz_headers.c - the CGI variables the program reads before the body:
 * path (and the text of it the envelope shows), content type, content
 * length (with a body), database name.
 * The input is split at NUL bytes into those values, then the body.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf.h"
#include "http.h"
#include "../unit/memtransport.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *fields[5] = {"", "", "", "", ""}, *p,
	     path[HTTP_PATH_MAX + 1];
	char detail[256], *body, text[HTTP_PATH_TEXT_MAX];
	json_t *instance;
	size_t len;
	struct eb_transport t;
	struct memtransport m;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	p = copy;
	for (int i = 0; i < 5 && p <= copy + size; i++) {
		fields[i] = p;
		p += strlen(p) + 1;
	}
	{
		const char *params[] = {"SCRIPT_NAME",
					fields[0],
					"REQUEST_URI",
					fields[0],
					"CONTENT_TYPE",
					fields[1],
					"CONTENT_LENGTH",
					fields[2],
					"HTTP_VBASOFTWARE_DATABASE",
					fields[3],
					NULL};
		memtransport_init(&t, &m, params, fields[4]);
		m.read_chunk = 7;
		/* the path is cut only when it is not whole */
		if (http_request_path(&t, path) != (strlen(fields[0]) <= HTTP_PATH_MAX) ||
		    strlen(path) > HTTP_PATH_MAX)
			abort();
		http_path_matches(path);
		/* what the envelope shows is UTF-8 that Jansson takes */
		http_path_text(path, text);
		if ((instance = json_string(text)) == NULL)
			abort();
		json_decref(instance);
		http_content_type_ok(fields[1]);
		eb_database_name_ok(fields[3]);
		if (http_read_body(&t, 4096, &body, &len, detail, sizeof(detail)) == EB_OK)
			free(body);
	}
	free(m.out);
	free(copy);
	return 0;
}
