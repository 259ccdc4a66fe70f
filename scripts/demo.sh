#!/bin/sh
# The demo: install what is missing (as root), build, create the demo SQLite
# database from sql/schema-sqlite.sql, and serve events-batch behind lighttpd
# on 127.0.0.1:8080 until Ctrl-C, after printing a curl command that works.
#
# Environment: DEMO_PORT (8080), DEMO_DIR (_demo), EB_BUILDDIR (a finished
# build to use instead of building _build/plain), DEMO_PROGRAM (what lighttpd
# runs instead of the build's program: the tests' valgrind wrapper).
set -eu
EB_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$EB_TOP/scripts/common.sh"
cd "$EB_TOP"

port=${DEMO_PORT:-8080}
demo=$(mkdir -p "${DEMO_DIR:-_demo}" && cd "${DEMO_DIR:-_demo}" && pwd)
api_key=demo-api-key

eb_install_packages "$EB_PACKAGES"
eb_use_build plain

# A fresh database each run, so the first curl creates and the second updates.
rm -f "$demo/demo.db" "$demo/demo.db-wal" "$demo/demo.db-shm"
sqlite3 "$demo/demo.db" <sql/schema-sqlite.sql >/dev/null
[ -f "$demo/jwt.key" ] || (umask 077 && openssl rand -hex 32 >"$demo/jwt.key")
cat >"$demo/events-batch.conf" <<CONF
# events-batch demo configuration (made by scripts/demo.sh)
[limits]
max_body_bytes = 16777216
max_batch_items = 10000

[auth]
# SHA-256 of the demo API key "$api_key"
api_key_sha256 = $(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
jwt_algorithm = HS256
jwt_key_file = $demo/jwt.key
jwt_user_claim = sub
jwt_database_claim = vbasoftware-database

[databases]
demo = Driver=SQLite3;Database=$demo/demo.db;NoCreat=1
CONF

mkdir -p "$demo/htdocs"
# The shipped lighttpd fragment, its paths filled in (and the demo's URL and
# two workers), included from a top-level config with what it leaves out.
sed -e "s|/usr/local/libexec/events-batch/events-batch.fcgi|${DEMO_PROGRAM:-$build/src/events-batch.fcgi}|" \
    -e "s|/etc/events-batch.conf|$demo/events-batch.conf|" \
    -e "s|/run/lighttpd/|$demo/|" \
    -e 's|"/api/events-batch" =>|"/events-batch" =>|' \
    -e 's|\("max-procs" *=> *\)[0-9]*|\12|' \
    apache-conf/lighttpd-events-batch.conf >"$demo/15-events-batch.conf"
cat >"$demo/lighttpd.conf" <<CONF
# no server.errorlog: in the foreground (-D) lighttpd writes its log, and
# the program's log lines, to stderr, below the message printed last
server.modules = ( )
server.document-root = "$demo/htdocs"
server.bind = "127.0.0.1"
server.port = $port
include "$demo/15-events-batch.conf"
CONF

# A token for the demo user, valid for a day, granted the demo database.
exp=$(($(date +%s) + 86400))
token=$("$build/tools/mktoken" HS256 "$demo/jwt.key" \
	"{\"sub\":\"demo\",\"exp\":$exp,\"vbasoftware-database\":\"demo\"}")

cp "$EB_TOP/scripts/sample-batch.json" "$demo/batch.json"

cat <<MSG

events-batch is served at http://127.0.0.1:$port/events-batch (database "demo",
file $demo/demo.db). Send the sample batch (207: 201 Created the first time,
200 Updated after):

curl -sS -X PUT 'http://127.0.0.1:$port/events-batch' \\
  -H 'User-Agent: curl-demo' \\
  -H 'x-api-key: $api_key' \\
  -H 'Authorization: Bearer $token' \\
  -H 'vbasoftware-database: demo' \\
  -H 'Content-Type: application/json' \\
  --data-binary @$demo/batch.json

Rows: sqlite3 $demo/demo.db 'SELECT * FROM Event'
Log lines appear below; Ctrl-C stops the server.

MSG
exec "$(command -v lighttpd || echo /usr/sbin/lighttpd)" -D -f "$demo/lighttpd.conf"
