/*
 * mktoken.c - sign a JWT with libjwt, for the demo and the tests.
 *
 *   mktoken ALG KEYFILE CLAIMS_JSON
 *
 * ALG is HS256..ES384; KEYFILE holds the HS secret (one trailing newline
 * stripped, as the server does) or the PEM private key.  The token goes to
 * stdout.  Not installed: issuing tokens is the identity provider's job.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

int
main(int argc, char **argv)
{
	unsigned char key[65536];
	size_t n;
	jwt_alg_t alg;
	jwt_t *jwt = NULL;
	FILE *f;
	char *tok;

	if (argc != 4) {
		fprintf(stderr, "usage: mktoken ALG KEYFILE CLAIMS_JSON\n");
		return 2;
	}
	alg = jwt_str_alg(argv[1]);
	f = fopen(argv[2], "rb");
	if (alg == JWT_ALG_INVAL || f == NULL) {
		fprintf(stderr, "mktoken: bad algorithm or unreadable key file\n");
		return 2;
	}
	n = fread(key, 1, sizeof(key) - 1, f);
	fclose(f);
	if (alg >= JWT_ALG_HS256 && alg <= JWT_ALG_HS512 && n > 0 && key[n - 1] == '\n')
		n--;
	key[n] = '\0';
	if (jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, argv[3]) != 0 ||
	    jwt_set_alg(jwt, alg, key, (int)n) != 0 || (tok = jwt_encode_str(jwt)) == NULL) {
		fprintf(stderr, "mktoken: cannot sign (bad claims JSON or key?)\n");
		jwt_free(jwt);
		return 1;
	}
	puts(tok);
	free(tok);
	jwt_free(jwt);
	return 0;
}
