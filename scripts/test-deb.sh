#!/bin/sh
# The Debian package, end to end, as root on Debian 12: build it with
# dpkg-buildpackage from a clean copy of the committed HEAD, lint it, install
# it with apt-get, enable it in Apache with Debian's mod_fcgid and send a
# batch through the installed files (Apache on 127.0.0.1 and a free port, not
# the system's port 80), check the lighttpd, nginx and systemd files,
# reinstall it over itself (a changed conffile is kept), and purge it
# (everything goes but the database).
#
# It changes the system (packages, /etc, /var/lib) and puts it back: at the
# end the package is purged, the test's database removed, and mod_fcgid as
# enabled or not as it was. It refuses to start where events-batch is already
# installed or has left files. Prints each step's result, its duration, and
# "N passed, N failed"; exits non-zero when anything failed. Work files:
# a folder under /tmp, kept when something failed.
set -eu
EB_TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$EB_TOP/scripts/common.sh"
cd "$EB_TOP"

began=$(date +%s)
passed=0
failed=0
work=
apache_pid=
policy_rc=
fcgid_was_enabled=
owns_system=

ok() {
	passed=$((passed + 1))
	echo "ok - $1"
}
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
}
# check DESCRIPTION COMMAND...: one result
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# need DESCRIPTION COMMAND...: one result; the later steps cannot run without it
need() {
	d=$1
	shift
	if "$@"; then
		ok "$d"
	else
		not_ok "$d"
		finish
	fi
}
# show_log FILE: the end of a log, after a failure
show_log() {
	echo "---- $1"
	tail -n 40 "$1" | sed 's/^/# /'
}
# quiet LOG COMMAND...: run it, its output in LOG; show LOG's end if it fails
quiet() {
	log=$1
	shift
	"$@" </dev/null >"$log" 2>&1 && return 0
	show_log "$log"
	return 1
}
# mode_is PATH OWNER:GROUP MODE
mode_is() {
	[ "$(stat -c '%U:%G %a' "$1")" = "$2 $3" ]
}
# not_installed: dpkg has no trace of events-batch (not even config-files)
not_installed() {
	case "$(dpkg-query -W -f='${db:Status-Abbrev}' events-batch 2>/dev/null)" in
	"" | "un "* | "pn "*) return 0 ;;
	*) return 1 ;;
	esac
}

answers() {
	curl -s -o /dev/null "http://127.0.0.1:$port/"
}
# apache_start: on a port nobody answers on yet; true once it answers
apache_start() {
	if answers; then
		echo "# something answers on 127.0.0.1:$port already"
		return 1
	fi
	apache2 -f "$work/apache/apache2.conf" -DFOREGROUND >>"$work/apache/log/stderr.log" 2>&1 &
	apache_pid=$!
	i=0
	while [ "$i" -lt 100 ]; do
		kill -0 "$apache_pid" 2>/dev/null || break
		answers && return 0
		sleep 0.1
		i=$((i + 1))
	done
	show_log "$work/apache/log/stderr.log"
	show_log "$work/apache/log/error.log"
	return 1
}
# apache_stop: SIGTERM to the Apache we started (its children and mod_fcgid's
# workers go with it); true once it has exited and the port is free
apache_stop() {
	[ -n "$apache_pid" ] || return 0
	kill -TERM "$apache_pid" 2>/dev/null || true
	wait "$apache_pid" 2>/dev/null || true
	apache_pid=
	! answers
}

finish() {
	trap - EXIT
	cleanup
	echo "== deb: $(($(date +%s) - began)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}

# Put the system back: stop our Apache, purge the package, remove the test's
# database and key, and whatever the test enabled.
cleanup() {
	apache_stop || true
	if [ -n "$owns_system" ]; then
		not_installed || apt-get purge -y -qq events-batch >/dev/null 2>&1 || true
		rm -f /etc/apache2/conf-enabled/events-batch.conf \
			/etc/lighttpd/conf-enabled/15-events-batch.conf
		rm -rf /var/lib/events-batch /etc/events-batch
		[ "$fcgid_was_enabled" != no ] || a2dismod -q fcgid >/dev/null 2>&1 || true
	fi
	[ -z "$policy_rc" ] || rm -f "$policy_rc"
	if [ -n "$work" ]; then
		if [ "$failed" -eq 0 ]; then rm -rf "$work"; else echo "# work files kept in $work"; fi
	fi
}
if [ "$(id -u)" -ne 0 ]; then
	echo "test-deb.sh installs a package: run it as root" >&2
	exit 2
fi
trap 'not_ok "the test ran to its end"; finish' EXIT
trap 'exit 130' INT TERM

# ---- what the test may touch
if ! not_installed; then
	not_ok "events-batch is not installed here yet (apt-get purge events-batch first)"
	finish
fi
# what the package installs in /etc and what the test removes at its end
# (a source install following this README has some of them)
for f in /etc/events-batch.conf /etc/events-batch /var/lib/events-batch \
	/usr/lib/cgi-bin/events-batch /etc/apache2/conf-available/events-batch.conf \
	/etc/apache2/conf-enabled/events-batch.conf /etc/lighttpd/conf-available/15-events-batch.conf \
	/etc/lighttpd/conf-enabled/15-events-batch.conf /etc/nginx/snippets/events-batch.conf \
	/etc/nginx/snippets/events-batch-upstream.conf; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		not_ok "$f does not exist yet (the test would replace or remove it; move it away first)"
		finish
	fi
done
owns_system=1

# Services that packages would start on installation stay down while the
# test installs (Debian's containers have this file already).
if [ ! -e /usr/sbin/policy-rc.d ]; then
	policy_rc=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\n# events-batch test-deb.sh: no service starts while it installs\nexit 101\n' \
		>"$policy_rc"
	chmod 755 "$policy_rc"
fi

work=$(mktemp -d /tmp/eb-deb.XXXXXX)
chmod 755 "$work"
src=$work/src
mkdir "$src"

# ---- packages: the tools, then the build dependencies debian/control names
echo "== deb: installing packages"
eb_install_packages "dpkg-dev debhelper fakeroot lintian git python3 curl openssl
 apache2 libapache2-mod-fcgid lighttpd nginx sqlite3 libsqliteodbc"

# ---- build from a clean copy of HEAD
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	echo "# note: the tree has uncommitted changes; the package is built from HEAD"
fi
in_git_checkout() {
	git rev-parse -q --verify HEAD >/dev/null
}
need "the source is a git checkout (the package is built from its HEAD)" in_git_checkout
git archive --format=tar HEAD | tar -xf - -C "$src"
if ! (cd "$src" && dpkg-checkbuilddeps) >/dev/null 2>&1; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$src" >"$work/build-dep.log" 2>&1 ||
		show_log "$work/build-dep.log"
fi
upstream=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$src/configure.ac")
version=$(cd "$src" && dpkg-parsechangelog -S Version)
check "debian/changelog's version $version is configure.ac's $upstream, Debian revision 1" \
	[ "$version" = "$upstream-1" ]
deb=$work/events-batch_${version}_$(dpkg --print-architecture).deb
(cd "$src" && find . | LC_ALL=C sort) >"$work/tree-before"

echo "== deb: dpkg-buildpackage -us -uc -b"
stage=$(date +%s)
if (cd "$src" && nice -n 10 dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 && [ -f "$deb" ]; then
	ok "dpkg-buildpackage builds $(basename "$deb") ($(($(date +%s) - stage)) s)"
else
	not_ok "dpkg-buildpackage builds $(basename "$deb")"
	show_log "$work/build.log"
	finish
fi
(cd "$src" && debian/rules clean) >"$work/clean.log" 2>&1 || show_log "$work/clean.log"
(cd "$src" && find . | LC_ALL=C sort) >"$work/tree-after"
if diff "$work/tree-before" "$work/tree-after" >"$work/tree.diff"; then
	ok "debian/rules clean leaves the tree as it was checked out"
else
	not_ok "debian/rules clean leaves the tree as it was checked out"
	sed 's/^/# /' "$work/tree.diff" | head -20
fi

# ---- lintian: no error, no warning. The infos and the overridden tag (O:)
# are shown too; with --show-overrides, --fail-on would count that one as a
# warning, so the warnings are read from the output instead.
lintian_status=0
nice -n 10 lintian --display-info --show-overrides "$work"/events-batch_"${version}"_*.changes \
	>"$work/lintian.log" 2>&1 || lintian_status=$?
if [ "$lintian_status" -eq 0 ] && ! grep -q '^[EW]: ' "$work/lintian.log"; then
	ok "lintian: no error and no warning"
else
	not_ok "lintian: no error and no warning (exit status $lintian_status)"
fi
grep -v "running with root privileges" "$work/lintian.log" | sed 's/^/# lintian: /'

# ---- install
echo "== deb: apt-get install"
DEBIAN_FRONTEND=noninteractive
export DEBIAN_FRONTEND
need "apt-get install ./$(basename "$deb")" quiet "$work/install.log" apt-get install -y -qq "$deb"

program=/usr/lib/cgi-bin/events-batch/events-batch.fcgi
check "the program is $program and says its version" \
	[ "$("$program" --version 2>&1)" = "events-batch $upstream" ]
check "the schemas are in /usr/share/events-batch/sql/" \
	test -f /usr/share/events-batch/sql/schema-sqlite.sql -a \
	-f /usr/share/events-batch/sql/schema-postgresql.sql -a \
	-f /usr/share/events-batch/sql/schema-mariadb.sql
check "the man pages events-batch.fcgi(8) and events-batch.conf(5) are installed" \
	test -f /usr/share/man/man8/events-batch.fcgi.8.gz -a -f /usr/share/man/man5/events-batch.conf.5.gz
conffiles=$(dpkg-query -W -f='${Conffiles}' events-batch)
all_conffiles=yes
for f in /etc/events-batch.conf /etc/apache2/conf-available/events-batch.conf \
	/etc/lighttpd/conf-available/15-events-batch.conf /etc/nginx/snippets/events-batch.conf \
	/etc/nginx/snippets/events-batch-upstream.conf; do
	if ! echo "$conffiles" | grep -q " $f " || ! [ -f "$f" ]; then
		all_conffiles=no
		echo "# not a conffile: $f"
	fi
done
check "the config and the web servers' configs are conffiles" [ "$all_conffiles" = yes ]
check "the systemd unit is installed" test -f /lib/systemd/system/events-batch.service
no_local_paths() {
	! grep -l /usr/local /etc/apache2/conf-available/events-batch.conf \
		/etc/lighttpd/conf-available/15-events-batch.conf /etc/nginx/snippets/events-batch.conf \
		/etc/nginx/snippets/events-batch-upstream.conf /lib/systemd/system/events-batch.service
}
check "the installed configs name no path of a source install (/usr/local)" no_local_paths
check "/etc/events-batch.conf is root:www-data 0640" mode_is /etc/events-batch.conf root:www-data 640
only_www_data_reads() {
	runuser -u www-data -- cat /etc/events-batch.conf >/dev/null &&
		! runuser -u nobody -- cat /etc/events-batch.conf >/dev/null 2>&1
}
check "www-data reads /etc/events-batch.conf, nobody else does" only_www_data_reads
check "/etc/events-batch (the JWT key's folder) is root:www-data 0750" \
	mode_is /etc/events-batch root:www-data 750
check "/var/lib/events-batch is www-data:www-data 0750" \
	mode_is /var/lib/events-batch www-data:www-data 750
nothing_enabled() {
	! [ -e /etc/apache2/conf-enabled/events-batch.conf ] &&
		! [ -e /etc/lighttpd/conf-enabled/15-events-batch.conf ] &&
		! ls /etc/systemd/system/*.wants/events-batch.service >/dev/null 2>&1
}
check "nothing is enabled on installation (Apache, lighttpd, systemd)" nothing_enabled

# ---- set it up as an admin would: a key, an API key, a database
api_key="deb-test-api-key"
(umask 027 && openssl rand -hex 32 >/etc/events-batch/jwt.key)
chgrp www-data /etc/events-batch/jwt.key
hash=$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)
sed "s|^#api_key_sha256 = .*|api_key_sha256 = $hash|" /etc/events-batch.conf >"$work/conf.new"
cat "$work/conf.new" >/etc/events-batch.conf # in place, as an editor would
cp /etc/events-batch.conf "$work/conf.changed"
need "the admin's API key is in /etc/events-batch.conf" grep -q "^api_key_sha256 = $hash" /etc/events-batch.conf
create_db() {
	runuser -u www-data -- sqlite3 /var/lib/events-batch/demo.db \
		</usr/share/events-batch/sql/schema-sqlite.sql >/dev/null
}
need "www-data creates the SQLite database from the installed schema" create_db

# ---- Apache with Debian's mod_fcgid and the enabled conf, on a loopback port
a2query -q -m fcgid && fcgid_was_enabled=yes || fcgid_was_enabled=no
need "a2enmod fcgid" quiet "$work/a2enmod.log" a2enmod fcgid
need "a2enconf events-batch" quiet "$work/a2enconf.log" a2enconf events-batch
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/apache/run" "$work/apache/lock" "$work/apache/log"
# Debian's apache2.conf, but for ports.conf (port 80) and the sites: the
# modules and confs that a2enmod and a2enconf enabled, one loopback port.
# The variables that /etc/apache2/envvars sets are defined here, so that
# apache2 needs no environment and $! is its own PID.
cat >"$work/apache/apache2.conf" <<CONF
Define APACHE_RUN_USER www-data
Define APACHE_RUN_GROUP www-data
Define APACHE_RUN_DIR $work/apache/run
Define APACHE_LOCK_DIR $work/apache/lock
Define APACHE_LOG_DIR $work/apache/log
Define APACHE_PID_FILE $work/apache/run/apache2.pid
ServerRoot /etc/apache2
ServerName 127.0.0.1
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
Mutex file:\${APACHE_LOCK_DIR} default
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
ErrorLog \${APACHE_LOG_DIR}/error.log
LogLevel warn
LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O" vhost_combined
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Listen 127.0.0.1:$port
<IfModule mod_fcgid.c>
    FcgidIPCDir \${APACHE_RUN_DIR}/fcgid
    FcgidProcessTableFile \${APACHE_RUN_DIR}/fcgid_shm
</IfModule>
IncludeOptional conf-enabled/*.conf
CONF
check "apache2 -t accepts Debian's config with events-batch enabled" \
	quiet "$work/apache/configtest.log" apache2 -t -f "$work/apache/apache2.conf"
need "Apache starts on 127.0.0.1:$port" apache_start

# A token for the key, valid for an hour (HS256, signed here: the test uses
# the installed files only).
token=$(python3 - /etc/events-batch/jwt.key <<'PY'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read()
key = key[:-1] if key.endswith(b"\n") else key
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=")
signed = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + \
    b64(json.dumps({"sub": "deb-test", "exp": int(time.time()) + 3600}).encode())
print((signed + b"." + b64(hmac.new(key, signed, hashlib.sha256).digest())).decode())
PY
)
cp "$EB_TOP/scripts/sample-batch.json" "$work/batch.json"
# put_batch EXPECTED: PUT the batch; a 207 whose items all have status EXPECTED
put_batch() {
	code=$(curl -sS -o "$work/response.json" -w '%{http_code}' -X PUT \
		"http://127.0.0.1:$port/api/events-batch" \
		-H 'User-Agent: events-batch-test-deb' -H "x-api-key: $api_key" \
		-H "Authorization: Bearer $token" -H 'vbasoftware-database: demo' \
		-H 'Content-Type: application/json' --data-binary @"$work/batch.json") || code=000
	if [ "$code" = 207 ] && python3 -c '
import json, sys
items = json.load(open(sys.argv[1]))["data"]
sys.exit(not (len(items) == 3 and all(i["status"] == int(sys.argv[2]) for i in items)))
' "$work/response.json" "$1"; then
		return 0
	fi
	echo "# HTTP $code: $(head -c 600 "$work/response.json" 2>/dev/null)"
	show_log "$work/apache/log/error.log"
	return 1
}
rows() { sqlite3 /var/lib/events-batch/demo.db 'SELECT COUNT(*) FROM Event'; }
check "a batch through Apache and mod_fcgid: 207, its 3 items 201 Created" put_batch 201
check "the 3 rows are in /var/lib/events-batch/demo.db" [ "$(rows)" = 3 ]

# ---- the other servers' files, each read by its own server
need "lighty-enable-mod events-batch" quiet "$work/lighty-enable-mod.log" lighty-enable-mod events-batch
check "lighttpd -tt accepts Debian's lighttpd.conf with events-batch enabled" \
	quiet "$work/lighttpd-tt.log" lighttpd -tt -f /etc/lighttpd/lighttpd.conf
mkdir -p "$work/nginx"
ln -s /etc/nginx/fastcgi_params "$work/nginx/fastcgi_params"
cat >"$work/nginx/nginx.conf" <<CONF
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    include /etc/nginx/snippets/events-batch-upstream.conf;
    server {
        listen 127.0.0.1:$port;
        include /etc/nginx/snippets/events-batch.conf;
    }
}
CONF
check "nginx -t accepts the upstream snippet in http and the other in a server block" \
	quiet "$work/nginx/t.log" nginx -t -q -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf"
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify accepts the unit" quiet "$work/systemd-analyze.log" \
		systemd-analyze verify /lib/systemd/system/events-batch.service
else
	ok "systemd-analyze verify accepts the unit # SKIP no systemd-analyze"
fi

# ---- upgrade over itself
echo "== deb: apt-get install --reinstall"
need "apt-get install --reinstall ./$(basename "$deb")" \
	quiet "$work/reinstall.log" apt-get install -y -qq --reinstall "$deb"
check "the changed /etc/events-batch.conf is kept" cmp -s /etc/events-batch.conf "$work/conf.changed"
conf_alone_and_private() {
	mode_is /etc/events-batch.conf root:www-data 640 &&
		! ls /etc/events-batch.conf.dpkg-* >/dev/null 2>&1
}
check "... still root:www-data 0640, with no .dpkg-dist or .dpkg-new beside it" conf_alone_and_private
still_enabled() {
	a2query -q -c events-batch && [ -f /etc/events-batch/jwt.key ]
}
check "the Apache conf stays enabled, the JWT key stays" still_enabled
need "Apache stops" apache_stop
need "Apache starts again, on the upgraded files" apache_start
check "the batch again: 207, its 3 items 200 Updated" put_batch 200
check "Apache stops" apache_stop

# ---- purge
echo "== deb: apt-get purge"
dpkg -L events-batch | grep events-batch >"$work/files"
need "apt-get purge events-batch" quiet "$work/purge.log" apt-get purge -y -qq events-batch
left=
while read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done <"$work/files"
for f in /etc/events-batch /etc/apache2/conf-enabled/events-batch.conf \
	/etc/lighttpd/conf-enabled/15-events-batch.conf; do
	if [ -e "$f" ] || [ -L "$f" ]; then left="$left $f"; fi
done
left="$left $(find /var/lib/apache2 /var/lib/systemd -name '*events-batch*' 2>/dev/null | tr '\n' ' ')"
nothing_left() {
	[ -z "$(echo "$left" | tr -d ' ')" ] || { echo "# left:$left"; return 1; }
}
check "purge removes every file, the config, the key, the enabled confs and their state" nothing_left
check "purge keeps the database and its rows" [ "$(rows)" = 3 ]
check "dpkg knows events-batch no more" not_installed

finish
