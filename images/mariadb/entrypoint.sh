#!/bin/sh
# Starts MariaDB. On an empty data directory it first creates the system tables, sets the root
# password, creates $MARIADB_DATABASE and $MARIADB_USER (with $MARIADB_PASSWORD, all privileges on that
# database) and runs /docker-entrypoint-initdb.d/*.sql, with networking off until that is done. A data
# directory that has tables is used as it is: passwords and data are never reset.
set -eu
datadir=/var/lib/mysql
socket=/run/mysqld/init.sock

quote() { printf "%s" "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }

if [ ! -d "$datadir/mysql" ]; then
  for v in MARIADB_ROOT_PASSWORD MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD; do
    eval "[ -n \"\${$v:-}\" ]" || { echo "hap-mariadb: $v is not set" >&2; exit 1; }
  done
  echo "hap-mariadb: initialising $datadir" >&2
  mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  mariadbd --datadir="$datadir" --skip-networking --socket="$socket" &
  pid=$!
  i=0
  until mariadb-admin --socket="$socket" -uroot ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 60 ] || { echo "hap-mariadb: the server did not start" >&2; exit 1; }
    sleep 1
  done
  {
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(quote "$MARIADB_ROOT_PASSWORD")';"
    echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
    echo "CREATE USER '$(quote "$MARIADB_USER")'@'%' IDENTIFIED BY '$(quote "$MARIADB_PASSWORD")';"
    echo "GRANT ALL PRIVILEGES ON \`$MARIADB_DATABASE\`.* TO '$(quote "$MARIADB_USER")'@'%';"
    for f in /docker-entrypoint-initdb.d/*.sql; do
      [ -e "$f" ] && cat "$f"
    done
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket="$socket" -uroot
  kill "$pid"
  wait "$pid" || true
  echo "hap-mariadb: initialised" >&2
fi
# Debian's configuration listens on 127.0.0.1 only; the pod's clients come over its network.
exec mariadbd --datadir="$datadir" --bind-address=0.0.0.0
