/*
 * test-conf.c - the configuration file: every key, and a precise
 * "FILE:LINE: message" for every mistake.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static char dir[] = "/tmp/eb-conf-XXXXXX";
static char secret_path[256], conf_path[256];

#define HASH "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static int
setup(void **state)
{
	FILE *f;

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/eb.conf", dir);
	f = fopen(secret_path, "w");
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(secret_path);
	unlink(conf_path);
	rmdir(dir);
	return 0;
}

static void
write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	fputs(text, f);
	fclose(f);
}

/* A valid [auth] section, then whatever the test adds. */
static void
write_with_auth(const char *before, const char *after)
{
	char text[4096];

	snprintf(text, sizeof(text), "%s[auth]\napi_key_sha256 = " HASH "\njwt_key_file = %s\n%s",
		 before, secret_path, after);
	write_conf(text);
}

static void
expect_error(const char *want)
{
	struct eb_config cfg;
	char err[1024], full[1100];

	if (eb_config_load(conf_path, &cfg, err, sizeof(err)))
		fail_msg("config accepted, want error '%s'", want);
	snprintf(full, sizeof(full), "%s:%s", conf_path, want);
	if (strcmp(err, full) != 0)
		fail_msg("got '%s', want '%s'", err, full);
}

static void
test_full_config_is_read(void **state)
{
	struct eb_config cfg;
	char err[1024];

	(void)state;
	write_with_auth("# comment\n; another\n[limits]\nmax_body_bytes = 1000   # inline\n"
			"max_batch_items = 5\nthreads = 7\nread_timeout_seconds = 9\n"
			"failover_seconds = 0\n",
			"api_key_sha256 = " HASH "\n"
			"jwt_issuer = https://issuer.example\njwt_audience = events-batch\n"
			"jwt_user_claim = preferred_username\njwt_database_claim = dbs\n"
			"clock_skew_seconds = 0\njwt_max_lifetime_seconds = 3600\n"
			"[databases]\ndemo = Driver=SQLite3;Database=/x/demo.db\n"
			"prod.eu-1 = DSN=pg;UID=u;PWD={p #w;d}  # braces keep the # \n");
	if (!eb_config_load(conf_path, &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.max_body_bytes, 1000);
	assert_int_equal(cfg.max_batch_items, 5);
	assert_int_equal(cfg.threads, 7);
	assert_int_equal(cfg.read_timeout_seconds, 9);
	assert_int_equal(cfg.failover_seconds, 0);
	assert_int_equal(cfg.n_api_keys, 2);
	assert_int_equal(cfg.api_keys[0][0], 0x9f);
	assert_int_equal(cfg.jwt_alg, JWT_ALG_HS256);
	assert_int_equal(cfg.jwt_key_len, 32); /* trailing newline stripped */
	assert_string_equal(cfg.jwt_issuer, "https://issuer.example");
	assert_string_equal(cfg.jwt_audience, "events-batch");
	assert_string_equal(cfg.jwt_user_claim, "preferred_username");
	assert_string_equal(cfg.jwt_database_claim, "dbs");
	assert_int_equal(cfg.clock_skew_seconds, 0);
	assert_int_equal(cfg.jwt_max_lifetime_seconds, 3600);
	assert_int_equal(cfg.n_databases, 2);
	assert_string_equal(eb_config_database(&cfg, "demo")->connect,
			    "Driver=SQLite3;Database=/x/demo.db");
	assert_string_equal(eb_config_database(&cfg, "prod.eu-1")->connect,
			    "DSN=pg;UID=u;PWD={p #w;d}");
	assert_null(eb_config_database(&cfg, "other"));
	eb_config_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct eb_config cfg;
	char err[1024];

	(void)state;
	write_with_auth("", "[databases]\nd = DSN=x\n");
	assert_true(eb_config_load(conf_path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg.max_body_bytes, 16777216);
	assert_int_equal(cfg.max_batch_items, 10000);
	assert_int_equal(cfg.threads, 4);
	assert_int_equal(cfg.read_timeout_seconds, 30);
	assert_int_equal(cfg.failover_seconds, 10);
	assert_string_equal(cfg.jwt_user_claim, "sub");
	assert_int_equal(cfg.clock_skew_seconds, 60);
	assert_int_equal(cfg.jwt_max_lifetime_seconds, 86400);
	assert_null(cfg.jwt_database_claim);
	eb_config_free(&cfg);
	/* 0: no limit */
	write_with_auth("", "jwt_max_lifetime_seconds = 0\n[databases]\nd = DSN=x\n");
	assert_true(eb_config_load(conf_path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg.jwt_max_lifetime_seconds, 0);
	eb_config_free(&cfg);
}

static void
test_rate_limits(void **state)
{
	struct eb_config cfg;
	char err[1024];

	(void)state;
	/* the default: no limit, nothing else of it kept */
	write_with_auth("[limits]\nrate_burst = 9\nrate_state_dir = /x\n",
			"[databases]\nd = DSN=x\n");
	assert_true(eb_config_load(conf_path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg.rate_per_second, 0);
	assert_int_equal(cfg.rate_burst, 0);
	assert_null(cfg.rate_state_dir);
	eb_config_free(&cfg);
	/* a rate alone: burst twice the rate, the folder /run/events-batch */
	write_with_auth("[limits]\nrate_per_second = 25\n", "[databases]\nd = DSN=x\n");
	assert_true(eb_config_load(conf_path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg.rate_per_second, 25);
	assert_int_equal(cfg.rate_burst, 50);
	assert_string_equal(cfg.rate_state_dir, "/run/events-batch");
	eb_config_free(&cfg);
	write_with_auth("[limits]\nrate_per_second = 1\nrate_burst = 5\n"
			"rate_state_dir = /var/tmp/eb rates\n",
			"[databases]\nd = DSN=x\n");
	assert_true(eb_config_load(conf_path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg.rate_burst, 5);
	assert_string_equal(cfg.rate_state_dir, "/var/tmp/eb rates");
	eb_config_free(&cfg);
	write_with_auth("[limits]\nrate_per_second = 1000001\n", "");
	expect_error("2: rate_per_second: 1000001 is out of range (0 to 1000000)");
	write_with_auth("[limits]\nrate_per_second = 2.5\n", "");
	expect_error("2: rate_per_second: '2.5' is not a whole number");
	write_with_auth("[limits]\nrate_burst = 0\n", "");
	expect_error("2: rate_burst: 0 is out of range (1 to 1000000000)");
	write_with_auth("[limits]\nrate_state_dir = run/eb\n", "");
	expect_error("2: rate_state_dir: 'run/eb' is not an absolute path");
	write_with_auth("[limits]\nrate_state_dir =\n", "");
	expect_error("2: rate_state_dir: '' is not an absolute path");
}

static void
test_errors_name_file_and_line(void **state)
{
	(void)state;
	write_with_auth("[limits]\nmax_body_bytes = 12x\n", "");
	expect_error("2: max_body_bytes: '12x' is not a whole number");
	write_with_auth("[limits]\n\nmax_batch_items = 0\n", "");
	expect_error("3: max_batch_items: 0 is out of range (1 to 1000000)");
	write_with_auth("[limits]\nthreads = 0\n", "");
	expect_error("2: threads: 0 is out of range (1 to 64)");
	write_with_auth("[limits]\nthreads = 65\n", "");
	expect_error("2: threads: 65 is out of range (1 to 64)");
	write_with_auth("[limits]\nread_timeout_seconds = 0\n", "");
	expect_error("2: read_timeout_seconds: 0 is out of range (1 to 86400)");
	write_with_auth("[limits]\nfailover_seconds = 3601\n", "");
	expect_error("2: failover_seconds: 3601 is out of range (0 to 3600)");
	write_with_auth("[limits]\nmax_body_bytes = -5\n", "");
	expect_error("2: max_body_bytes: '-5' is not a whole number");
	write_with_auth("[limits]\ncolour = blue\n", "");
	expect_error("2: unknown key 'colour' in [limits]");
	write_with_auth("[server]\n", "");
	expect_error("1: unknown section [server]");
	write_with_auth("[limits\n", "");
	expect_error("1: section header lacks ']'");
	write_with_auth("key = value\n", "");
	expect_error("1: key 'key' outside of any section");
	write_with_auth("[limits]\njust words\n", "");
	expect_error("2: expected 'key = value'");
	write_with_auth("", "jwt_algorithm = none\n");
	expect_error("4: jwt_algorithm: 'none' is not one of HS256 HS384 HS512 RS256 RS384 RS512 "
		     "ES256 ES384");
	write_with_auth("", "api_key_sha256 = abc\n");
	expect_error("4: api_key_sha256: expected 64 hex digits");
	write_with_auth("", "clock_skew_seconds = 99999999\n");
	expect_error("4: clock_skew_seconds: 99999999 is out of range (0 to 86400)");
	write_with_auth("", "jwt_max_lifetime_seconds = 31622401\n");
	expect_error("4: jwt_max_lifetime_seconds: 31622401 is out of range (0 to 31622400)");
	write_with_auth("", "jwt_max_lifetime_seconds = -1\n");
	expect_error("4: jwt_max_lifetime_seconds: '-1' is not a whole number");
	write_with_auth("", "jwt_max_lifetime_seconds = 1d\n");
	expect_error("4: jwt_max_lifetime_seconds: '1d' is not a whole number");
	write_with_auth("[limits]\njwt_max_lifetime_seconds = 60\n", "");
	expect_error("2: unknown key 'jwt_max_lifetime_seconds' in [limits]");
	write_with_auth("", "[databases]\nbad/name = DSN=x\n");
	expect_error("5: database name 'bad/name' must match [A-Za-z0-9_.-]{1,64}");
	write_with_auth("", "[databases]\nd = DSN=x\nd = DSN=y\n");
	expect_error("6: database 'd' is defined twice");
	write_with_auth("", "[databases]\nd =\n");
	expect_error("5: database 'd': empty connection string");
}

static void
test_whole_file_rules(void **state)
{
	(void)state;
	write_conf("[databases]\nd = DSN=x\n");
	expect_error("1: [auth] needs at least one api_key_sha256");
	write_conf("[auth]\napi_key_sha256 = " HASH "\n[databases]\nd = DSN=x\n");
	expect_error("1: [auth] needs jwt_key_file");
	write_with_auth("", "");
	expect_error("1: [databases] names no database");
}

static void
test_key_file_problems(void **state)
{
	char text[1024], short_path[300];
	FILE *f;

	(void)state;
	write_conf("[auth]\napi_key_sha256 = " HASH "\njwt_key_file = /nonexistent/key\n"
		   "[databases]\nd = DSN=x\n");
	expect_error("3: jwt_key_file: cannot open '/nonexistent/key': No such file or directory");
	snprintf(short_path, sizeof(short_path), "%s/short", dir);
	f = fopen(short_path, "w");
	fputs("tooshort\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
		 "[auth]\napi_key_sha256 = " HASH "\njwt_key_file = %s\n"
		 "[databases]\nd = DSN=x\n",
		 short_path);
	write_conf(text);
	expect_error("3: jwt_key_file: an HS* secret must be at least 32 bytes");
	/* an RS* configuration needs a PEM public key, not a secret */
	snprintf(text, sizeof(text),
		 "[auth]\napi_key_sha256 = " HASH "\njwt_algorithm = RS256\n"
		 "jwt_key_file = %s\n[databases]\nd = DSN=x\n",
		 secret_path);
	write_conf(text);
	expect_error("4: jwt_key_file: not a PEM public key (RS256 needs one)");
	unlink(short_path);
}

static void
test_missing_file(void **state)
{
	struct eb_config cfg;
	char err[1024];

	(void)state;
	assert_false(eb_config_load("/nonexistent/eb.conf", &cfg, err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/eb.conf:0: cannot open: No such file or directory");
}

static void
test_database_names(void **state)
{
	(void)state;
	assert_true(eb_database_name_ok("demo"));
	assert_true(eb_database_name_ok("A-z_0.9"));
	assert_false(eb_database_name_ok(""));
	assert_false(eb_database_name_ok("a b"));
	assert_false(eb_database_name_ok("a;b"));
	assert_true(eb_database_name_ok(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(eb_database_name_ok(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_full_config_is_read),
	cmocka_unit_test(test_defaults),
	cmocka_unit_test(test_rate_limits),
	cmocka_unit_test(test_errors_name_file_and_line),
	cmocka_unit_test(test_whole_file_rules),
	cmocka_unit_test(test_key_file_problems),
	cmocka_unit_test(test_missing_file),
	cmocka_unit_test(test_database_names),
};

int
main(void)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
