/*
 * test-auth.c - API key and bearer token checks at a fixed clock.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/sha.h>

#include "auth.h"

#define NOW 1800000000L
static const char secret[] = "0123456789abcdef0123456789abcdef";
static unsigned char key_hashes[2][EB_SHA256_LEN];
static struct eb_config cfg;

static void
reset_config(void)
{
	memset(&cfg, 0, sizeof(cfg));
	SHA256((const unsigned char *)"key-one", 7, key_hashes[0]);
	SHA256((const unsigned char *)"key-two", 7, key_hashes[1]);
	cfg.api_keys = key_hashes;
	cfg.n_api_keys = 2;
	cfg.jwt_alg = JWT_ALG_HS256;
	cfg.jwt_key = (unsigned char *)secret;
	cfg.jwt_key_len = sizeof(secret) - 1;
	cfg.jwt_user_claim = "sub";
	cfg.clock_skew_seconds = 60;
}

static char *
sign(jwt_alg_t alg, const char *claims)
{
	jwt_t *jwt;
	char *tok;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)secret, sizeof(secret) - 1), 0);
	tok = jwt_encode_str(jwt);
	jwt_free(jwt);
	return tok;
}

/* Check "Bearer <token for claims>"; returns the error, fills user. */
static enum eb_err
check(const char *claims, char *user, size_t user_len)
{
	char *tok = sign(JWT_ALG_HS256, claims), header[4096], detail[256];
	struct auth_principal who;
	enum eb_err err;

	snprintf(header, sizeof(header), "Bearer %s", tok);
	free(tok);
	err = auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail));
	if (user != NULL)
		snprintf(user, user_len, "%s", who.user ? who.user : "");
	auth_principal_free(&who);
	return err;
}

static void
test_api_key_matches_any_configured_hash(void **state)
{
	(void)state;
	reset_config();
	assert_int_equal(auth_api_key(&cfg, "key-one"), EB_OK);
	assert_int_equal(auth_api_key(&cfg, "key-two"), EB_OK);
	assert_int_equal(auth_api_key(&cfg, "key-three"), EB_ERR_API_KEY);
	assert_int_equal(auth_api_key(&cfg, ""), EB_ERR_API_KEY);
	assert_int_equal(auth_api_key(&cfg, NULL), EB_ERR_API_KEY);
}

static void
test_good_token_gives_user(void **state)
{
	char user[64];

	(void)state;
	reset_config();
	assert_int_equal(check("{\"sub\": \"alice\", \"exp\": 1800000100}", user, sizeof(user)), EB_OK);
	assert_string_equal(user, "alice");
	cfg.jwt_user_claim = "preferred_username";
	assert_int_equal(check("{\"sub\": \"x\", \"preferred_username\": \"bob\", \"exp\": 1800000100}",
			       user, sizeof(user)),
			 EB_OK);
	assert_string_equal(user, "bob");
}

static void
test_exp_and_nbf_with_skew(void **state)
{
	(void)state;
	reset_config();
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1799999950}", NULL, 0), EB_OK);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1799999939}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\"}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": \"1800000100\"}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"nbf\": 1800000050}", NULL, 0), EB_OK);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"nbf\": 1800000061}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	cfg.clock_skew_seconds = 0;
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1799999999}", NULL, 0), EB_ERR_TOKEN_INVALID);
}

static void
test_issuer_and_audience(void **state)
{
	(void)state;
	reset_config();
	cfg.jwt_issuer = "https://issuer.example";
	cfg.jwt_audience = "events-batch";
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
			       "\"aud\": \"events-batch\"}", NULL, 0),
			 EB_OK);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
			       "\"aud\": [\"other\", \"events-batch\"]}", NULL, 0),
			 EB_OK);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://evil.example\", "
			       "\"aud\": \"events-batch\"}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
			       "\"aud\": [\"other\"]}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\"}",
			       NULL, 0),
			 EB_ERR_TOKEN_INVALID);
}

static void
test_user_claim_must_fit(void **state)
{
	(void)state;
	reset_config();
	assert_int_equal(check("{\"exp\": 1800000100}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": 5, \"exp\": 1800000100}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"aaaaaaaaaaaaaaaaaaaa\", \"exp\": 1800000100}", NULL, 0), EB_OK);
	assert_int_equal(check("{\"sub\": \"aaaaaaaaaaaaaaaaaaaaa\", \"exp\": 1800000100}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
}

static void
test_algorithm_is_pinned(void **state)
{
	char *tok = sign(JWT_ALG_HS384, "{\"sub\": \"a\", \"exp\": 1800000100}");
	char header[4096], detail[256];
	struct auth_principal who;

	(void)state;
	reset_config();
	snprintf(header, sizeof(header), "Bearer %s", tok);
	free(tok);
	assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	assert_string_equal(detail, "the token's alg is not the configured algorithm");
	assert_null(who.claims);
}

static void
test_bearer_scheme_parsing(void **state)
{
	char detail[256];
	struct auth_principal who;

	(void)state;
	reset_config();
	assert_int_equal(auth_bearer(&cfg, NULL, NOW, &who, detail, sizeof(detail)), EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "", NOW, &who, detail, sizeof(detail)), EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearer", NOW, &who, detail, sizeof(detail)), EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearer   ", NOW, &who, detail, sizeof(detail)), EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Basic dXNlcjpwYXNz", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearerx.y.z", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearer a.b", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(auth_bearer(&cfg, "Bearer a.b.c.d", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(auth_bearer(&cfg, "Bearer a.b+.c", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(auth_bearer(&cfg, "Bearer ..", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
}

static void
test_scheme_is_case_insensitive(void **state)
{
	char *tok = sign(JWT_ALG_HS256, "{\"sub\": \"a\", \"exp\": 1800000100}");
	char header[4096], detail[256];
	struct auth_principal who;

	(void)state;
	reset_config();
	snprintf(header, sizeof(header), "bEARER  %s ", tok);
	free(tok);
	assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)), EB_OK);
	auth_principal_free(&who);
}

static void
test_database_claim(void **state)
{
	struct auth_principal who = {0};
	char detail[256];

	(void)state;
	reset_config();
	who.claims = json_loads("{\"dbs\": [\"a\", \"b\"], \"one\": \"c\", \"num\": 5, "
				"\"mixed\": [\"d\", 5]}", 0, NULL);
	assert_int_equal(auth_database(&cfg, &who, "z", detail, sizeof(detail)), EB_OK);
	cfg.jwt_database_claim = "dbs";
	assert_int_equal(auth_database(&cfg, &who, "b", detail, sizeof(detail)), EB_OK);
	assert_int_equal(auth_database(&cfg, &who, "c", detail, sizeof(detail)), EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "one";
	assert_int_equal(auth_database(&cfg, &who, "c", detail, sizeof(detail)), EB_OK);
	cfg.jwt_database_claim = "num";
	assert_int_equal(auth_database(&cfg, &who, "5", detail, sizeof(detail)), EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "mixed";
	assert_int_equal(auth_database(&cfg, &who, "d", detail, sizeof(detail)), EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "absent";
	assert_int_equal(auth_database(&cfg, &who, "a", detail, sizeof(detail)), EB_ERR_DATABASE_FORBIDDEN);
	auth_principal_free(&who);
}

/* A token that verified once is remembered, and still checked in full:
 * its claims at every request's clock, its bytes and the key exactly. */
static void
test_remembered_token_is_still_checked_every_time(void **state)
{
	static const char other[] = "fedcba9876543210fedcba9876543210";
	char *tok = sign(JWT_ALG_HS256, "{\"sub\": \"a\", \"exp\": 1800000100}");
	char header[4096], detail[256];
	struct auth_principal who;
	size_t n;
	char was;

	(void)state;
	reset_config();
	snprintf(header, sizeof(header), "Bearer %s", tok);
	free(tok);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)), EB_OK);
		assert_string_equal(who.user, "a");
		auth_principal_free(&who);
	}
	/* expired by now: the remembered claims are checked at this clock */
	assert_int_equal(auth_bearer(&cfg, header, NOW + 1000, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	auth_principal_free(&who);
	/* the same bytes under another key do not verify */
	cfg.jwt_key = (unsigned char *)other;
	assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	auth_principal_free(&who);
	cfg.jwt_key = (unsigned char *)secret;
	/* one byte of the signature changed */
	n = strlen(header);
	was = header[n - 2];
	header[n - 2] = was == 'A' ? 'B' : 'A';
	assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_INVALID);
	auth_principal_free(&who);
	header[n - 2] = was;
	auth_forget_tokens();
	assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)), EB_OK);
	auth_principal_free(&who);
	auth_forget_tokens();
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_api_key_matches_any_configured_hash),
	cmocka_unit_test(test_good_token_gives_user),
	cmocka_unit_test(test_exp_and_nbf_with_skew),
	cmocka_unit_test(test_issuer_and_audience),
	cmocka_unit_test(test_user_claim_must_fit),
	cmocka_unit_test(test_algorithm_is_pinned),
	cmocka_unit_test(test_bearer_scheme_parsing),
	cmocka_unit_test(test_scheme_is_case_insensitive),
	cmocka_unit_test(test_database_claim),
	cmocka_unit_test(test_remembered_token_is_still_checked_every_time),
};

RUN_TESTS(tests)
