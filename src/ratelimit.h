/*
 * ratelimit.h - a token bucket per API key (SPEC §9), shared by every
 * process of the host through one small mapped file per key.
 *
 * The bucket is kept as GCRA's "theoretical arrival time" (tat): the
 * monotonic instant, in nanoseconds, at which the bucket will be full again.
 * A request costs one emission interval (1 s / rate_per_second); it passes
 * when the new tat lies at most rate_burst intervals ahead of now.  That is a
 * token bucket with fractional tokens, kept in one number.
 */
#ifndef EB_RATELIMIT_H
#define EB_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* What one request drew from its key's bucket. */
struct rl_verdict {
	bool limited;       /* limits are configured: the RateLimit-* headers apply */
	bool allowed;       /* a token was taken */
	long limit;         /* rate_burst */
	long remaining;     /* whole tokens left after this request */
	long reset_seconds; /* until the bucket is full again, rounded up */
	long retry_after;   /* refused: seconds until one token, at least 1 */
};

/*
 * Take one token at monotonic time now (ns) from the bucket *tat, with
 * interval_ns per token and burst tokens.  A tat beyond anything a bucket
 * can hold (a corrupt file, a clock that restarted) counts as a full
 * bucket.  Fills *v; updates *tat only when the request is allowed.
 */
void rl_take(uint64_t *tat, uint64_t now, uint64_t interval_ns, long burst, struct rl_verdict *v);

/*
 * The check of SPEC §4 row 4a for the configured key at index key, at
 * monotonic time now_ns (ratelimit_now()).  With no limit configured it
 * only sets v->limited = false.  The state file under rate_state_dir is
 * created, repaired or replaced as needed; when it cannot be used at all,
 * the process limits the key alone, in memory, and logs that once.
 * Thread-safe.
 */
void ratelimit_check_at(const struct eb_config *cfg, size_t key, uint64_t now_ns,
			struct rl_verdict *v);

/* ratelimit_check_at at CLOCK_MONOTONIC. */
void ratelimit_check(const struct eb_config *cfg, size_t key, struct rl_verdict *v);

/* CLOCK_MONOTONIC in nanoseconds: one clock for every process of the host. */
uint64_t ratelimit_now(void);

/* The room ratelimit_headers needs: its four lines with 19 digits each
 * (LONG_MAX), and the NUL. */
#define RATELIMIT_HEADERS_MAX                                                                      \
	(sizeof("RateLimit-Limit: \r\nRateLimit-Remaining: \r\nRateLimit-Reset: \r\n"              \
		"Retry-After: \r\n") +                                                             \
	 4 * 19)

/*
 * The RateLimit-Limit, -Remaining and -Reset header lines of v (and
 * Retry-After when refused), each ending in CRLF, into buf; "" when v is
 * not limited.  A negative figure is written as 0.
 */
void ratelimit_headers(const struct rl_verdict *v, char buf[RATELIMIT_HEADERS_MAX]);

/* The name of key's state file (inside rate_state_dir) into buf. */
void ratelimit_file_name(const unsigned char key_hash[EB_SHA256_LEN], char *buf, size_t len);

/* Unmap the state files this process has mapped. */
void ratelimit_close(void);

#endif
