#!/usr/bin/env bash
# A private PostgreSQL cluster for popsweep's tests and benchmarks: its own data directory
# and port, owned by an unprivileged user (the server refuses to run as root), password
# authentication on 127.0.0.1 only. Nothing of the machine's own clusters is touched.
#
#   scripts/pg-cluster.sh start   DIR PORT [tls]   # initdb on first use, then start; prints
#                                                  # the URL (with tls: a CA of its own in
#                                                  # DIR/ca.crt signs the server's certificate)
#   scripts/pg-cluster.sh stop    DIR
#   scripts/pg-cluster.sh restart DIR
#
# The superuser is `popsweep` with password `popsweep` (a test cluster on loopback).
set -euo pipefail

cmd="${1:?usage: pg-cluster.sh start|stop|restart DIR [PORT]}"
dir="${2:?usage: pg-cluster.sh start|stop|restart DIR [PORT]}"
port="${3:-54329}"
tls="${4:-}"

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
  for v in 17 16 15 14 13; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then bindir="/usr/lib/postgresql/$v/bin"; break; fi
  done
fi
if [ -z "$bindir" ] && command -v pg_ctl >/dev/null 2>&1; then bindir="$(dirname "$(command -v pg_ctl)")"; fi
[ -n "$bindir" ] || { echo "pg-cluster.sh: no PostgreSQL server binaries found (install Debian's postgresql)" >&2; exit 1; }

# As root, run the server as the `postgres` user (Debian's package creates it), else as us.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    # From /, which the server's user can enter (the caller's directory may be private).
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner bash -c "umask 077; echo popsweep > '$dir/pwfile'"
      as_owner "$bindir/initdb" -D "$dir/data" -U popsweep --pwfile="$dir/pwfile" \
        -A scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    ssl=""
    if [ "$tls" = tls ]; then
      if [ ! -f "$dir/server.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=popsweep test CA" \
          -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
          -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
          -CAcreateserial -days 30 -extfile "$dir/san.ext" -out "$dir/server.crt" >/dev/null 2>&1
        if [ "$(id -u)" = 0 ]; then chown postgres "$dir/server.key" "$dir/server.crt"; fi
        chmod 600 "$dir/server.key"
      fi
      # TCP connections must be encrypted: a plain one is refused.
      as_owner sed -i 's/^host /hostssl /' "$dir/data/pg_hba.conf"
      ssl="-c ssl=on -c ssl_cert_file='$dir/server.crt' -c ssl_key_file='$dir/server.key'"
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c max_connections=200 $ssl" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "postgresql://popsweep:popsweep@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  restart)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 restart >/dev/null
    ;;
  *)
    echo "pg-cluster.sh: unknown command $cmd" >&2; exit 2
    ;;
esac
