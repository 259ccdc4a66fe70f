/*
 * datetime.h - the SPEC §5 date-time: parse, normalise to UTC, format.
 */
#ifndef EB_DATETIME_H
#define EB_DATETIME_H

#include <stdbool.h>
#include <stddef.h>

/* A UTC instant with millisecond precision, broken down. */
struct eb_time {
	int year, month, day;
	int hour, minute, second, msec;
};

/* Length of eb_time_format's output, without the NUL. */
#define EB_TIME_TEXT_LEN 23

/*
 * Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fraction]]" followed by an
 * optional "Z" or "+HH:MM"/"-HH:MM".  The offset is applied, so *out is UTC;
 * the fraction is truncated to milliseconds.  Impossible dates, and instants
 * that fall outside years 1..9999 once in UTC, are rejected.
 * Returns true on success; *out is untouched on failure.
 */
bool eb_time_parse(const char *s, size_t len, struct eb_time *out);

/* Format as "YYYY-MM-DD HH:MM:SS.SSS" into buf (EB_TIME_TEXT_LEN + 1 bytes). */
void eb_time_format(const struct eb_time *t, char *buf);

/* The current UTC time, independent of TZ. */
void eb_time_now(struct eb_time *out);

/* Milliseconds since the epoch -> broken-down UTC. */
void eb_time_from_epoch_ms(long long ms, struct eb_time *out);

#endif
