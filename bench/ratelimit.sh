#!/bin/sh
# What the rate limit check costs a request:  sh bench/ratelimit.sh
#
# Builds the program (or uses EB_BUILDDIR), then runs bench/ratelimit.py:
# two lighttpd servers on 127.0.0.1 with 2 workers each, without and with a
# limit that refuses nothing, wrk against them in turn, then the workers'
# system calls (perf or strace) and instructions (callgrind) per request.
# Installs nothing: it wants lighttpd, wrk, valgrind, and perf or strace.
# See bench/README.md.
#
# Environment: BENCH_SECONDS (10), BENCH_RUNS (5), BENCH_CONNECTIONS (4),
# BENCH_CALLGRIND ("200 1200": the two request counts under callgrind),
# BENCH_PERF (the perf command; empty: strace -c instead),
# BENCH_STRACE_SECONDS (3), EB_BUILDDIR.
set -eu
EB_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$EB_TOP/scripts/common.sh"
cd "$EB_TOP"

eb_use_build bench
EB_BUILDDIR=$build exec python3 "$EB_TOP/bench/ratelimit.py"
