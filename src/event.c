/*
 * event.c - the Event field table and item validation (SPEC §5).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "event.h"

#define OPT (FF_NULLABLE)

const struct event_field event_fields[EVENT_NFIELDS] = {
	{"event_ID", "Event_ID", FT_INT32, FF_REQUIRED | FF_KEY, 0},
	{"claim_Audit_Event", "Claim_Audit_Event", FT_BOOL, FF_REQUIRED, 0},
	{"completion_Date", "Completion_Date", FT_DATETIME, OPT, 0},
	{"completion_Percent", "Completion_Percent", FT_DOUBLE, OPT, 0},
	{"due_Date", "Due_Date", FT_DATETIME, OPT, 0},
	{"end_Date", "End_Date", FT_DATETIME, OPT, 0},
	{"entry_Date", "Entry_Date", FT_DATETIME, FF_DEFAULT_NOW | FF_KEEP, 0},
	{"entry_User", "Entry_User", FT_STRING, OPT | FF_DEFAULT_USER | FF_KEEP, 20},
	{"event_Processor", "Event_Processor", FT_STRING, OPT, 256},
	{"event_Type", "Event_Type", FT_STRING, OPT, 32},
	{"meta_Data", "Meta_Data", FT_STRING, OPT, 0},
	{"next_Scheduled_Date", "Next_Scheduled_Date", FT_DATETIME, OPT, 0},
	{"next_Scheduled_Time", "Next_Scheduled_Time", FT_DATETIME, OPT, 0},
	{"priority", "Priority", FT_STRING, OPT, 32},
	{"process_Automation_Event", "Process_Automation_Event", FT_BOOL, FF_REQUIRED, 0},
	{"reminder", "Reminder", FT_BOOL, FF_REQUIRED, 0},
	{"reminder_Event_ID", "Reminder_Event_ID", FT_INT32, OPT, 0},
	{"reportSeries_Key", "ReportSeries_Key", FT_INT32, OPT, 0},
	{"start_Date", "Start_Date", FT_DATETIME, OPT, 0},
	{"status", "Status", FT_STRING, OPT, 32},
	{"subject", "Subject", FT_STRING, OPT, 512},
	{"update_Date", "Update_Date", FT_DATETIME, FF_DEFAULT_NOW, 0},
	{"update_User", "Update_User", FT_STRING, OPT | FF_DEFAULT_USER, 20},
	{"userGroup_Key", "UserGroup_Key", FT_INT32, OPT, 0},
	{"user_ID", "User_ID", FT_STRING, OPT, 20},
};

const int event_kept[EVENT_NKEPT] = {6, 7}; /* entry_Date, entry_User */

int
event_field_index(const char *name)
{
	for (int i = 0; i < EVENT_NFIELDS; i++)
		if (strcmp(event_fields[i].json, name) == 0)
			return i;
	return -1;
}

/* Append "field: rule" to err, separated by "; ". */
static void
add_error(char *err, const char *field, const char *rule)
{
	size_t used = strlen(err);

	if (used >= EVENT_ERR_MAX - 1)
		return;
	snprintf(err + used, EVENT_ERR_MAX - used, "%s%s: %s", used ? "; " : "", field, rule);
}

/* Count code points of valid UTF-8 (Jansson guarantees validity). */
static size_t
utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xC0) != 0x80;
	return n;
}

/* Check and convert one present, non-null member; NULL or a rule broken. */
static const char *
convert(const struct event_field *f, const json_t *j, struct event_value *v, char rule[64])
{
	switch (f->type) {
	case FT_INT32:
		if (!json_is_integer(j))
			return "must be an integer";
		if (json_integer_value(j) < INT32_MIN || json_integer_value(j) > INT32_MAX)
			return "out of the int32 range";
		v->u.i = (int32_t)json_integer_value(j);
		return NULL;
	case FT_BOOL:
		if (!json_is_boolean(j))
			return "must be a boolean";
		v->u.b = json_is_true(j);
		return NULL;
	case FT_DOUBLE:
		if (!json_is_number(j))
			return "must be a number";
		v->u.d = json_number_value(j);
		return isfinite(v->u.d) ? NULL : "must be finite";
	case FT_STRING:
		if (!json_is_string(j))
			return "must be a string";
		v->u.s.ptr = json_string_value(j);
		v->u.s.len = json_string_length(j);
		if (memchr(v->u.s.ptr, '\0', v->u.s.len) != NULL)
			return "must not contain a NUL character";
		if (f->max_chars && utf8_chars(v->u.s.ptr, v->u.s.len) > f->max_chars) {
			snprintf(rule, 64, "longer than %u characters", f->max_chars);
			return rule;
		}
		return NULL;
	case FT_DATETIME:
		if (!json_is_string(j))
			return "must be a date-time string";
		if (!eb_time_parse(json_string_value(j), json_string_length(j), &v->u.t))
			return "not a valid date-time (YYYY-MM-DD or "
			       "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM])";
		return NULL;
	}
	return "unknown type";
}

void
event_apply_default(const struct event_field *f, const struct event_defaults *defs,
		    struct event_value *v)
{
	v->given = false;
	v->null = true;
	if (f->flags & FF_DEFAULT_NOW) {
		v->null = false;
		v->u.t = defs->now;
	} else if ((f->flags & FF_DEFAULT_USER) && defs->user != NULL) {
		v->null = false;
		v->u.s.ptr = defs->user;
		v->u.s.len = strlen(defs->user);
	}
}

bool
event_validate(const json_t *item, const struct event_defaults *defs, struct event_row *row,
	       int32_t *id, bool *id_valid, char err[EVENT_ERR_MAX])
{
	err[0] = '\0';
	*id_valid = false;
	*id = 0;
	if (!json_is_object(item)) {
		add_error(err, "item", "must be a JSON object");
		return false;
	}
	for (int i = 0; i < EVENT_NFIELDS; i++) {
		const struct event_field *f = &event_fields[i];
		const json_t *j = json_object_get(item, f->json);
		struct event_value *v = &row->v[i];
		const char *rule;
		char buf[64];

		if (j == NULL) {
			if (f->flags & FF_REQUIRED)
				add_error(err, f->json, "required");
			event_apply_default(f, defs, v);
			continue;
		}
		v->given = true;
		v->null = json_is_null(j);
		if (v->null) {
			if (!(f->flags & FF_NULLABLE))
				add_error(err, f->json, "must not be null");
			continue;
		}
		rule = convert(f, j, v, buf);
		if (rule != NULL)
			add_error(err, f->json, rule);
		else if (i == EVENT_KEY) {
			*id = v->u.i;
			*id_valid = true;
		}
	}
	return err[0] == '\0';
}
