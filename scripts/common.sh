# Shared by demo.sh and test.sh: install what is missing, and build.
# Sourced, not run.

# Debian packages needed to build and run the demo (SQLite, lighttpd).
EB_PACKAGES="gcc make autoconf automake pkg-config libc6-dev
 libfcgi-dev libjansson-dev unixodbc unixodbc-dev libjwt-dev libssl-dev zlib1g-dev
 libsqliteodbc sqlite3 lighttpd python3 curl openssl"
# ... and to run every test: database servers and their ODBC drivers too.
EB_TEST_PACKAGES="$EB_PACKAGES libcmocka-dev libfcgi-bin spawn-fcgi
 postgresql pgbouncer mariadb-server galera-4 rsync haproxy odbc-postgresql odbc-mariadb
 apache2 libapache2-mod-fcgid nginx groff-base man-db nodejs clang libclang-rt-14-dev
 valgrind"

# eb_install_packages PACKAGES: install those missing (as root).
eb_install_packages() {
	missing=""
	for p in $1; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages:$missing" >&2
		echo "install them with: sudo apt-get install -y$missing" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $missing >/dev/null
	# Debian's own nodejs comes without npm (NodeSource's has it built in)
	case "$missing" in *nodejs*)
		command -v npm >/dev/null || apt-get install -y -qq npm >/dev/null ;;
	esac
}

# eb_build DIR [CONFIGURE ARGS...]: an out-of-tree build in DIR.
eb_build() {
	dir=$1
	shift
	if [ ! -x "$EB_TOP/configure" ] || [ "$EB_TOP/configure.ac" -nt "$EB_TOP/configure" ]; then
		(cd "$EB_TOP" && autoreconf -fi >/dev/null 2>&1) || {
			echo "autoreconf failed" >&2
			exit 1
		}
	fi
	mkdir -p "$dir"
	(cd "$dir" && "$EB_TOP/configure" -q "$@" && make -s -j"$(nproc)") >"$dir.build.log" 2>&1 || {
		tail -40 "$dir.build.log" >&2
		echo "build in $dir failed (log: $dir.build.log)" >&2
		exit 1
	}
}

# eb_use_build NAME: set $build to $EB_BUILDDIR when given (a finished
# build), else build $EB_TOP/_build/NAME and use that.
eb_use_build() {
	if [ -n "${EB_BUILDDIR:-}" ]; then
		build=$(cd "$EB_BUILDDIR" && pwd)
	else
		echo "building (log: _build/$1.build.log) ..."
		eb_build "$EB_TOP/_build/$1"
		build=$EB_TOP/_build/$1
	fi
}
