#!/bin/sh
# Run every test: install what is missing (as root), then build plainly
# (warnings are errors), run `make check` with AddressSanitizer and
# UndefinedBehaviorSanitizer, `make check-valgrind` (under valgrind memcheck:
# VALGRIND_TESTS, see below), `make distcheck` (the plain suite, from the release tarball,
# warnings again errors), then each fuzz target FUZZ_SECONDS (60). Each
# stage prints its time. Ends with the line
# "N passed, N failed"; exits non-zero when anything failed.
set -eu
EB_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$EB_TOP/scripts/common.sh"
cd "$EB_TOP"

eb_install_packages "$EB_TEST_PACKAGES"

passed=0
failed=0
status=0
suite_tests=

# stage_start, stage_done NAME: print how long the stage NAME took
stage_start() { stage_began=$(date +%s); }
stage_done() { echo "== $1: $(($(date +%s) - stage_began)) s"; }

# run_suite NAME DIR TARGET [CONFIGURE ARGS...]: build, then make TARGET
# (check or check-valgrind); $suite_tests, when set, is the TESTS to run
run_suite() {
	name=$1
	dir=$2
	target=$3
	shift 3
	stage_start
	echo "== $name: building in $dir"
	eb_build "$dir" "$@"
	echo "== $name: make $target"
	if ! (cd "$dir" && make -s -j"$(nproc)" "$target" ${suite_tests:+"TESTS=$suite_tests"} \
		>"$dir.check.log" 2>&1); then
		status=1
		grep -E '^(FAIL|ERROR|XPASS)' "$dir.check.log" || tail -40 "$dir.check.log"
		for log in $(cd "$dir" && grep -lE '^(not ok|ERROR)' tests/*/*.log 2>/dev/null); do
			echo "---- $dir/$log"
			grep -E -A12 '^not ok|^# ' "$dir/$log" | head -80
		done
	fi
	p=$(sed -n 's/^# PASS: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	f=$(sed -n 's/^# FAIL: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$dir/test-suite.log" 2>/dev/null | head -1)
	p=${p:-0}
	f=$((${f:-0} + ${e:-0}))
	if [ "$p" -eq 0 ]; then
		status=1 # a suite that ran nothing has failed
		f=$((f + 1))
	fi
	echo "== $name: $p passed, $f failed"
	stage_done "$name"
	passed=$((passed + p))
	failed=$((failed + f))
}

# The C sources as .clang-format describes them (clang-format 14, Debian 12).
echo "== format"
mkdir -p "$EB_TOP/_build"
stage_start
# shellcheck disable=SC2046
if clang-format --dry-run --Werror $(git ls-files '*.c' '*.h' 2>/dev/null ||
	find src tests tools bench -name '*.[ch]') >"$EB_TOP/_build/format.log" 2>&1; then
	passed=$((passed + 1))
	echo "ok - clang-format: every C file as .clang-format says"
else
	failed=$((failed + 1))
	status=1
	echo "not ok - clang-format: run clang-format -i on these"
	grep -E '^[^ ].*: error' "$EB_TOP/_build/format.log" | cut -d: -f1 | sort -u
fi
stage_done format

# The plain build. Its tests run once, in `make distcheck` below (the same
# configure flags), which keeps CI under 30 minutes with the valgrind stage.
stage_start
echo "== plain: building in $EB_TOP/_build/plain"
eb_build "$EB_TOP/_build/plain" --enable-werror
stage_done plain

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$EB_TOP/tests/lsan.supp:print_suppressions=0"
run_suite sanitizers "$EB_TOP/_build/sanitizers" check --enable-werror CFLAGS="-O1 -g $SAN" \
	LDFLAGS="$SAN"
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

# Valgrind memcheck, from a build without sanitizers (the two do not mix).
# The whole suite under memcheck takes about 35 minutes on 2 cores, more than
# the 30 minutes CI has for everything, so by default this runs the unit
# tests and the suites that drive the request path end to end on SQLite and
# PostgreSQL (CGI and FastCGI); VALGRIND_TESTS=all runs the whole suite.
VALGRIND_TESTS=${VALGRIND_TESTS:-"$(echo tests/unit/test-datetime tests/unit/test-event \
	tests/unit/test-batch tests/unit/test-conf tests/unit/test-http tests/unit/test-auth \
	tests/unit/test-ratelimit tests/unit/test-util tests/unit/test-handler tests/unit/test-oom \
	tests/integration/test_cgi.py \
	tests/integration/test_fastcgi.py tests/integration/test_connections.py \
	tests/integration/test_store_sqlite.py \
	tests/integration/test_store_postgresql.py)"}
[ "$VALGRIND_TESTS" = all ] && suite_tests= || suite_tests=$VALGRIND_TESTS
run_suite valgrind "$EB_TOP/_build/valgrind" check-valgrind --enable-werror CFLAGS="-O1 -g"
suite_tests=

# The release tarball: builds and passes every test from a read-only copy.
# Plain `make distcheck`, as packagers run it (no -s: the tests must not
# depend on how make was invoked).
echo "== distcheck"
stage_start
if make -C "$EB_TOP/_build/plain" distcheck >"$EB_TOP/_build/distcheck.log" 2>&1; then
	passed=$((passed + 1))
	echo "ok - make distcheck"
else
	failed=$((failed + 1))
	status=1
	echo "not ok - make distcheck"
	grep -E '^(FAIL|ERROR)' "$EB_TOP/_build/distcheck.log" || tail -40 "$EB_TOP/_build/distcheck.log"
fi
stage_done distcheck

# Fuzzing: each libFuzzer target FUZZ_SECONDS (60 by default) from its seeds;
# one result per target.
echo "== fuzz: ${FUZZ_SECONDS:-60} s per target"
stage_start
for t in fuzz_body fuzz_token fuzz_headers fuzz_config fuzz_inflate; do
	if make -s -C "$EB_TOP/_build/plain" fuzz FUZZ_TARGETS=$t FUZZ_SECONDS="${FUZZ_SECONDS:-60}" \
		>"$EB_TOP/_build/$t.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $t: $(grep -h number_of_executed_units "$EB_TOP/_build/$t.log" | awk '{print $2}') runs"
	else
		failed=$((failed + 1))
		status=1
		echo "not ok - $t"
		tail -40 "$EB_TOP/_build/$t.log"
	fi
done
stage_done fuzz

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
