/*
 * fuzz_token.c - an Authorization header through the bearer-token checks,
 * with an HS256 secret, an issuer, an audience and a database claim set.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char secret[] = "fuzz-secret-0123456789abcdef0123456789";
	static struct eb_config cfg = {
		.jwt_alg = JWT_ALG_HS256,
		.jwt_key = (unsigned char *)secret,
		.jwt_key_len = sizeof(secret) - 1,
		.jwt_issuer = "https://issuer.example",
		.jwt_audience = "events-batch",
		.jwt_user_claim = "sub",
		.jwt_database_claim = "dbs",
		.clock_skew_seconds = 60,
		.jwt_max_lifetime_seconds = 86400,
	};
	char *header = malloc(size + 1), detail[256];
	struct auth_principal who;

	if (header == NULL)
		return 0;
	memcpy(header, data, size);
	header[size] = '\0';
	if (auth_bearer(&cfg, header, 1800000000, &who, detail, sizeof(detail)) == EB_OK) {
		auth_database(&cfg, &who, "demo", detail, sizeof(detail));
		auth_principal_free(&who);
	}
	free(header);
	return 0;
}
