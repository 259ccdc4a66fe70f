/*
 * util.h - small helpers that belong to no single step.
 */
#ifndef EB_UTIL_H
#define EB_UTIL_H

#define UUID_TEXT_LEN 36

/* A random (version 4) UUID in lower-case text, into out[UUID_TEXT_LEN + 1]. */
void util_uuid4(char out[UUID_TEXT_LEN + 1]);

/* Route Jansson's allocations (also libjwt's, which parses with Jansson)
 * through a counter of failed ones, so that a caller can tell "out of
 * memory" from "invalid" after a parse fails. */
void util_json_alloc_init(void);
unsigned long util_json_alloc_failures(void);

/* Milliseconds on a monotonic clock, for durations. */
double util_monotonic_ms(void);

/* Sleep ms milliseconds (signals aside). */
void util_sleep_ms(double ms);

#endif
