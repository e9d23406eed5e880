#!/usr/bin/env bash
# Stops what start-rgw.sh DIR started: radosgw, then the osd, then the mon (the order
# in which nothing waits on a daemon already gone). Each gets SIGTERM, then SIGKILL
# after 10 s. Safe to run twice, and on a half-started cluster.
#   stop-rgw.sh DIR          the whole cluster
#   stop-rgw.sh --rgw DIR    only radosgw, at once (SIGKILL: a gateway that dies mid-request)
set -uo pipefail

stop() {  # stop PIDFILE SIGNAL
  local file=$1 signal=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  # Only a ceph daemon or our watcher of that PID, never a recycled PID of someone else.
  if grep -qE 'ceph-|radosgw|bash' "/proc/$pid/comm" 2>/dev/null; then
    kill "-$signal" "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$file"
}

if [ "${1:-}" = "--rgw" ]; then
  stop "$(realpath -m "$2")/run/client.rgw.a.pid" KILL
  exit 0
fi
dir=$(realpath -m "$1")
stop "$dir/run/client.rgw.a.pid" TERM
for f in "$dir"/run/osd.*.pid; do stop "$f" TERM; done
stop "$dir/run/mon.a.pid" TERM
# The watcher last: it may be the one running this script.
if [ -s "$dir/run/watcher.pid" ] && [ "$(cat "$dir/run/watcher.pid")" != "$PPID" ]; then
  kill "$(cat "$dir/run/watcher.pid")" 2>/dev/null
fi
rm -f "$dir/run/watcher.pid"
exit 0
