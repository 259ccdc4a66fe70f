#!/bin/sh
# The events-batch benchmark, one command:  sh bench/run.sh
#
# Builds the program (or uses EB_BUILDDIR), builds the helpers (bench/hello.c,
# bench/sqlite_alone.c) into a temporary directory, then runs bench/bench.py,
# which starts PostgreSQL and lighttpd on 127.0.0.1, measures, prints the
# table, stops everything it started and removes the temporary directory.
# See bench/README.md.
#
# Environment: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_CONNECTIONS (4),
# BENCH_BATCHES ("1 100 1000"), BENCH_DBS ("sqlite pg"), BENCH_SEED (1),
# BENCH_RSS_EVENTS (10000), BENCH_GUESS, BENCH_GEN, BENCH_KEEP, BENCH_SIDE_BY_SIDE (1),
# EB_BUILDDIR (a finished build to use instead of building _build/bench),
# EB_PG_BINDIR (/usr/lib/postgresql/15/bin).
set -eu
EB_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$EB_TOP/scripts/common.sh"
cd "$EB_TOP"

# what the program needs, plus the servers, drivers and tools measured here
eb_install_packages "$EB_PACKAGES postgresql odbc-postgresql wrk libsqlite3-dev time"

eb_use_build bench
if [ ! -x "$build/src/events-batch.fcgi" ] || [ ! -x "$build/tools/mktoken" ]; then
	echo "no events-batch.fcgi or tools/mktoken in $build" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eb-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir "$tmp/bin"
cc -O2 -Wall -o "$tmp/bin/hello" bench/hello.c -lfcgi
cc -O2 -Wall -o "$tmp/bin/sqlite_alone" bench/sqlite_alone.c -lsqlite3 -ljansson

# bench.py owns the directory from here on: it stops what it started, then
# removes it (BENCH_KEEP=1 keeps it for a look)
trap - EXIT INT TERM
BENCH_TMP=$tmp EB_BUILDDIR=$build python3 "$EB_TOP/bench/bench.py"

# Then the program against the Node.js peer and a FastCGI hello-world behind
# one nginx (../shared/bench/side-by-side.sh, when it is there beside the
# checkout; BENCH_SIDE_BY_SIDE=0 skips it). Its table goes to
# _bench/side-by-side-<time>/tables.md; STEPS, BATCHES, DURATION and RUNS
# pass through to it.
sbs=$EB_TOP/../shared/bench/side-by-side.sh
if [ "${BENCH_SIDE_BY_SIDE:-1}" != 0 ] && [ -f "$sbs" ]; then
	src=$(mktemp -d "${TMPDIR:-/tmp}/eb-bench-src.XXXXXX")
	trap 'rm -rf "$src"' EXIT
	# what side-by-side.sh reads of a built checkout: the program, the schema
	mkdir "$src/src"
	cp "$build/src/events-batch.fcgi" "$src/src/"
	cp -r "$EB_TOP/sql" "$src/sql"
	EB_SRC=$src OUT_DIR=${OUT_DIR:-$EB_TOP/_bench/side-by-side-$(date -u +%Y%m%dT%H%M%SZ)} \
		bash "$sbs"
fi
