/*
 * conf.h - the INI configuration of SPEC §3, validated completely at start-up.
 */
#ifndef EB_CONF_H
#define EB_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <jwt.h>

#define EB_SHA256_LEN 32
#define EB_DB_NAME_MAX 64

struct eb_database {
	char name[EB_DB_NAME_MAX + 1];
	char *connect; /* ODBC connection string: a secret, never logged */
};

/* Most requests one FastCGI worker process serves at once. */
#define EB_THREADS_MAX 64

/* rate_per_second at most; rate_burst at most. */
#define EB_RATE_MAX 1000000
#define EB_BURST_MAX 1000000000
/* rate_state_dir when rate_per_second is set and it is not. */
#define EB_RATE_STATE_DIR "/run/events-batch"
/* rate_state_dir's length at most, in bytes. */
#define EB_RATE_DIR_MAX 1024

struct eb_config {
	long long max_body_bytes;
	long max_batch_items;
	int threads;              /* FastCGI: requests a worker process serves at once */
	int read_timeout_seconds; /* FastCGI: a stalled connection is closed */
	int failover_seconds;     /* a batch cut by a failover runs again this long */
	long rate_per_second;     /* tokens per second per API key; 0: no limit */
	long rate_burst;          /* bucket size; default 2 x rate_per_second */
	char *rate_state_dir;     /* the buckets' files; set when rate_per_second is */

	unsigned char (*api_keys)[EB_SHA256_LEN];
	size_t n_api_keys;
	jwt_alg_t jwt_alg;
	unsigned char *jwt_key; /* HS*: the secret; RS* and ES*: the PEM text */
	size_t jwt_key_len;
	char *jwt_issuer;
	char *jwt_audience;
	char *jwt_user_claim;
	char *jwt_database_claim;
	long clock_skew_seconds;
	long jwt_max_lifetime_seconds; /* exp at most this far ahead, and exp - iat; 0: no limit */

	struct eb_database *databases;
	size_t n_databases;
};

/*
 * Read and check the file at path into *cfg (which it initialises).
 * On failure returns false, leaves nothing allocated, and writes
 * "PATH:LINE: message" into err.
 */
bool eb_config_load(const char *path, struct eb_config *cfg, char *err, size_t errlen);

/* Free what eb_config_load allocated; *cfg may then be reloaded. */
void eb_config_free(struct eb_config *cfg);

/* The configured database called name, or NULL. */
const struct eb_database *eb_config_database(const struct eb_config *cfg, const char *name);

/* Whether name has the shape of a database name: [A-Za-z0-9_.-]{1,64}. */
bool eb_database_name_ok(const char *name);

#endif
