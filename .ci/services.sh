#!/usr/bin/env bash
# Starts (installing from Debian when missing) the services the integration tests use:
# PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done; return 1; }
apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1 || true; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main >/dev/null 2>&1 || true; fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  wait_port 5432 || echo "services: PostgreSQL did not come up on 5432" >&2
  su postgres -c "psql -tAc \"select 1 from pg_database where datname='test'\" | grep -q 1 || createdb test" 2>/dev/null || true
fi

if ! port_open 1883; then
  command -v mosquitto >/dev/null 2>&1 || apt_install mosquitto
  if [ -f /etc/mosquitto/mosquitto.conf ]; then mosquitto -d -c /etc/mosquitto/mosquitto.conf; else mosquitto -d -p 1883; fi
  wait_port 1883 || echo "services: Mosquitto did not come up on 1883" >&2
fi
exit 0
