/*
 * test-item-scan.c - the one-pass item reader against its oracle: whenever
 * item_scan answers, Jansson (on exactly the bytes it read) and
 * event_validate must accept the item and give the very same row; realistic
 * items must take the fast path, and everything invalid or unusual must be
 * left to Jansson.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "item_scan.h"

static const struct event_defaults defs = {
	.now = {2026, 1, 2, 3, 4, 5, 6},
	.user = "token-user",
};

/* The required members, so that one more member can be tried alone. */
#define REQ                                                                                        \
	"\"event_ID\":1,\"claim_Audit_Event\":true,\"process_Automation_Event\":false,"            \
	"\"reminder\":false"
#define WITH(m) "{" REQ "," m "}"
/* The rest of an item whose first member is "event_ID":<value>. */
#define REQ_REST                                                                                   \
	",\"claim_Audit_Event\":true,\"process_Automation_Event\":false,"                          \
	"\"reminder\":false}"

/* Items as gen_events.py writes them (bench/), UTF-8 and escaped quotes. */
#define REALISTIC_1                                                                                \
	"{\"event_ID\":502,\"claim_Audit_Event\":false,\"completion_Date\":"                       \
	"\"2024-05-07T04:30:00Z\",\"completion_Percent\":4.15,\"due_Date\":"                       \
	"\"2024-06-17T17:30:00Z\",\"end_Date\":\"2024-05-25T04:30:00Z\",\"entry_Date\":"           \
	"\"2024-04-26T17:30:00Z\",\"entry_User\":\"jsmith\",\"event_Processor\":"                  \
	"\"BATCH_NIGHTLY\",\"event_Type\":\"ELIGIBILITY\",\"meta_Data\":\"{\\\"src\\\":"           \
	"\\\"batch_nightly\\\",\\\"batch\\\":\\\"B222104\\\",\\\"claim\\\":\\\"C148261613\\\","    \
	"\\\"note\\\":\\\"provider eligibility check\\\",\\\"ref\\\":502}\","                      \
	"\"next_Scheduled_Date\":\"2024-06-24T17:30:00Z\",\"next_Scheduled_Time\":null,"           \
	"\"priority\":null,\"process_Automation_Event\":true,\"reminder\":false,"                  \
	"\"reminder_Event_ID\":669406,\"reportSeries_Key\":228,\"start_Date\":"                    \
	"\"2024-04-27T04:30:00Z\",\"status\":\"Closed\",\"subject\":null,\"update_Date\":"         \
	"\"2024-04-27T20:44:00Z\",\"update_User\":\"fm\xc3\xbcller\",\"userGroup_Key\":16,"        \
	"\"user_ID\":null}"
#define REALISTIC_2                                                                                \
	"{\"event_ID\":1,\"claim_Audit_Event\":false,\"completion_Date\":"                         \
	"\"2023-10-03T12:45:00Z\",\"completion_Percent\":78.87,\"due_Date\":"                      \
	"\"2023-09-26T08:45:00Z\",\"end_Date\":\"2023-10-22T12:45:00Z\",\"entry_Date\":"           \
	"\"2023-09-19T08:45:00Z\",\"entry_User\":\"jsmith\",\"event_Processor\":\"MANUAL\","       \
	"\"event_Type\":\"APPEAL\",\"meta_Data\":\"{\\\"src\\\":\\\"batch_nightly\\\","            \
	"\\\"batch\\\":\\\"B799308\\\",\\\"claim\\\":\\\"C823729238\\\",\\\"note\\\":"             \
	"\\\"claim follow-up refund\\\",\\\"ref\\\":1}\",\"next_Scheduled_Date\":null,"            \
	"\"next_Scheduled_Time\":\"1900-01-01T16:00:00Z\",\"priority\":\"High\","                  \
	"\"process_Automation_Event\":true,\"reminder\":true,\"reminder_Event_ID\":null,"          \
	"\"reportSeries_Key\":5,\"start_Date\":\"2023-09-20T12:45:00Z\",\"status\":"               \
	"\"Closed\",\"subject\":\"Bill claim r\xc3\xa9"                                            \
	"clamation\",\"update_Date\":"                                                             \
	"\"2023-09-22T16:13:00Z\",\"update_User\":\"system\",\"userGroup_Key\":36,"                \
	"\"user_ID\":\"abrown\"}"
#define REALISTIC_3                                                                                \
	"{\"event_ID\":9326,\"claim_Audit_Event\":false,\"completion_Date\":"                      \
	"\"2023-09-19T09:15:00Z\",\"completion_Percent\":null,\"due_Date\":null,\"end_Date\":"     \
	"\"2023-10-04T09:15:00Z\",\"entry_Date\":\"2023-08-26T12:15:00Z\",\"entry_User\":"         \
	"\"system\",\"event_Processor\":\"API\",\"meta_Data\":null,\"next_Scheduled_Date\":"       \
	"null,\"next_Scheduled_Time\":\"1900-01-01T14:30:00Z\",\"priority\":null,"                 \
	"\"process_Automation_Event\":true,\"reminder\":true,\"reportSeries_Key\":256,"            \
	"\"start_Date\":\"2023-08-28T09:15:00Z\",\"status\":\"Open\",\"subject\":"                 \
	"\"Appeal overpayment\",\"update_Date\":\"2023-08-31T18:09:00Z\",\"update_User\":"         \
	"\"abrown\",\"userGroup_Key\":14,\"user_ID\":\"kpatel\"}"

enum want {
	FAST, /* valid: item_scan must read it */
	SLOW, /* item_scan must leave it to Jansson (invalid, or its choice) */
};

struct item_case {
	const char *text;
	size_t len; /* the text may hold NUL bytes */
	enum want want;
};

#define C(text, want)                                                                              \
	{                                                                                          \
		text, sizeof(text) - 1, want                                                       \
	}

static const struct item_case cases[] = {
	/* realistic */
	C(REALISTIC_1, FAST),
	C(REALISTIC_2, FAST),
	C(REALISTIC_3, FAST),
	C("{" REQ "}", FAST),
	C(WITH("\"subject\":\"\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xc3\xa9\""), FAST),
	C(WITH("\"meta_Data\":\"{\\\"k\\\":\\\"v \\\\\\\" q\\\"}\""), FAST),
	/* whitespace: JSON's four, anywhere between tokens */
	C(" \t\r\n{ \"event_ID\" : 1 ,\t\"claim_Audit_Event\"\n:\rtrue , "
	  "\"process_Automation_Event\" : false , \"reminder\" : false } \n\t\r",
	  FAST),
	C("\f{" REQ "}", SLOW),
	C("{" REQ "}\f", SLOW),
	C("{" REQ "}\v", SLOW),
	C("{" REQ ",\xc2\xa0\"status\":\"a\"}", SLOW),
	/* trailing garbage, not one object */
	C("{" REQ "}x", SLOW),
	C("{" REQ "},", SLOW),
	C("{" REQ "}}", SLOW),
	C("{" REQ "} {}", SLOW),
	C("{" REQ "}\0", SLOW),
	C("{" REQ, SLOW),
	C("{" REQ ",}", SLOW),
	C("{}", SLOW),
	C("", SLOW),
	C(" ", SLOW),
	C("[]", SLOW),
	C("1", SLOW),
	C("null", SLOW),
	C("\"x\"", SLOW),
	C("{,}", SLOW),
	C("{" REQ ",,\"status\":\"a\"}", SLOW),
	C("{\"event_ID\" 1}", SLOW),
	C("{event_ID:1}", SLOW),
	C("{'event_ID':1}", SLOW),
	/* required and nullable */
	C("{\"claim_Audit_Event\":true,\"process_Automation_Event\":false,\"reminder\":false}",
	  SLOW),
	C("{\"event_ID\":1,\"process_Automation_Event\":false,\"reminder\":false}", SLOW),
	C("{\"event_ID\":null,\"claim_Audit_Event\":true,\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	C(WITH("\"entry_Date\":null"), SLOW),
	C(WITH("\"update_Date\":null"), SLOW),
	C(WITH("\"entry_User\":null"), FAST),
	C(WITH("\"update_User\":null"), FAST),
	C(WITH("\"completion_Percent\":null,\"reminder_Event_ID\":null,\"due_Date\":null"), FAST),
	C(WITH("\"status\":nul"), SLOW),
	C(WITH("\"status\":nulll"), SLOW),
	C(WITH("\"status\":Null"), SLOW),
	/* the same member twice: Jansson keeps the last, item_scan leaves it */
	C(WITH("\"event_ID\":2"), SLOW),
	C(WITH("\"status\":\"a\",\"status\":\"b\""), SLOW),
	C(WITH("\"x\":1,\"x\":2"), FAST),
	/* int32 */
	C("{\"event_ID\":-0" REQ_REST, FAST),
	C("{\"event_ID\":0" REQ_REST, FAST),
	C("{\"event_ID\":01" REQ_REST, SLOW),
	C("{\"event_ID\":1.0" REQ_REST, SLOW),
	C("{\"event_ID\":1e2" REQ_REST, SLOW),
	C("{\"event_ID\":2147483647" REQ_REST, FAST),
	C("{\"event_ID\":2147483648" REQ_REST, SLOW),
	C("{\"event_ID\":-2147483648" REQ_REST, FAST),
	C("{\"event_ID\":-2147483649" REQ_REST, SLOW),
	C("{\"event_ID\":+1" REQ_REST, SLOW),
	C("{\"event_ID\":-" REQ_REST, SLOW),
	C("{\"event_ID\":--1" REQ_REST, SLOW),
	C("{\"event_ID\":\"5\"" REQ_REST, SLOW),
	C("{\"event_ID\":true" REQ_REST, SLOW),
	C("{\"event_ID\":0x10" REQ_REST, SLOW),
	C("{\"event_ID\":1a" REQ_REST, SLOW),
	C("{\"event_ID\":999999999999999999" REQ_REST, SLOW),
	C("{\"event_ID\":9223372036854775807" REQ_REST, SLOW),
	C("{\"event_ID\":9223372036854775808" REQ_REST, SLOW),
	C("{\"event_ID\":12345678901234567890123" REQ_REST, SLOW),
	C(WITH("\"userGroup_Key\":-7,\"reportSeries_Key\":2147483647"), FAST),
	C(WITH("\"reminder_Event_ID\":[1]"), SLOW),
	C(WITH("\"reminder_Event_ID\":{}"), SLOW),
	/* double */
	C(WITH("\"completion_Percent\":21.0"), FAST),
	C(WITH("\"completion_Percent\":21"), FAST),
	C(WITH("\"completion_Percent\":-0"), FAST),
	C(WITH("\"completion_Percent\":-0.0"), FAST),
	C(WITH("\"completion_Percent\":1e2"), FAST),
	C(WITH("\"completion_Percent\":1E+2"), FAST),
	C(WITH("\"completion_Percent\":1e-2"), FAST),
	C(WITH("\"completion_Percent\":0.1"), FAST),
	C(WITH("\"completion_Percent\":1.7976931348623157e308"), FAST),
	C(WITH("\"completion_Percent\":123456789012345678"), FAST),
	C(WITH("\"completion_Percent\":-2147483649"), FAST),
	C(WITH("\"completion_Percent\":1e400"), SLOW),
	C(WITH("\"completion_Percent\":-1e400"), SLOW),
	C(WITH("\"completion_Percent\":1e-400"), SLOW),
	C(WITH("\"completion_Percent\":1.5e308e1"), SLOW),
	C(WITH("\"completion_Percent\":1."), SLOW),
	C(WITH("\"completion_Percent\":.5"), SLOW),
	C(WITH("\"completion_Percent\":1.e5"), SLOW),
	C(WITH("\"completion_Percent\":1e"), SLOW),
	C(WITH("\"completion_Percent\":1e+"), SLOW),
	C(WITH("\"completion_Percent\":00.5"), SLOW),
	C(WITH("\"completion_Percent\":NaN"), SLOW),
	C(WITH("\"completion_Percent\":Infinity"), SLOW),
	C(WITH("\"completion_Percent\":\"1\""), SLOW),
	C(WITH("\"completion_Percent\":true"), SLOW),
	C(WITH("\"completion_Percent\":1234567890123456789012345.5"), SLOW),
	/* bool */
	C("{\"event_ID\":1,\"claim_Audit_Event\":1,\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	C("{\"event_ID\":1,\"claim_Audit_Event\":tru,\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	C("{\"event_ID\":1,\"claim_Audit_Event\":True,\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	C("{\"event_ID\":1,\"claim_Audit_Event\":falsey,\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	C("{\"event_ID\":1,\"claim_Audit_Event\":\"true\",\"process_Automation_Event\":false,"
	  "\"reminder\":false}",
	  SLOW),
	/* strings: escapes */
	C(WITH("\"subject\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""), FAST),
	C(WITH("\"subject\":\"\\u0041\\u00e9\\u00E9\\u20ac\\uFFFF\\u0001\""), FAST),
	C(WITH("\"subject\":\"\\ud83d\\ude00 \\uD800\\uDC00 \\udbff\\udfff\""), FAST),
	C(WITH("\"subject\":\"\\u0000\""), SLOW),
	C(WITH("\"x\":\"\\u0000\""), SLOW),
	C(WITH("\"subject\":\"\\ud83d\""), SLOW),
	C(WITH("\"subject\":\"\\ude00\""), SLOW),
	C(WITH("\"subject\":\"\\ud83d\\u0041\""), SLOW),
	C(WITH("\"subject\":\"\\ud83dx\""), SLOW),
	C(WITH("\"subject\":\"\\ud83d\\ud83d\""), SLOW),
	C(WITH("\"subject\":\"\\u12\""), SLOW),
	C(WITH("\"subject\":\"\\u12g4\""), SLOW),
	C(WITH("\"subject\":\"\\x41\""), SLOW),
	C(WITH("\"subject\":\"\\a\""), SLOW),
	C(WITH("\"subject\":\"\\'\""), SLOW),
	C(WITH("\"subject\":\"\\U0041\""), SLOW),
	C(WITH("\"subject\":\"\\\""), SLOW),
	C(WITH("\"subject\":\"a\\\0b\""), SLOW),
	/* strings: raw control characters, NUL, DEL */
	C(WITH("\"subject\":\"a\tb\""), SLOW),
	C(WITH("\"subject\":\"a\nb\""), SLOW),
	C(WITH("\"subject\":\"a\x01"
	       "b\""),
	  SLOW),
	C(WITH("\"subject\":\"a\x1f"
	       "b\""),
	  SLOW),
	C(WITH("\"subject\":\"a\0b\""), SLOW),
	C(WITH("\"x\":\"a\0b\""), SLOW),
	C(WITH("\"subject\":\"a\x7f"
	       "b\""),
	  FAST),
	/* strings: UTF-8, every way to get it wrong */
	C(WITH("\"subject\":\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
	       "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""),
	  FAST),
	C(WITH("\"subject\":\"\x80\""), SLOW),
	C(WITH("\"subject\":\"\xbf\""), SLOW),
	C(WITH("\"subject\":\"\xc0\xaf\""), SLOW),
	C(WITH("\"subject\":\"\xc1\xbf\""), SLOW),
	C(WITH("\"subject\":\"\xe0\x80\xaf\""), SLOW),
	C(WITH("\"subject\":\"\xe0\x9f\xbf\""), SLOW),
	C(WITH("\"subject\":\"\xf0\x80\x80\xaf\""), SLOW),
	C(WITH("\"subject\":\"\xf0\x8f\xbf\xbf\""), SLOW),
	C(WITH("\"subject\":\"\xed\xa0\x80\""), SLOW),
	C(WITH("\"subject\":\"\xed\xbf\xbf\""), SLOW),
	C(WITH("\"subject\":\"\xf4\x90\x80\x80\""), SLOW),
	C(WITH("\"subject\":\"\xf5\x80\x80\x80\""), SLOW),
	C(WITH("\"subject\":\"\xf8\x88\x80\x80\x80\""), SLOW),
	C(WITH("\"subject\":\"\xff\""), SLOW),
	C(WITH("\"subject\":\"\xfe\""), SLOW),
	C(WITH("\"subject\":\"\xc3\""), SLOW),
	C(WITH("\"subject\":\"\xe6\x97\""), SLOW),
	C(WITH("\"subject\":\"\xf0\x9f\x98\""), SLOW),
	C(WITH("\"subject\":\"\xc3\xc3\xa9\""), SLOW),
	C(WITH("\"subject\":\"\xe6\x97\x41\""), SLOW),
	C(WITH("\"x\":\"\xff\""), SLOW),
	C(WITH("\"\xff\":1"), SLOW),
	C("{" REQ "}\xff", SLOW),
	C("\xef\xbb\xbf{" REQ "}", SLOW),
	C(WITH("\"subject\":\"\xc3\xa9"), SLOW),
	/* strings where other types belong */
	C(WITH("\"status\":1"), SLOW),
	C(WITH("\"status\":true"), SLOW),
	C(WITH("\"status\":[\"a\"]"), SLOW),
	C(WITH("\"subject\":\"\""), FAST),
	C(WITH("\"meta_Data\":\"\""), FAST),
	/* member names */
	C(WITH("\"event_\\u0049D\":2"), SLOW),
	C(WITH("\"Event_ID\":\"x\""), FAST),
	C(WITH("\"event_ID \":\"x\""), FAST),
	C(WITH("\"\":\"x\""), FAST),
	C(WITH("\"\xc3\xa9v\xc3\xa9nement\":1"), FAST),
	C(WITH("\"sub\\u0000ject\":1"), SLOW),
	C(WITH("\"subjec\":1"), FAST),
	C(WITH("\"subjectt\":1"), FAST),
	C(WITH("1:2"), SLOW),
	/* unknown members: every scalar is read, nested values are left to Jansson */
	C(WITH("\"u1\":\"s \\\" \\u00e9 \\ud83d\\ude00\",\"u2\":-12.5e-3,\"u3\":null,"
	       "\"u4\":true,\"u5\":false,\"u6\":0,\"u7\":123456789012345678"),
	  FAST),
	C(WITH("\"u\":1e400"), SLOW),
	C(WITH("\"u\":1234567890123456789"), SLOW),
	C(WITH("\"u\":01"), SLOW),
	C(WITH("\"u\":tru"), SLOW),
	C(WITH("\"u\":\"\\ud800\""), SLOW),
	C(WITH("\"u\":[]"), SLOW),
	C(WITH("\"u\":{}"), SLOW),
	C(WITH("\"u\":[1,{\"a\":[]}]"), SLOW),
	C(WITH("\"u\":{\"event_ID\":2}"), SLOW),
	C(WITH("\"u\":"), SLOW),
	C(WITH("\"u\""), SLOW),
	C(WITH("\"u\":undefined"), SLOW),
	/* date-times */
	C(WITH("\"due_Date\":\"2024-02-29\""), FAST),
	C(WITH("\"due_Date\":\"2024-02-30\""), SLOW),
	C(WITH("\"due_Date\":\"2023-02-29\""), SLOW),
	C(WITH("\"due_Date\":\"2024-01-01T00:00\""), FAST),
	C(WITH("\"due_Date\":\"2024-01-01T23:59:59.9999Z\""), FAST),
	C(WITH("\"due_Date\":\"2024-01-01T00:30:00+01:00\""), FAST),
	C(WITH("\"due_Date\":\"0001-01-01T00:30:00+01:00\""), SLOW),
	C(WITH("\"due_Date\":\"9999-12-31T23:30:00-01:00\""), SLOW),
	C(WITH("\"due_Date\":\"2024-01-01T24:00:00Z\""), SLOW),
	C(WITH("\"due_Date\":\"2024-01-01 00:00:00\""), SLOW),
	C(WITH("\"due_Date\":\"\""), SLOW),
	C(WITH("\"due_Date\":\"2024-01-01\\u0000\""), SLOW),
	C(WITH("\"due_Date\":\"2024\\u002d01-01\""), SLOW), /* valid, but left to Jansson */
	C(WITH("\"due_Date\":20240101"), SLOW),
	C(WITH("\"entry_Date\":\"1900-01-01T16:00:00Z\""), FAST),
};

/* Room for the strings item_scan copies out; fail_at-th call fails. */
struct arena {
	char buf[1 << 16];
	size_t used;
	int calls, fail_at;
};

static char *
arena_alloc(void *ctx, size_t len)
{
	struct arena *a = ctx;
	char *p = a->buf + a->used;

	if (++a->calls == a->fail_at || sizeof(a->buf) - a->used < len)
		return NULL;
	a->used += len;
	return p;
}

/* Two rows are the same in every field: flags, values, the double's bits,
 * the strings' bytes. */
static void
assert_rows_equal(const struct event_row *got, const struct event_row *want, const char *text)
{
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		const struct event_value *g = &got->v[f], *w = &want->v[f];
		bool same = g->given == w->given && g->null == w->null;

		if (same && !g->null) {
			switch (event_fields[f].type) {
			case FT_INT32: same = g->u.i == w->u.i; break;
			case FT_BOOL: same = g->u.b == w->u.b; break;
			case FT_DOUBLE: same = memcmp(&g->u.d, &w->u.d, sizeof(double)) == 0; break;
			case FT_STRING:
				same = g->u.s.len == w->u.s.len &&
				       memcmp(g->u.s.ptr, w->u.s.ptr, g->u.s.len) == 0;
				break;
			case FT_DATETIME:
				same = memcmp(&g->u.t, &w->u.t, sizeof(g->u.t)) == 0;
				break;
			}
		}
		if (!same)
			fail_msg("%s: field %s differs from Jansson's", text, event_fields[f].json);
	}
}

/* Read text[0..len) with item_scan as batch.c does with an element: the
 * result, and in *used how much it read. */
static enum item_scan_result
scan(const char *text, size_t len, struct event_row *row, int32_t *id, struct arena *a)
{
	size_t used = 0;
	enum item_scan_result r;

	memset(a, 0, sizeof(*a));
	r = item_scan(text, len, &defs, row, id, &used, arena_alloc, a);
	/* batch.c takes an item only when what follows it ends the element */
	return r == ITEM_SCAN_OK && used != len ? ITEM_SCAN_FALLBACK : r;
}

/* One case: item_scan answers as expected, and whenever it answers,
 * Jansson and event_validate agree on all of it. */
static void
check_case(const char *text, size_t len, enum want want)
{
	static struct arena a;
	struct event_row got, oracle;
	char err[EVENT_ERR_MAX];
	int32_t id = 0, want_id;
	bool id_valid, valid = false;
	enum item_scan_result r = scan(text, len, &got, &id, &a);
	json_t *item = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);

	if (item != NULL)
		valid = event_validate(item, &defs, &oracle, &want_id, &id_valid, err);
	if (r == ITEM_SCAN_NO_MEMORY)
		fail_msg("'%s': out of memory", text);
	if (r == ITEM_SCAN_OK) {
		if (!valid)
			fail_msg("'%s': read, but Jansson and event_validate refuse it", text);
		if (want_id != id)
			fail_msg("'%s': id %d, want %d", text, id, want_id);
		assert_rows_equal(&got, &oracle, text);
	}
	if (want == FAST && r != ITEM_SCAN_OK)
		fail_msg("'%s': left to Jansson (valid: %d)", text, valid);
	if (want == SLOW && r != ITEM_SCAN_FALLBACK)
		fail_msg("'%s': read by item_scan, expected to be left to Jansson", text);
	json_decref(item);
}

static void
every_case_agrees_with_jansson(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(cases[i].text, cases[i].len, cases[i].want);
	print_message("# %zu cases\n", sizeof(cases) / sizeof(cases[0]));
}

/* n copies of the UTF-8 (or escaped) character ch, as a string member. */
static size_t
member_of(char *out, size_t size, const char *field, const char *ch, unsigned n)
{
	size_t used = (size_t)snprintf(out, size, "{" REQ ",\"%s\":\"", field);

	for (unsigned i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, size - used, "%s", ch);
	return used + (size_t)snprintf(out + used, size - used, "\"}");
}

static void
string_limits_count_code_points(void **state)
{
	static const char *const chars[] = {
		"a",       "\xc3\xa9",       "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"\\u00e9", "\\ud83d\\ude00", "\\n"};
	char text[16384];

	(void)state;
	for (int f = 0; f < EVENT_NFIELDS; f++) {
		unsigned max = event_fields[f].max_chars;
		if (event_fields[f].type != FT_STRING || max == 0)
			continue;
		for (size_t c = 0; c < sizeof(chars) / sizeof(chars[0]); c++) {
			size_t len =
				member_of(text, sizeof(text), event_fields[f].json, chars[c], max);
			check_case(text, len, FAST);
			len = member_of(text, sizeof(text), event_fields[f].json, chars[c],
					max + 1);
			check_case(text, len, SLOW);
		}
	}
	/* meta_Data has no limit */
	check_case(text, member_of(text, sizeof(text), "meta_Data", "\\\"", 2000), FAST);
}

/* The reader must not silently leave everything to Jansson: the items of
 * the benchmark (UTF-8, escaped quotes in meta_Data) take the fast path,
 * and their strings are copies that do not point into the text. */
static void
realistic_items_take_the_fast_path(void **state)
{
	static const char *const items[] = {REALISTIC_1, REALISTIC_2, REALISTIC_3};
	static const char meta[] = "{\"src\":\"batch_nightly\",\"batch\":\"B222104\","
				   "\"claim\":\"C148261613\",\"note\":"
				   "\"provider eligibility check\",\"ref\":502}";
	static struct arena a;
	struct event_row row;
	int32_t id;
	int f;

	(void)state;
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		size_t len = strlen(items[i]);
		assert_int_equal(scan(items[i], len, &row, &id, &a), ITEM_SCAN_OK);
		for (f = 0; f < EVENT_NFIELDS; f++) {
			const struct event_value *v = &row.v[f];
			if (event_fields[f].type == FT_STRING && !v->null && v->u.s.len > 0)
				assert_true(v->u.s.ptr >= a.buf && v->u.s.ptr < a.buf + a.used);
		}
	}
	assert_int_equal(scan(REALISTIC_1, strlen(REALISTIC_1), &row, &id, &a), ITEM_SCAN_OK);
	assert_int_equal(id, 502);
	f = event_field_index("update_User");
	assert_int_equal(row.v[f].u.s.len, 8);
	assert_memory_equal(row.v[f].u.s.ptr, "fm\xc3\xbcller", 8);
	f = event_field_index("meta_Data");
	assert_int_equal(row.v[f].u.s.len, sizeof(meta) - 1);
	assert_memory_equal(row.v[f].u.s.ptr, meta, sizeof(meta) - 1);
}

/* An item is read whole from the start of a longer text: what follows is
 * the caller's (batch.c wants a ',' or ']'). */
static void
reads_one_item_and_the_whitespace_after_it(void **state)
{
	static const char text[] = "{" REQ "} \n, {\"x\":1}]";
	struct event_row row;
	int32_t id;
	size_t used = 0;

	(void)state;
	assert_int_equal(item_scan(text, sizeof(text) - 1, &defs, &row, &id, &used, NULL, NULL),
			 ITEM_SCAN_OK);
	assert_int_equal(text[used], ',');
	assert_int_equal(id, 1);
}

/* Absent fields get event_validate's defaults, the user copied too. */
static void
defaults_are_applied_and_copied(void **state)
{
	static struct arena a;
	struct event_row row;
	int32_t id;
	int f;

	(void)state;
	assert_int_equal(scan("{" REQ "}", strlen("{" REQ "}"), &row, &id, &a), ITEM_SCAN_OK);
	f = event_field_index("entry_User");
	assert_false(row.v[f].given);
	assert_false(row.v[f].null);
	assert_true(row.v[f].u.s.ptr != defs.user);
	assert_memory_equal(row.v[f].u.s.ptr, "token-user", row.v[f].u.s.len);
	f = event_field_index("update_Date");
	assert_false(row.v[f].null);
	assert_memory_equal(&row.v[f].u.t, &defs.now, sizeof(defs.now));
	assert_true(row.v[event_field_index("subject")].null);
}

/* Each string copied out can fail: the answer is "no memory", never a
 * half row taken for a whole one. */
static void
every_allocation_failure_is_reported(void **state)
{
	static struct arena a;
	struct event_row row;
	int32_t id;
	size_t used;
	int n;

	(void)state;
	for (n = 1;; n++) {
		enum item_scan_result r;
		memset(&a, 0, sizeof(a));
		a.fail_at = n;
		r = item_scan(REALISTIC_1, strlen(REALISTIC_1), &defs, &row, &id, &used,
			      arena_alloc, &a);
		if (a.calls < n) {
			assert_int_equal(r, ITEM_SCAN_OK);
			break;
		}
		assert_int_equal(r, ITEM_SCAN_NO_MEMORY);
	}
	assert_true(n > 5);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(every_case_agrees_with_jansson),
	cmocka_unit_test(string_limits_count_code_points),
	cmocka_unit_test(realistic_items_take_the_fast_path),
	cmocka_unit_test(reads_one_item_and_the_whitespace_after_it),
	cmocka_unit_test(defaults_are_applied_and_copied),
	cmocka_unit_test(every_allocation_failure_is_reported),
};

RUN_TESTS(tests)
