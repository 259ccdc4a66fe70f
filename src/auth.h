/*
 * auth.h - who is calling: the API key, the bearer token, and the token's
 * right to the requested database (SPEC §4 rows 4, 5 and 7).
 */
#ifndef EB_AUTH_H
#define EB_AUTH_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "conf.h"
#include "error.h"

/* Longest bearer token considered at all. */
#define AUTH_TOKEN_MAX 8192
/* The user must fit entry_User / update_User. */
#define AUTH_USER_MAX_CHARS 20

struct auth_principal {
	json_t *claims;   /* the verified token's payload */
	const char *user; /* the jwt_user_claim value, inside claims */
};

/* EB_OK when key's SHA-256 equals a configured hash (constant time); the
 * index of that hash in cfg->api_keys in *index (when not NULL). */
enum eb_err auth_api_key(const struct eb_config *cfg, const char *key, size_t *index);

/*
 * Verify "Bearer <JWT>" at time now: signature with the configured key and
 * algorithm (the token's alg must equal it, and no crit header), a header
 * and a payload that are each exactly one JSON object, exp, nbf and iat
 * within the clock skew, a lifetime within jwt_max_lifetime_seconds, iss
 * and aud when configured, and a user claim.  On EB_OK *out holds
 * the claims (free with auth_principal_free).  Errors are
 * EB_ERR_TOKEN_MISSING (no bearer token sent), EB_ERR_TOKEN_INVALID, or
 * EB_ERR_INTERNAL when memory ran out during the check, with a reason in
 * detail that never quotes the token.
 */
enum eb_err auth_bearer(const struct eb_config *cfg, const char *authorization, time_t now,
			struct auth_principal *out, char *detail, size_t detail_len);

/* EB_OK unless jwt_database_claim is set and the token does not name db. */
enum eb_err auth_database(const struct eb_config *cfg, const struct auth_principal *who,
			  const char *db, char *detail, size_t detail_len);

void auth_principal_free(struct auth_principal *who);

/* Forget the tokens auth_bearer remembers as verified, and free what it
 * keeps between requests (this thread's). */
void auth_forget_tokens(void);

#endif
