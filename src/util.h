/*
 * util.h - small helpers that belong to no single step.
 */
#ifndef EB_UTIL_H
#define EB_UTIL_H

#define UUID_TEXT_LEN 36

/* A random (version 4) UUID in lower-case text, into out[UUID_TEXT_LEN + 1]. */
void util_uuid4(char out[UUID_TEXT_LEN + 1]);

/* Milliseconds on a monotonic clock, for durations. */
double util_monotonic_ms(void);

#endif
