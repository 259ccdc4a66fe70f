/*
 * test-auth.c - API key and bearer token checks at a fixed clock.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)secret, sizeof(secret) - 1),
			 0);
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

/* data[0..len) in base64url without padding, appended at out. */
static char *
b64url(char *out, const unsigned char *data, size_t len)
{
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);

	for (int i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	return out + n;
}

/* "Bearer <token>" for a header and payload of any bytes (libjwt makes
 * neither a crit header nor a NUL in the payload), signed with HS256. */
static void
hand_signed(char *out, const char *header, const char *payload, size_t payload_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char *input = out + 7, *p;

	strcpy(out, "Bearer ");
	p = b64url(input, (const unsigned char *)header, strlen(header));
	*p++ = '.';
	p = b64url(p, (const unsigned char *)payload, payload_len);
	HMAC(EVP_sha256(), secret, sizeof(secret) - 1, (const unsigned char *)input,
	     (size_t)(p - input), mac, &mac_len);
	*p++ = '.';
	b64url(p, mac, mac_len);
}

/* Check a hand-signed token; returns the error. */
static enum eb_err
check_raw(const char *header, const char *payload, size_t payload_len)
{
	char bearer[8192], detail[256];
	struct auth_principal who;
	enum eb_err err;

	hand_signed(bearer, header, payload, payload_len);
	err = auth_bearer(&cfg, bearer, NOW, &who, detail, sizeof(detail));
	auth_principal_free(&who);
	return err;
}

#define CLAIMS "{\"sub\": \"a\", \"exp\": 1800000100}"
#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* A literal payload, NULs and all. */
#define RAW(text) text, sizeof(text) - 1

static void
test_a_crit_header_is_refused_whatever_it_lists(void **state)
{
	(void)state;
	reset_config();
	/* the reference: signed by hand, without crit */
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS)), EB_OK);
	assert_int_equal(check_raw("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", RAW(CLAIMS)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(
		check_raw("{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", RAW(CLAIMS)),
		EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw("{\"alg\":\"HS256\",\"crit\":[]}", RAW(CLAIMS)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw("{\"alg\":\"HS256\",\"crit\":null}", RAW(CLAIMS)),
			 EB_ERR_TOKEN_INVALID);
	/* a header member given twice, or a header that is not one object */
	assert_int_equal(check_raw("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", RAW(CLAIMS)),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER "\n", RAW(CLAIMS)), EB_OK);
	assert_int_equal(check_raw(HS256_HEADER "{}", RAW(CLAIMS)), EB_ERR_TOKEN_INVALID);
}

static void
test_the_payload_is_exactly_one_json_object_in_utf8(void **state)
{
	(void)state;
	reset_config();
	/* libjwt reads a C string: what follows a NUL never reaches it */
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS "\0garbage")), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS "\0")), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS " \r\n\t")), EB_OK);
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS "{}")), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW(CLAIMS " x")), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW("\xef\xbb\xbf" CLAIMS)), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW("[" CLAIMS "]")), EB_ERR_TOKEN_INVALID);
	/* a claim that is not UTF-8, holds a NUL, or is given twice */
	assert_int_equal(check_raw(HS256_HEADER, RAW("{\"sub\": \"a\", \"x\": \"\xff\", "
						     "\"exp\": 1800000100}")),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW("{\"sub\": \"a\", \"x\": \"\\u0000\", "
						     "\"exp\": 1800000100}")),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check_raw(HS256_HEADER, RAW("{\"sub\": \"a\", \"sub\": \"b\", "
						     "\"exp\": 1800000100}")),
			 EB_ERR_TOKEN_INVALID);
	/* the reference for those three: an unknown claim is fine */
	assert_int_equal(check_raw(HS256_HEADER, RAW("{\"sub\": \"a\", \"x\": \"\\u00e9\", "
						     "\"exp\": 1800000100}")),
			 EB_OK);
}

static void
test_lifetime_and_iat(void **state)
{
	(void)state;
	reset_config();
	cfg.jwt_max_lifetime_seconds = 86400;
	/* exp at most the lifetime ahead, allowing the skew (60) */
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800086460}", NULL, 0), EB_OK);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1800086461}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	/* exp - iat at most the lifetime */
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1799999900, \"exp\": 1800086300}", NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1799999899, \"exp\": 1800086300}", NULL, 0),
		EB_ERR_TOKEN_INVALID);
	/* iat in the future beyond the skew; iat must be a number */
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1800000060, \"exp\": 1800000100}", NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1800000061, \"exp\": 1800000100}", NULL, 0),
		EB_ERR_TOKEN_INVALID);
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": \"1800000000\", \"exp\": 1800000100}", NULL, 0),
		EB_ERR_TOKEN_INVALID);
	/* 0: no limit on the lifetime, the future iat still refused */
	cfg.jwt_max_lifetime_seconds = 0;
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1000000000, \"exp\": 2100000000}", NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"iat\": 1800000061, \"exp\": 1800000100}", NULL, 0),
		EB_ERR_TOKEN_INVALID);
}

static void
test_api_key_matches_any_configured_hash_and_names_it(void **state)
{
	size_t index = 99;

	(void)state;
	reset_config();
	assert_int_equal(auth_api_key(&cfg, "key-one", &index), EB_OK);
	assert_int_equal(index, 0);
	assert_int_equal(auth_api_key(&cfg, "key-two", &index), EB_OK);
	assert_int_equal(index, 1);
	assert_int_equal(auth_api_key(&cfg, "key-three", NULL), EB_ERR_API_KEY);
	assert_int_equal(auth_api_key(&cfg, "", NULL), EB_ERR_API_KEY);
	assert_int_equal(auth_api_key(&cfg, NULL, NULL), EB_ERR_API_KEY);
}

static void
test_good_token_gives_user(void **state)
{
	char user[64];

	(void)state;
	reset_config();
	assert_int_equal(check("{\"sub\": \"alice\", \"exp\": 1800000100}", user, sizeof(user)),
			 EB_OK);
	assert_string_equal(user, "alice");
	cfg.jwt_user_claim = "preferred_username";
	assert_int_equal(
		check("{\"sub\": \"x\", \"preferred_username\": \"bob\", \"exp\": 1800000100}",
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
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1799999939}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\"}", NULL, 0), EB_ERR_TOKEN_INVALID);
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": \"1800000100\"}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"nbf\": 1800000050}", NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"nbf\": 1800000061}", NULL, 0),
		EB_ERR_TOKEN_INVALID);
	cfg.clock_skew_seconds = 0;
	assert_int_equal(check("{\"sub\": \"a\", \"exp\": 1799999999}", NULL, 0),
			 EB_ERR_TOKEN_INVALID);
}

static void
test_issuer_and_audience(void **state)
{
	(void)state;
	reset_config();
	cfg.jwt_issuer = "https://issuer.example";
	cfg.jwt_audience = "events-batch";
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
		      "\"aud\": \"events-batch\"}",
		      NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
		      "\"aud\": [\"other\", \"events-batch\"]}",
		      NULL, 0),
		EB_OK);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://evil.example\", "
		      "\"aud\": \"events-batch\"}",
		      NULL, 0),
		EB_ERR_TOKEN_INVALID);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\", "
		      "\"aud\": [\"other\"]}",
		      NULL, 0),
		EB_ERR_TOKEN_INVALID);
	assert_int_equal(
		check("{\"sub\": \"a\", \"exp\": 1800000100, \"iss\": \"https://issuer.example\"}",
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
	assert_int_equal(check("{\"sub\": \"aaaaaaaaaaaaaaaaaaaa\", \"exp\": 1800000100}", NULL, 0),
			 EB_OK);
	assert_int_equal(
		check("{\"sub\": \"aaaaaaaaaaaaaaaaaaaaa\", \"exp\": 1800000100}", NULL, 0),
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
	assert_int_equal(auth_bearer(&cfg, NULL, NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearer", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
	assert_int_equal(auth_bearer(&cfg, "Bearer   ", NOW, &who, detail, sizeof(detail)),
			 EB_ERR_TOKEN_MISSING);
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
				"\"mixed\": [\"d\", 5]}",
				0, NULL);
	assert_int_equal(auth_database(&cfg, &who, "z", detail, sizeof(detail)), EB_OK);
	cfg.jwt_database_claim = "dbs";
	assert_int_equal(auth_database(&cfg, &who, "b", detail, sizeof(detail)), EB_OK);
	assert_int_equal(auth_database(&cfg, &who, "c", detail, sizeof(detail)),
			 EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "one";
	assert_int_equal(auth_database(&cfg, &who, "c", detail, sizeof(detail)), EB_OK);
	cfg.jwt_database_claim = "num";
	assert_int_equal(auth_database(&cfg, &who, "5", detail, sizeof(detail)),
			 EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "mixed";
	assert_int_equal(auth_database(&cfg, &who, "d", detail, sizeof(detail)),
			 EB_ERR_DATABASE_FORBIDDEN);
	cfg.jwt_database_claim = "absent";
	assert_int_equal(auth_database(&cfg, &who, "a", detail, sizeof(detail)),
			 EB_ERR_DATABASE_FORBIDDEN);
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
		assert_int_equal(auth_bearer(&cfg, header, NOW, &who, detail, sizeof(detail)),
				 EB_OK);
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
	cmocka_unit_test(test_api_key_matches_any_configured_hash_and_names_it),
	cmocka_unit_test(test_good_token_gives_user),
	cmocka_unit_test(test_exp_and_nbf_with_skew),
	cmocka_unit_test(test_issuer_and_audience),
	cmocka_unit_test(test_user_claim_must_fit),
	cmocka_unit_test(test_algorithm_is_pinned),
	cmocka_unit_test(test_a_crit_header_is_refused_whatever_it_lists),
	cmocka_unit_test(test_the_payload_is_exactly_one_json_object_in_utf8),
	cmocka_unit_test(test_lifetime_and_iat),
	cmocka_unit_test(test_bearer_scheme_parsing),
	cmocka_unit_test(test_scheme_is_case_insensitive),
	cmocka_unit_test(test_database_claim),
	cmocka_unit_test(test_remembered_token_is_still_checked_every_time),
};

RUN_TESTS(tests)
