/*
 * datetime.c - date-time parsing and formatting without libc's time zone
 * machinery: civil <-> day-number arithmetic (H. Hinnant's algorithms) keeps
 * the result independent of TZ and of the C library's year limits.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "datetime.h"

static bool
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long
days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (long long)doe - 719468;
}

static void
civil_from_days(long long z, int *y, int *m, int *d)
{
	z += 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400) + (*m <= 2);
}

void
eb_time_from_epoch_ms(long long ms, struct eb_time *out)
{
	long long days = ms / 86400000, rem = ms % 86400000;

	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	civil_from_days(days, &out->year, &out->month, &out->day);
	out->hour = (int)(rem / 3600000);
	out->minute = (int)(rem / 60000 % 60);
	out->second = (int)(rem / 1000 % 60);
	out->msec = (int)(rem % 1000);
}

void
eb_time_now(struct eb_time *out)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	eb_time_from_epoch_ms((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/* Read exactly n decimal digits at *p, advancing it. */
static bool
digits(const char **p, const char *end, int n, int *out)
{
	int v = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* The time part after 'T': HH:MM[:SS[.fraction]]; sets seconds and msec. */
static bool
parse_clock(const char **p, const char *end, struct eb_time *t)
{
	if (!digits(p, end, 2, &t->hour) || !expect(p, end, ':') || !digits(p, end, 2, &t->minute))
		return false;
	if (*p < end && **p == ':') {
		(*p)++;
		if (!digits(p, end, 2, &t->second))
			return false;
		if (*p < end && **p == '.') {
			int scale = 100, n = 0;
			(*p)++;
			while (*p < end && **p >= '0' && **p <= '9') {
				t->msec += (**p - '0') * scale;
				scale /= 10;
				(*p)++;
				n++;
			}
			if (n == 0)
				return false;
		}
	}
	return t->hour <= 23 && t->minute <= 59 && t->second <= 59;
}

/* Optional zone: nothing, "Z" or "+HH:MM"/"-HH:MM"; *minutes east of UTC. */
static bool
parse_zone(const char **p, const char *end, int *minutes)
{
	int hh, mm, sign;

	*minutes = 0;
	if (*p == end)
		return true;
	if (**p == 'Z') {
		(*p)++;
		return true;
	}
	if (**p != '+' && **p != '-')
		return false;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (!digits(p, end, 2, &hh) || !expect(p, end, ':') || !digits(p, end, 2, &mm))
		return false;
	if (hh > 23 || mm > 59)
		return false;
	*minutes = sign * (hh * 60 + mm);
	return true;
}

bool
eb_time_parse(const char *s, size_t len, struct eb_time *out)
{
	const char *p = s, *end = s + len;
	struct eb_time t = {0};
	int zone = 0;

	if (!digits(&p, end, 4, &t.year) || !expect(&p, end, '-') ||
	    !digits(&p, end, 2, &t.month) || !expect(&p, end, '-') || !digits(&p, end, 2, &t.day))
		return false;
	if (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > days_in_month(t.year, t.month))
		return false;
	if (p < end) {
		if (!expect(&p, end, 'T') || !parse_clock(&p, end, &t) ||
		    !parse_zone(&p, end, &zone) || p != end)
			return false;
	}
	if (zone != 0) {
		long long ms = (days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 +
				t.minute * 60 + t.second - zone * 60) *
				       1000 +
			       t.msec;
		eb_time_from_epoch_ms(ms, &t);
		if (t.year < 1 || t.year > 9999)
			return false;
	}
	*out = t;
	return true;
}

/* Write v as exactly n decimal digits ending at end (exclusive). */
static void
put_digits(char *end, unsigned v, int n)
{
	while (n-- > 0) {
		*--end = (char)('0' + v % 10);
		v /= 10;
	}
}

void
eb_time_format(const struct eb_time *t, char *buf)
{
	/* by hand: snprintf was a twelfth of the program's instructions on a
	 * large batch; the fixed widths also cap out-of-range fields */
	memcpy(buf, "0000-00-00 00:00:00.000", EB_TIME_TEXT_LEN + 1);
	put_digits(buf + 4, (unsigned)t->year, 4);
	put_digits(buf + 7, (unsigned)t->month, 2);
	put_digits(buf + 10, (unsigned)t->day, 2);
	put_digits(buf + 13, (unsigned)t->hour, 2);
	put_digits(buf + 16, (unsigned)t->minute, 2);
	put_digits(buf + 19, (unsigned)t->second, 2);
	put_digits(buf + 23, (unsigned)t->msec, 3);
}
