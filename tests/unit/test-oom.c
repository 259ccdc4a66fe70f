/*
 * test-oom.c - out of memory while handling a batch: every allocation of the
 * program's own code (wrapped at link time) and of Jansson (its allocator
 * hooks) is failed in turn, and every run must end in a well-formed answer
 * (a correct 207, or a 500/503 envelope), never a crash; the sanitizer build
 * adds "never a leak".
 */
#include "unit.h"

#include <zlib.h>

#include "handler_fixture.h"
#include "util.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);

static long countdown = -1; /* allocations left before one fails; -1: never */
static bool paused;         /* the test's own transport allocates freely */
static bool failed_one;
static bool for_good; /* after the first failure, every allocation fails */

static bool
fail_now(void)
{
	if (paused)
		return false;
	if (for_good && failed_one)
		return true;
	if (countdown < 0)
		return false;
	if (countdown-- > 0)
		return false;
	failed_one = true;
	return true;
}

void *
__wrap_malloc(size_t size)
{
	return fail_now() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	return fail_now() ? NULL : __real_realloc(p, size);
}

char *
__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

static bool (*real_write)(void *ctx, const char *buf, size_t len);

static bool
unfailing_write(void *ctx, const char *buf, size_t len)
{
	bool ok;

	paused = true;
	ok = real_write(ctx, buf, len);
	paused = false;
	return ok;
}

static void
protect_transport(struct eb_transport *t)
{
	real_write = t->write;
	t->write = unfailing_write;
}

static const char batch[] =
	"[" ITEM(500, "a") ", " ITEM(501, "b") ", {\"event_ID\": \"x\"}, " ITEM(500, "c") "]";

/* The answer is a whole envelope: a 207 with the expected statuses, or a
 * request-level error of 500 or 503. */
static void
check_answer(int status, const struct memtransport *m, bool first_write)
{
	const char *body = memtransport_body(m);
	json_t *doc;

	const char *length;

	if (body == NULL)
		fail_msg("no response at all (status %d)", status);
	length = strstr(m->out, "\r\nContent-Length: ");
	if (length == NULL || length > body || strtoul(length + 18, NULL, 10) != strlen(body))
		fail_msg("Content-Length is not the body's length: %s", m->out);
	doc = json_loads(body, 0, NULL);
	if (doc == NULL)
		fail_msg("response is not JSON: %s", body);
	if (status == 207) {
		const char *want = first_write ? "201 201 400 200" : "200 200 400 200";
		char got[64] = "";
		size_t i;
		json_t *entry;
		json_array_foreach(json_object_get(doc, "data"), i, entry) snprintf(
			got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? " " : "",
			(long long)json_integer_value(json_object_get(entry, "status")));
		if (strcmp(got, want) != 0)
			fail_msg("207 with statuses '%s', want '%s': %s", got, want, body);
	} else if (status != 500 && status != 503) {
		fail_msg("unexpected status %d: %s", status, body);
	} else if (json_integer_value(json_object_get(json_object_get(doc, "error"), "status")) !=
		   status) {
		fail_msg("error envelope does not match status %d: %s", status, body);
	} else {
		/* doc/openapi.yaml: both are strings, in the fallback too */
		const char *instance = json_string_value(
			json_object_get(json_object_get(doc, "error"), "instance"));
		const char *activity = json_string_value(
			json_object_get(json_object_get(doc, "debug"), "activityID"));
		if (instance == NULL || strcmp(instance, "/events-batch") != 0)
			fail_msg("error envelope without the request path as instance: %s", body);
		if (activity == NULL || strlen(activity) != 36 || activity[14] != '4')
			fail_msg("error envelope without a UUID as activityID: %s", body);
	}
	json_decref(doc);
}

/* Run the batch once per allocation, the n-th failing (and, for_good,
 * every one after it), until a run needs fewer than n; each answer is
 * checked.  *marked counts the answers whose body holds mark (NULL: none),
 * *stored whether one was a 207 (NULL: the rows exist already, a 207
 * updates them).
 * Returns how many runs it took. */
static long
fail_in_turn(void (*adjust)(struct eb_transport *), bool each_for_good, const char *mark,
	     long *marked, bool *stored)
{
	long n;

	util_json_alloc_init(); /* as main() does: Jansson allocates through our malloc */
	for (n = 0; n < 100000; n++) {
		struct memtransport m;
		int status;

		failed_one = false;
		for_good = each_for_good;
		countdown = n;
		status = put_adjusted("test", batch, &m, adjust);
		countdown = -1;
		for_good = false;
		check_answer(status, &m, stored != NULL && !*stored);
		if (stored != NULL)
			*stored = *stored || status == 207;
		if (mark != NULL)
			*marked += strstr(memtransport_body(&m), mark) != NULL;
		free(m.out);
		if (!failed_one)
			break; /* this run needed fewer than n allocations: all covered */
	}
	return n;
}

static void
test_every_allocation_failure_ends_in_a_clean_answer(void **state)
{
	bool stored = false;
	long n;

	(void)state;
	n = fail_in_turn(protect_transport, false, NULL, NULL, &stored);
	assert_true(n > 10); /* the batch does allocate, so failures were injected */
	assert_true(stored);
	assert_int_equal(count_rows("WHERE Event_ID IN (500, 501)"), 2);
	assert_int_equal(count_rows("WHERE Event_ID = 500 AND Subject = 'c'"), 1);
}

/* Memory gone for good from the n-th allocation on: even the error
 * envelope cannot be built, and the fallback 500 (made without allocating)
 * still names the request path and its activity id. */
static void
test_memory_gone_for_good_still_gives_a_whole_envelope(void **state)
{
	long n, fallbacks = 0;

	(void)state;
	n = fail_in_turn(protect_transport, true, "out of memory building the response", &fallbacks,
			 NULL);
	assert_true(n > 10);
	assert_true(fallbacks > 0); /* the fallback itself was reached and checked */
}

/* The batch gzipped, sent as such: zlib's allocations go through malloc
 * too (http.c), and fail in turn with the rest. */
static unsigned char gz[1024];
static char gz_length[32];
static const char *(*real_param)(void *ctx, const char *name);

static const char *
gzip_param(void *ctx, const char *name)
{
	if (strcmp(name, "HTTP_CONTENT_ENCODING") == 0)
		return "gzip";
	if (strcmp(name, "CONTENT_LENGTH") == 0)
		return gz_length;
	return real_param(ctx, name);
}

static void
gzip_transport(struct eb_transport *t)
{
	struct memtransport *m = t->ctx;
	z_stream z = {0};

	protect_transport(t);
	paused = true;
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)batch;
	z.avail_in = sizeof(batch) - 1;
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	m->body = (const char *)gz;
	m->body_len = z.total_out;
	snprintf(gz_length, sizeof(gz_length), "%zu", m->body_len);
	deflateEnd(&z);
	paused = false;
	real_param = t->param;
	t->param = gzip_param;
}

static void
test_every_allocation_failure_inflating_ends_in_a_clean_answer(void **state)
{
	long n, inflate_failures = 0;

	(void)state;
	/* the first test stored the rows: a 207 here updates them (200s) */
	n = fail_in_turn(gzip_transport, false, "out of memory reading", &inflate_failures, NULL);
	assert_true(n > 10);
	assert_true(inflate_failures >= 3); /* the buffers and zlib's own state */
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_every_allocation_failure_ends_in_a_clean_answer),
	cmocka_unit_test(test_memory_gone_for_good_still_gives_a_whole_envelope),
	cmocka_unit_test(test_every_allocation_failure_inflating_ends_in_a_clean_answer),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
