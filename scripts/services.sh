#!/usr/bin/env bash
# Start the local services the test suite talks to (PostgreSQL on 127.0.0.1:5432, Redis on
# 127.0.0.1:6379) when they are not already running. Both are installed from Debian's packages on
# the development and CI machines; on a machine without them this prints what is missing and
# leaves the tests that need them to fail (under CI=true they fail rather than skip).
set -uo pipefail

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "services: starting PostgreSQL" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
        for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    fi
    pg_up || echo "services: PostgreSQL is not running on 127.0.0.1:5432" >&2
fi

if ! redis_up; then
    if command -v redis-server >/dev/null; then
        echo "services: starting Redis" >&2
        mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
        for _ in $(seq 1 30); do redis_up && break; sleep 1; done
    fi
    redis_up || echo "services: Redis is not running on 127.0.0.1:6379" >&2
fi
exit 0
