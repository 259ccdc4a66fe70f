/*
 * auth.c - API key and JWT checks.
 *
 * libjwt 1.10 verifies a signature with whatever algorithm the token's header
 * names, so this file pins the algorithm to the configured one, and checks
 * the time and audience claims itself (libjwt 1.10 has no validator).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "auth.h"
#include "util.h"

/* SHA-256, fetched once per thread (freed by auth_forget_tokens): OpenSSL 3
 * looks the algorithm up again at every SHA256() call, most of an API key
 * check's work. */
static _Thread_local EVP_MD *md;

static void
sha256(const char *data, size_t len, unsigned char out[SHA256_DIGEST_LENGTH])
{
	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (md == NULL || EVP_Digest(data, len, out, NULL, md, NULL) != 1)
		SHA256((const unsigned char *)data, len, out);
}

enum eb_err
auth_api_key(const struct eb_config *cfg, const char *key, size_t *index)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	size_t found = 0;
	int match = 0;

	if (key == NULL || *key == '\0')
		return EB_ERR_API_KEY;
	sha256(key, strlen(key), digest);
	/* look at every configured hash, so timing tells nothing; the index
	 * is picked by a mask, not a branch */
	for (size_t i = 0; i < cfg->n_api_keys; i++) {
		int eq = CRYPTO_memcmp(digest, cfg->api_keys[i], SHA256_DIGEST_LENGTH) == 0;
		size_t mask = (size_t)0 - (size_t)(eq & !match);
		found |= i & mask;
		match |= eq;
	}
	if (index != NULL)
		*index = found;
	return match ? EB_OK : EB_ERR_API_KEY;
}

/* The token of "Bearer <token>" (scheme case-insensitive), or NULL. */
static const char *
bearer_token(const char *authorization, size_t *len)
{
	const char *p = authorization;
	size_t n;

	if (p == NULL)
		return NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return NULL;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*len = n;
	return n > 0 ? p : NULL;
}

/* Three non-empty base64url segments separated by two dots. */
static bool
token_shape_ok(const char *tok, size_t len)
{
	size_t seg = 0, dots = 0;

	for (size_t i = 0; i < len; i++) {
		char c = tok[i];
		if (c == '.') {
			if (seg == 0)
				return false;
			dots++;
			seg = 0;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			seg++;
		} else {
			return false;
		}
	}
	return dots == 2 && seg > 0;
}

/* A NumericDate claim: absent is fine unless required; wrong type fails. */
static bool
numeric_claim(const json_t *claims, const char *name, bool required, double *out, bool *present)
{
	const json_t *v = json_object_get(claims, name);

	*present = v != NULL;
	if (v == NULL)
		return !required;
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

/* A string claim equal to want, or an array of strings containing it. */
static bool
claim_names(const json_t *v, const char *want, bool allow_array)
{
	size_t i;
	const json_t *e;

	if (json_is_string(v))
		return strcmp(json_string_value(v), want) == 0;
	if (!allow_array || !json_is_array(v))
		return false;
	json_array_foreach(v, i, e) if (json_is_string(e) &&
					strcmp(json_string_value(e), want) == 0) return true;
	return false;
}

static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* The claim checks after the signature: a reason, or NULL when all pass. */
static const char *
check_claims(const struct eb_config *cfg, const json_t *claims, time_t now, const char **user)
{
	double exp = 0, nbf = 0, iat = 0, skew = (double)cfg->clock_skew_seconds;
	double lifetime = (double)cfg->jwt_max_lifetime_seconds;
	bool has_exp, has_nbf, has_iat;
	const json_t *u;

	if (!numeric_claim(claims, "exp", true, &exp, &has_exp))
		return has_exp ? "exp is not a number" : "the token has no exp";
	if ((double)now > exp + skew)
		return "the token has expired";
	if (!numeric_claim(claims, "nbf", false, &nbf, &has_nbf))
		return "nbf is not a number";
	if (has_nbf && (double)now + skew < nbf)
		return "the token is not valid yet";
	if (!numeric_claim(claims, "iat", false, &iat, &has_iat))
		return "iat is not a number";
	if (has_iat && (double)now + skew < iat)
		return "the token was issued in the future";
	/* the issuer's clock may run ahead of ours by the skew */
	if (lifetime > 0 && exp - (double)now > lifetime + skew)
		return "the token's exp is further ahead than jwt_max_lifetime_seconds";
	if (lifetime > 0 && has_iat && exp - iat > lifetime)
		return "the token lives longer than jwt_max_lifetime_seconds";
	if (cfg->jwt_issuer != NULL &&
	    !claim_names(json_object_get(claims, "iss"), cfg->jwt_issuer, false))
		return "the token's iss is not the configured issuer";
	if (cfg->jwt_audience != NULL &&
	    !claim_names(json_object_get(claims, "aud"), cfg->jwt_audience, true))
		return "the token's aud does not name this service";
	u = json_object_get(claims, cfg->jwt_user_claim);
	if (!json_is_string(u) || json_string_length(u) == 0)
		return "the token does not name a user";
	if (utf8_chars(json_string_value(u)) > AUTH_USER_MAX_CHARS ||
	    strlen(json_string_value(u)) != json_string_length(u))
		return "the token's user is longer than 20 characters";
	*user = json_string_value(u);
	return NULL;
}

/* The base64url segment seg[0..len) decoded into out (room for len
 * bytes): its length, or -1 when it is not base64url. */
static int
b64url_decode(const char *seg, size_t len, unsigned char *out)
{
	size_t b64_len = (len + 3) / 4 * 4;
	unsigned char b64[AUTH_TOKEN_MAX + 4];
	int n;

	if (len > AUTH_TOKEN_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		b64[i] = seg[i] == '-' ? '+' : seg[i] == '_' ? '/' : (unsigned char)seg[i];
	memset(b64 + len, '=', b64_len - len);
	n = EVP_DecodeBlock(out, b64, (int)b64_len);
	if (n < 0)
		return -1;
	n -= (int)(b64_len - len); /* EVP_DecodeBlock counts padding as zero bytes */
	return n > 0 ? n : 0;
}

/*
 * The segment seg[0..len) as exactly one JSON object in UTF-8, or NULL: its
 * decoded bytes are parsed whole (JSON_DISABLE_EOF_CHECK unset), so a NUL
 * and whatever follows it, which libjwt's parse of a C string never sees,
 * are refused, and so is a member given twice.
 */
static json_t *
segment_object(const char *seg, size_t len)
{
	unsigned char raw[AUTH_TOKEN_MAX];
	int n = b64url_decode(seg, len, raw);
	json_t *obj =
		n >= 0 ? json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL)
		       : NULL;

	if (!json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/*
 * The header's checks, on its own bytes: a reason, or NULL.  libjwt matches
 * "alg" without regard to case and trusts it, so the header is read here
 * first: RFC 7515 makes "alg" case-sensitive, and a token that names any
 * other algorithm (none, or HS* keyed with our RSA public key) never reaches
 * the signature check.  No JWS extension is understood, so a token with a
 * "crit" member is refused (RFC 7515 §4.1.11), whatever it lists.
 */
static const char *
check_header(const struct eb_config *cfg, const char *tok)
{
	json_t *head = segment_object(tok, strcspn(tok, ".")), *alg = json_object_get(head, "alg");
	const char *why = NULL;

	if (head == NULL)
		why = "the token's header is not one JSON object";
	else if (!json_is_string(alg) ||
		 strcmp(json_string_value(alg), jwt_alg_str(cfg->jwt_alg)) != 0)
		why = "the token's alg is not the configured algorithm";
	else if (json_object_get(head, "crit") != NULL)
		why = "the token's header has crit: no extension is understood";
	json_decref(head);
	return why;
}

/* Check the header, read the payload and verify the signature with the
 * configured key and algorithm: a reason, or NULL with the claims. */
static const char *
verify_signature(const struct eb_config *cfg, const char *tok, json_t **claims)
{
	const char *payload = tok + strcspn(tok, ".") + 1, *why;
	jwt_t *jwt = NULL;

	*claims = NULL;
	if ((why = check_header(cfg, tok)) != NULL)
		return why;
	/* the claims are the payload's own bytes, read whole, not libjwt's
	 * reading of them */
	*claims = segment_object(payload, strcspn(payload, "."));
	if (*claims == NULL)
		return "the token's payload is not one JSON object in UTF-8";
	if (jwt_decode(&jwt, tok, cfg->jwt_key, (int)cfg->jwt_key_len) != 0 || jwt == NULL)
		why = "the token is malformed or its signature does not verify";
	/* check_header saw the header; this guards libjwt's reading of it */
	else if (jwt_get_alg(jwt) != cfg->jwt_alg)
		why = "the token's alg is not the configured algorithm";
	jwt_free(jwt);
	if (why != NULL) {
		json_decref(*claims);
		*claims = NULL;
	}
	return why;
}

/*
 * Tokens whose signature verified, with their claims.  An integrator sends
 * the same token with every request, and verifying it again (base64, two
 * JSON parses, an HMAC or RSA check) was most of the work of a small
 * request.  An entry is found only by the whole token and the algorithm and
 * key it verified under; the time, issuer, audience and user claims are
 * still checked at every request.
 */
#define VERIFIED_MAX 4

struct verified {
	char *token; /* NULL: a free slot */
	size_t len;
	jwt_alg_t alg;
	unsigned char *key;
	size_t key_len;
	json_t *claims;
};

static _Thread_local struct verified verified[VERIFIED_MAX];
static _Thread_local unsigned verified_next;

static void
verified_drop(struct verified *v)
{
	if (v->token != NULL)
		explicit_bzero(v->token, v->len);
	free(v->token);
	free(v->key);
	json_decref(v->claims);
	memset(v, 0, sizeof(*v));
}

/* The claims of tok when it verified before under cfg's key (a new
 * reference), else NULL. */
static json_t *
verified_find(const struct eb_config *cfg, const char *tok, size_t len)
{
	for (int i = 0; i < VERIFIED_MAX; i++) {
		const struct verified *v = &verified[i];
		if (v->token != NULL && v->len == len && v->alg == cfg->jwt_alg &&
		    v->key_len == cfg->jwt_key_len && CRYPTO_memcmp(v->token, tok, len) == 0 &&
		    memcmp(v->key, cfg->jwt_key, v->key_len) == 0)
			return json_incref(v->claims);
	}
	return NULL;
}

/* Remember that tok verified under cfg's key, with these claims; when
 * memory is short, simply do not. */
static void
verified_add(const struct eb_config *cfg, const char *tok, size_t len, json_t *claims)
{
	struct verified *v = &verified[verified_next++ % VERIFIED_MAX];

	verified_drop(v);
	v->token = malloc(len);
	v->key = malloc(cfg->jwt_key_len ? cfg->jwt_key_len : 1);
	if (v->token == NULL || v->key == NULL) {
		free(v->token);
		free(v->key);
		memset(v, 0, sizeof(*v));
		return;
	}
	memcpy(v->token, tok, len);
	memcpy(v->key, cfg->jwt_key, cfg->jwt_key_len);
	v->len = len;
	v->alg = cfg->jwt_alg;
	v->key_len = cfg->jwt_key_len;
	v->claims = json_incref(claims);
}

void
auth_forget_tokens(void)
{
	for (int i = 0; i < VERIFIED_MAX; i++)
		verified_drop(&verified[i]);
	EVP_MD_free(md);
	md = NULL;
}

enum eb_err
auth_bearer(const struct eb_config *cfg, const char *authorization, time_t now,
	    struct auth_principal *out, char *detail, size_t detail_len)
{
	size_t len = 0;
	const char *p = bearer_token(authorization, &len);
	char tok[AUTH_TOKEN_MAX + 1];
	const char *why;
	json_t *claims = NULL;
	unsigned long alloc_failures = util_json_alloc_failures();

	out->claims = NULL;
	out->user = NULL;
	if (p == NULL) {
		snprintf(detail, detail_len, "an Authorization: Bearer token is required");
		return EB_ERR_TOKEN_MISSING;
	}
	if (len > AUTH_TOKEN_MAX)
		why = "the token is too long";
	else if (!token_shape_ok(p, len))
		why = "the token is not three base64url segments";
	else {
		memcpy(tok, p, len);
		tok[len] = '\0';
		if ((claims = verified_find(cfg, tok, len)) != NULL) {
			why = NULL;
		} else if ((why = verify_signature(cfg, tok, &claims)) == NULL &&
			   util_json_alloc_failures() == alloc_failures) {
			verified_add(cfg, tok, len, claims);
		}
		if (why == NULL)
			why = check_claims(cfg, claims, now, &out->user);
		explicit_bzero(tok, len);
	}
	if (util_json_alloc_failures() != alloc_failures) {
		/* not the token's fault, and a claim may have gone missing in
		 * parsing: the check could not be made */
		json_decref(claims);
		out->user = NULL;
		snprintf(detail, detail_len, "out of memory while checking the token");
		return EB_ERR_INTERNAL;
	}
	if (why != NULL) {
		json_decref(claims);
		out->user = NULL;
		snprintf(detail, detail_len, "%s", why);
		return EB_ERR_TOKEN_INVALID;
	}
	out->claims = claims;
	return EB_OK;
}

enum eb_err
auth_database(const struct eb_config *cfg, const struct auth_principal *who, const char *db,
	      char *detail, size_t detail_len)
{
	const json_t *v;
	size_t i;
	const json_t *e;

	if (cfg->jwt_database_claim == NULL)
		return EB_OK;
	v = json_object_get(who->claims, cfg->jwt_database_claim);
	if (v == NULL) {
		snprintf(detail, detail_len, "the token has no %s claim", cfg->jwt_database_claim);
		return EB_ERR_DATABASE_FORBIDDEN;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, e) if (!json_is_string(e)) goto bad_type;
	} else if (!json_is_string(v)) {
		goto bad_type;
	}
	if (claim_names(v, db, true))
		return EB_OK;
	snprintf(detail, detail_len, "the token does not grant database '%s'", db);
	return EB_ERR_DATABASE_FORBIDDEN;
bad_type:
	snprintf(detail, detail_len, "the token's %s claim is not a string or an array of strings",
		 cfg->jwt_database_claim);
	return EB_ERR_DATABASE_FORBIDDEN;
}

void
auth_principal_free(struct auth_principal *who)
{
	json_decref(who->claims);
	who->claims = NULL;
	who->user = NULL;
}
