/*
 * conf.c - INI reader for events-batch.conf.
 *
 * Syntax: "[section]", "key = value", whole-line comments starting with '#'
 * or ';', and trailing comments starting with whitespace then '#' (outside
 * ODBC braces, so "PWD={a #b}" survives).  ';' is never a trailing comment:
 * it separates the attributes of an ODBC connection string.
 * Every key is checked here, so a running worker never meets a bad setting.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "conf.h"

#define LINE_MAX_LEN 8192
#define KEY_FILE_MAX (64 * 1024)
/* jwt_max_lifetime_seconds: one year at most (0, no limit, is allowed) */
#define JWT_LIFETIME_MAX (366L * 86400)

enum section { SEC_NONE, SEC_LIMITS, SEC_AUTH, SEC_DATABASES };

struct parser {
	const char *path;
	int line;
	char *err;
	size_t errlen;
	struct eb_config *cfg;
	char *jwt_key_file;
	int jwt_key_line;
	int auth_line;
};

__attribute__((format(printf, 2, 3), cold)) static bool
fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, p->line);

	if (n < 0 || (size_t)n >= p->errlen)
		return false;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Cut a trailing " # comment" that is not inside {braces}. */
static void
strip_comment(char *s)
{
	int depth = 0;

	for (char *c = s; *c; c++) {
		if (*c == '{')
			depth++;
		else if (*c == '}' && depth > 0)
			depth--;
		else if (*c == '#' && depth == 0 && c > s && isspace((unsigned char)c[-1])) {
			*c = '\0';
			return;
		}
	}
}

static bool
parse_long(struct parser *p, const char *key, const char *val, long long min, long long max,
	   long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno != 0 || end == val || *end != '\0' || !isdigit((unsigned char)val[0]))
		return fail(p, "%s: '%s' is not a whole number", key, val);
	if (v < min || v > max)
		return fail(p, "%s: %lld is out of range (%lld to %lld)", key, v, min, max);
	*out = v;
	return true;
}

static bool
set_string(struct parser *p, const char *key, char **slot, const char *val)
{
	if (*val == '\0')
		return fail(p, "%s: empty value", key);
	free(*slot);
	*slot = strdup(val);
	return *slot != NULL || fail(p, "out of memory");
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool
add_api_key(struct parser *p, const char *val)
{
	struct eb_config *cfg = p->cfg;
	unsigned char(*keys)[EB_SHA256_LEN];

	if (strlen(val) != 2 * EB_SHA256_LEN)
		return fail(p, "api_key_sha256: expected 64 hex digits");
	keys = realloc(cfg->api_keys, (cfg->n_api_keys + 1) * sizeof(*keys));
	if (keys == NULL)
		return fail(p, "out of memory");
	cfg->api_keys = keys;
	for (int i = 0; i < EB_SHA256_LEN; i++) {
		int hi = hexval(val[2 * i]), lo = hexval(val[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return fail(p, "api_key_sha256: expected 64 hex digits");
		keys[cfg->n_api_keys][i] = (unsigned char)(hi << 4 | lo);
	}
	cfg->n_api_keys++;
	return true;
}

static bool
set_algorithm(struct parser *p, const char *val)
{
	static const char *const allowed[] = {"HS256", "HS384", "HS512", "RS256",
					      "RS384", "RS512", "ES256", "ES384"};

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (strcmp(val, allowed[i]) == 0) {
			p->cfg->jwt_alg = jwt_str_alg(val);
			return true;
		}
	}
	return fail(
		p,
		"jwt_algorithm: '%s' is not one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384",
		val);
}

static bool
auth_key(struct parser *p, const char *key, const char *val)
{
	struct eb_config *cfg = p->cfg;
	long long n;

	if (strcmp(key, "api_key_sha256") == 0)
		return add_api_key(p, val);
	if (strcmp(key, "jwt_algorithm") == 0)
		return set_algorithm(p, val);
	if (strcmp(key, "jwt_key_file") == 0) {
		p->jwt_key_line = p->line;
		return set_string(p, key, &p->jwt_key_file, val);
	}
	if (strcmp(key, "jwt_issuer") == 0)
		return set_string(p, key, &cfg->jwt_issuer, val);
	if (strcmp(key, "jwt_audience") == 0)
		return set_string(p, key, &cfg->jwt_audience, val);
	if (strcmp(key, "jwt_user_claim") == 0)
		return set_string(p, key, &cfg->jwt_user_claim, val);
	if (strcmp(key, "jwt_database_claim") == 0)
		return set_string(p, key, &cfg->jwt_database_claim, val);
	if (strcmp(key, "clock_skew_seconds") == 0) {
		if (!parse_long(p, key, val, 0, 86400, &n))
			return false;
		cfg->clock_skew_seconds = (long)n;
		return true;
	}
	if (strcmp(key, "jwt_max_lifetime_seconds") == 0) {
		if (!parse_long(p, key, val, 0, JWT_LIFETIME_MAX, &n))
			return false;
		cfg->jwt_max_lifetime_seconds = (long)n;
		return true;
	}
	return fail(p, "unknown key '%s' in [auth]", key);
}

static bool
limits_key(struct parser *p, const char *key, const char *val)
{
	long long n;

	if (strcmp(key, "max_body_bytes") == 0) {
		if (!parse_long(p, key, val, 2, 1LL << 30, &n))
			return false;
		p->cfg->max_body_bytes = n;
		return true;
	}
	if (strcmp(key, "max_batch_items") == 0) {
		if (!parse_long(p, key, val, 1, 1000000, &n))
			return false;
		p->cfg->max_batch_items = (long)n;
		return true;
	}
	if (strcmp(key, "read_timeout_seconds") == 0) {
		if (!parse_long(p, key, val, 1, 86400, &n))
			return false;
		p->cfg->read_timeout_seconds = (int)n;
		return true;
	}
	if (strcmp(key, "failover_seconds") == 0) {
		if (!parse_long(p, key, val, 0, 3600, &n))
			return false;
		p->cfg->failover_seconds = (int)n;
		return true;
	}
	if (strcmp(key, "rate_per_second") == 0) {
		if (!parse_long(p, key, val, 0, EB_RATE_MAX, &n))
			return false;
		p->cfg->rate_per_second = (long)n;
		return true;
	}
	if (strcmp(key, "rate_burst") == 0) {
		if (!parse_long(p, key, val, 1, EB_BURST_MAX, &n))
			return false;
		p->cfg->rate_burst = (long)n;
		return true;
	}
	if (strcmp(key, "rate_state_dir") == 0) {
		if (val[0] != '/')
			return fail(p, "rate_state_dir: '%s' is not an absolute path", val);
		if (strlen(val) > EB_RATE_DIR_MAX)
			return fail(p, "rate_state_dir: longer than %d bytes", EB_RATE_DIR_MAX);
		return set_string(p, key, &p->cfg->rate_state_dir, val);
	}
	if (strcmp(key, "threads") == 0) {
		if (!parse_long(p, key, val, 1, EB_THREADS_MAX, &n))
			return false;
		p->cfg->threads = (int)n;
		return true;
	}
	return fail(p, "unknown key '%s' in [limits]", key);
}

bool
eb_database_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > EB_DB_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

static bool
database_key(struct parser *p, const char *key, const char *val)
{
	struct eb_config *cfg = p->cfg;
	struct eb_database *dbs;

	if (!eb_database_name_ok(key))
		return fail(p, "database name '%s' must match [A-Za-z0-9_.-]{1,64}", key);
	if (eb_config_database(cfg, key) != NULL)
		return fail(p, "database '%s' is defined twice", key);
	if (*val == '\0')
		return fail(p, "database '%s': empty connection string", key);
	dbs = realloc(cfg->databases, (cfg->n_databases + 1) * sizeof(*dbs));
	if (dbs == NULL)
		return fail(p, "out of memory");
	cfg->databases = dbs;
	snprintf(dbs[cfg->n_databases].name, sizeof(dbs->name), "%s", key);
	dbs[cfg->n_databases].connect = strdup(val);
	if (dbs[cfg->n_databases].connect == NULL)
		return fail(p, "out of memory");
	cfg->n_databases++;
	return true;
}

static bool
section_line(struct parser *p, char *s, enum section *sec)
{
	size_t n = strlen(s);

	if (s[n - 1] != ']')
		return fail(p, "section header lacks ']'");
	s[n - 1] = '\0';
	s = trim(s + 1);
	if (strcmp(s, "limits") == 0)
		*sec = SEC_LIMITS;
	else if (strcmp(s, "auth") == 0) {
		*sec = SEC_AUTH;
		p->auth_line = p->line;
	} else if (strcmp(s, "databases") == 0)
		*sec = SEC_DATABASES;
	else
		return fail(p, "unknown section [%s]", s);
	return true;
}

static bool
parse_line(struct parser *p, char *s, enum section *sec)
{
	char *eq, *key, *val;

	s = trim(s);
	if (*s == '\0' || *s == '#' || *s == ';')
		return true;
	strip_comment(s);
	s = trim(s);
	if (*s == '[')
		return section_line(p, s, sec);
	eq = strchr(s, '=');
	if (eq == NULL)
		return fail(p, "expected 'key = value'");
	*eq = '\0';
	key = trim(s);
	val = trim(eq + 1);
	if (*key == '\0')
		return fail(p, "missing key before '='");
	switch (*sec) {
	case SEC_LIMITS: return limits_key(p, key, val);
	case SEC_AUTH: return auth_key(p, key, val);
	case SEC_DATABASES: return database_key(p, key, val);
	case SEC_NONE: break;
	}
	return fail(p, "key '%s' outside of any section", key);
}

/* RS* want an RSA key, ES256 a P-256 key, ES384 a P-384 key. */
static bool
check_public_key(struct parser *p, const unsigned char *pem, size_t len)
{
	jwt_alg_t alg = p->cfg->jwt_alg;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	bool ok = false;

	BIO_free(bio);
	if (key == NULL)
		return fail(p, "jwt_key_file: not a PEM public key (%s needs one)",
			    jwt_alg_str(alg));
	if (alg == JWT_ALG_RS256 || alg == JWT_ALG_RS384 || alg == JWT_ALG_RS512)
		ok = EVP_PKEY_base_id(key) == EVP_PKEY_RSA && EVP_PKEY_bits(key) >= 2048;
	else if (alg == JWT_ALG_ES256)
		ok = EVP_PKEY_base_id(key) == EVP_PKEY_EC && EVP_PKEY_bits(key) == 256;
	else if (alg == JWT_ALG_ES384)
		ok = EVP_PKEY_base_id(key) == EVP_PKEY_EC && EVP_PKEY_bits(key) == 384;
	EVP_PKEY_free(key);
	return ok || fail(p,
			  "jwt_key_file: the key does not fit %s (RS*: RSA of 2048 bits or more; "
			  "ES256: P-256; ES384: P-384)",
			  jwt_alg_str(alg));
}

static bool
load_key_file(struct parser *p)
{
	struct eb_config *cfg = p->cfg;
	FILE *f;
	size_t n;
	bool hs = cfg->jwt_alg == JWT_ALG_HS256 || cfg->jwt_alg == JWT_ALG_HS384 ||
		  cfg->jwt_alg == JWT_ALG_HS512;

	p->line = p->jwt_key_line;
	f = fopen(p->jwt_key_file, "rb");
	if (f == NULL)
		return fail(p, "jwt_key_file: cannot open '%s': %s", p->jwt_key_file,
			    strerror(errno));
	cfg->jwt_key = malloc(KEY_FILE_MAX + 1);
	n = cfg->jwt_key ? fread(cfg->jwt_key, 1, KEY_FILE_MAX + 1, f) : 0;
	if (ferror(f) || cfg->jwt_key == NULL) {
		fclose(f);
		return fail(p, "jwt_key_file: cannot read '%s'", p->jwt_key_file);
	}
	fclose(f);
	if (n > KEY_FILE_MAX)
		return fail(p, "jwt_key_file: '%s' is larger than %d bytes", p->jwt_key_file,
			    KEY_FILE_MAX);
	if (hs && n > 0 && cfg->jwt_key[n - 1] == '\n')
		n--;
	cfg->jwt_key[n] = '\0';
	cfg->jwt_key_len = n;
	if (hs)
		return n >= 32 || fail(p, "jwt_key_file: an HS* secret must be at least 32 bytes");
	return check_public_key(p, cfg->jwt_key, n);
}

/* Whole-file rules, once every line is read. */
static bool
check_complete(struct parser *p)
{
	struct eb_config *cfg = p->cfg;

	p->line = p->auth_line ? p->auth_line : 1;
	if (cfg->n_api_keys == 0)
		return fail(p, "[auth] needs at least one api_key_sha256");
	if (p->jwt_key_file == NULL)
		return fail(p, "[auth] needs jwt_key_file");
	if (cfg->jwt_user_claim == NULL &&
	    !set_string(p, "jwt_user_claim", &cfg->jwt_user_claim, "sub"))
		return false;
	if (!load_key_file(p))
		return false;
	if (cfg->rate_per_second == 0) {
		/* no limit: nothing of it is looked at again */
		free(cfg->rate_state_dir);
		cfg->rate_state_dir = NULL;
		cfg->rate_burst = 0;
	} else {
		if (cfg->rate_burst == 0)
			cfg->rate_burst = 2 * cfg->rate_per_second;
		if (cfg->rate_state_dir == NULL &&
		    !set_string(p, "rate_state_dir", &cfg->rate_state_dir, EB_RATE_STATE_DIR))
			return false;
	}
	if (cfg->n_databases == 0) {
		p->line = 1;
		return fail(p, "[databases] names no database");
	}
	return true;
}

static void
config_init(struct eb_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_body_bytes = 16777216;
	cfg->max_batch_items = 10000;
	cfg->threads = 4;
	cfg->read_timeout_seconds = 30;
	cfg->failover_seconds = 10;
	cfg->jwt_alg = JWT_ALG_HS256;
	cfg->clock_skew_seconds = 60;
	cfg->jwt_max_lifetime_seconds = 86400;
}

bool
eb_config_load(const char *path, struct eb_config *cfg, char *err, size_t errlen)
{
	struct parser p = {.path = path, .err = err, .errlen = errlen, .cfg = cfg};
	enum section sec = SEC_NONE;
	char buf[LINE_MAX_LEN];
	bool ok = true;
	FILE *f;

	config_init(cfg);
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
		return false;
	}
	while (ok && fgets(buf, sizeof(buf), f) != NULL) {
		p.line++;
		if (strchr(buf, '\n') == NULL && !feof(f))
			ok = fail(&p, "line longer than %d bytes", LINE_MAX_LEN - 2);
		else
			ok = parse_line(&p, buf, &sec);
	}
	if (ok && ferror(f))
		ok = fail(&p, "read error");
	fclose(f);
	if (ok)
		ok = check_complete(&p);
	free(p.jwt_key_file);
	if (!ok)
		eb_config_free(cfg);
	return ok;
}

void
eb_config_free(struct eb_config *cfg)
{
	for (size_t i = 0; i < cfg->n_databases; i++)
		free(cfg->databases[i].connect);
	free(cfg->databases);
	free(cfg->api_keys);
	free(cfg->jwt_key);
	free(cfg->jwt_issuer);
	free(cfg->jwt_audience);
	free(cfg->jwt_user_claim);
	free(cfg->jwt_database_claim);
	free(cfg->rate_state_dir);
	config_init(cfg);
}

const struct eb_database *
eb_config_database(const struct eb_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_databases; i++)
		if (strcmp(cfg->databases[i].name, name) == 0)
			return &cfg->databases[i];
	return NULL;
}
