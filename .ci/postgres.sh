#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server:
#
#	bash .ci/postgres.sh go test -race -count=1 ./...
#
# If CRMBRIDGE_PG_DSN is already set, the command runs against that server
# and nothing is started. Otherwise the script installs PostgreSQL from
# Debian's packages when no server binaries are found, creates a cluster in
# a temporary directory, starts it on a free loopback port (unix socket in
# the same directory), exports CRMBRIDGE_PG_DSN for the command, and stops
# the server and removes the directory when it exits, whether the command
# passed, failed or was interrupted. The script exits with the command's
# status.
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 command [args...]" >&2
	exit 2
fi

if [ -n "${CRMBRIDGE_PG_DSN:-}" ]; then
	echo "== postgres: using the server in CRMBRIDGE_PG_DSN"
	exec "$@"
fi

# find_bindir prints the directory of the newest installed server binaries.
find_bindir() {
	local d best=""
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
		best="$d" # the glob sorts; keep the last (highest) version
	done
	if [ -z "$best" ] && command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
		best=$(dirname "$(command -v pg_ctl)")
	fi
	[ -n "$best" ] && echo "$best"
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
	echo "== postgres: not installed; installing Debian's postgresql package"
	if [ "$(id -u)" -ne 0 ]; then
		echo "postgres: not root, cannot apt-get install; install PostgreSQL or set CRMBRIDGE_PG_DSN" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql >/dev/null
	bindir=$(find_bindir || true)
	if [ -z "$bindir" ]; then
		echo "postgres: installed, but no server binaries under /usr/lib/postgresql/*/bin" >&2
		exit 1
	fi
fi

# The server refuses to run as root: as root, run it as the postgres user
# (created by the Debian package); otherwise as ourselves.
as_owner() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
	fi
	as_owner() { runuser -u postgres -- "$@"; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crmbridge-pg.XXXXXX")
chmod 0755 "$tmp"
mkdir "$tmp/data" "$tmp/run"
if [ "$(id -u)" -eq 0 ]; then
	chown postgres "$tmp/data" "$tmp/run"
fi
chmod 0700 "$tmp/data"

started=""
cleanup() {
	local rc=$?
	if [ -n "$started" ]; then
		as_owner "$bindir/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
child=""
# A signal stops the command first, then the server (cleanup on EXIT).
on_signal() {
	[ -n "$child" ] && kill -"$1" "$child" 2>/dev/null && wait "$child" 2>/dev/null
	exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

as_owner "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1 ||
	as_owner "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --locale=C >"$tmp/initdb.log" 2>&1 || {
	cat "$tmp/initdb.log" >&2
	exit 1
}

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Durability is off: the data is thrown away, and tests run faster.
opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$tmp/run"
opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
opts="$opts -c max_connections=200 -c shared_buffers=64MB"
port=""
for p in $(seq "${CRMBRIDGE_PG_PORT:-55432}" "$((${CRMBRIDGE_PG_PORT:-55432} + 50))"); do
	port_free "$p" || continue
	if as_owner "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/run/server.log" -o "$opts -p $p" -w -t 60 start >/dev/null 2>&1; then
		port=$p
		started=1
		break
	fi
	# Lost a race for the port, or something else failed: the log says.
	grep -q "could not bind\|already in use" "$tmp/run/server.log" 2>/dev/null || {
		cat "$tmp/run/server.log" >&2
		exit 1
	}
done
if [ -z "$port" ]; then
	echo "postgres: no free loopback port from ${CRMBRIDGE_PG_PORT:-55432}" >&2
	exit 1
fi

psql=$bindir/psql
[ -x "$psql" ] || psql=psql
"$psql" -X -q -h "$tmp/run" -p "$port" -U postgres -d postgres -c "CREATE DATABASE crmbridge" >/dev/null

export CRMBRIDGE_PG_DSN="postgres://postgres@127.0.0.1:$port/crmbridge?sslmode=disable"
echo "== postgres: $("$bindir/postgres" --version) on 127.0.0.1:$port"
# In the background, so that a signal interrupts the wait at once.
set +e
"$@" &
child=$!
wait "$child"
rc=$?
child=""
set -e
exit "$rc"
