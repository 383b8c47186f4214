#!/usr/bin/env bash
# Start or stop a Docker engine for `make test-compose` on a machine that has none running (CI).
#
#   infra/ci/dockerd.sh start PIDFILE   start dockerd only if no engine answers; write its PID to PIDFILE
#   infra/ci/dockerd.sh stop PIDFILE    stop the dockerd whose PID is in PIDFILE (the one `start` started)
#
# The flags keep the engine from touching the host's firewall or routing: containers reach only each other
# and the host (see docs/compose.md, "make test-compose and CI"). Nothing is ever stopped that this script did not start.
set -euo pipefail

action=${1:?usage: dockerd.sh start|stop PIDFILE}
pidfile=${2:?usage: dockerd.sh start|stop PIDFILE}
logfile="${pidfile%.pid}.log"

case "$action" in
start)
    if docker info >/dev/null 2>&1; then
        echo "dockerd.sh: a Docker engine is already running; using it"
        rm -f "$pidfile"
        exit 0
    fi
    dockerd --storage-driver=overlay2 --iptables=false --ip-forward=false --ip-masq=false \
        >"$logfile" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
        if docker info >/dev/null 2>&1; then
            echo "dockerd.sh: started dockerd (pid $(cat "$pidfile"), log $logfile)"
            exit 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "dockerd.sh: dockerd exited; its log:" >&2
            cat "$logfile" >&2
            rm -f "$pidfile"
            exit 1
        fi
        sleep 0.2
    done
    echo "dockerd.sh: dockerd did not answer within 20 s; log: $logfile" >&2
    exit 1
    ;;
stop)
    [ -s "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        # dockerd stops its containers first; give it time, then insist.
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "dockerd.sh: stopped dockerd (pid $pid)"
    fi
    rm -f "$pidfile"
    ;;
*)
    echo "usage: dockerd.sh start|stop PIDFILE" >&2
    exit 2
    ;;
esac
