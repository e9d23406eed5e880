#!/usr/bin/env bash
# A one-node Ceph cluster serving S3 on 127.0.0.1, for tests and bench/: one ceph-mon,
# one ceph-osd on memstore (RAM, nothing on disk but the mon's small store), one radosgw
# (beast frontend), no mgr, no authentication between the daemons. Everything lives in
# DIR (config, data, logs, admin sockets, PID files); no system service is touched.
#
#   start-rgw.sh DIR MON_PORT RGW_PORT [TLS_PORT [OWNER_PID]]   the whole cluster
#   start-rgw.sh --rgw-only DIR                                 radosgw again (after a test killed it)
#
# Returns when the gateway answers a signed PUT (about 18 s after the start); prints
# the endpoint and the S3 user's keys as KEY=VALUE lines (also in DIR/env). With a
# TLS_PORT other than 0, the gateway also serves https there with a self-signed
# certificate for 127.0.0.1 (RGW_CA_FILE in the output is the file to trust). With
# OWNER_PID, a watcher stops the cluster when that process is gone, so a crashed test
# binary leaves no daemons behind. stop-rgw.sh DIR stops it (rgw, then osd, then mon).
#
# Environment: ARCHE_RGW_MEMSTORE_BYTES (the OSD's RAM room, 2 GiB; the bench raises
# it), ARCHE_RGW_EXTRA_CONF (lines added to [global]), ARCHE_RGW_WAIT (seconds to wait
# for the first PUT, 180).
#
# Pitfalls this avoids: with `auth ... required = none` radosgw only connects to the
# mon with `ms mon client mode = crc`; a pool of size 1 needs `mon allow pool size one`;
# wrapping this script in `timeout` would kill the daemons it leaves running.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
access_key=ARCHETESTACCESS00001
secret_key=archetestsecret0000000000000000000000001
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

rgw_only=0
if [ "${1:-}" = "--rgw-only" ]; then rgw_only=1; shift; fi
dir=$(realpath -m "$1")

wait_for_put() {  # until the gateway answers a signed PUT (creating the bucket arche-probe)
  local port=$1 code=none deadline=$((SECONDS + ${ARCHE_RGW_WAIT:-180}))
  while [ $SECONDS -lt $deadline ]; do
    # curl 7.88 signs the empty payload but does not send its hash: send it.
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT -H "x-amz-content-sha256: $empty_sha256" \
      --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
      "http://127.0.0.1:$port/arche-probe" 2>/dev/null || true)
    [ "$code" = 200 ] && return 0
    sleep 0.2
  done
  echo "start-rgw.sh: radosgw on 127.0.0.1:$port never answered a PUT (last HTTP status $code); see $dir/log" >&2
  return 1
}

start_rgw() {
  radosgw -c "$dir/ceph.conf" -n client.rgw.a </dev/null >>"$dir/log/radosgw.out" 2>&1
}

if [ $rgw_only = 1 ]; then
  # shellcheck disable=SC1091
  . "$dir/env"
  start_rgw
  wait_for_put "$RGW_PORT"
  exit 0
fi

mon_port=$2 rgw_port=$3 tls_port=${4:-0} owner=${5:-}
for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl uuidgen openssl; do
  command -v "$tool" >/dev/null || { echo "start-rgw.sh: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
mkdir -p "$dir"/{mon,osd,rgw,log,run}

# A start that fails half-way stops what it started.
started=0
trap '[ $started = 1 ] || "$here/stop-rgw.sh" "$dir"' EXIT

frontend="beast endpoint=127.0.0.1:$rgw_port"
if [ "$tls_port" != 0 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/tls-key.pem" -out "$dir/tls-cert.pem" 2>>"$dir/log/openssl.out"
  frontend="$frontend ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/tls-cert.pem ssl_private_key=$dir/tls-key.pem"
fi

fsid=$(uuidgen)
cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${ARCHE_RGW_MEMSTORE_BYTES:-2147483648}
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon/\$id
osd data = $dir/osd/\$id
keyring = $dir/keyring
rgw frontends = $frontend
rgw data = $dir/rgw
rgw enable usage log = false
${ARCHE_RGW_EXTRA_CONF:-}
EOF
: >"$dir/keyring"
conf=(-c "$dir/ceph.conf")

monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon "${conf[@]}" --mkfs -i a --monmap "$dir/monmap" >>"$dir/log/mkfs.out" 2>&1
ceph-mon "${conf[@]}" -i a </dev/null >>"$dir/log/mon.out" 2>&1

osd_uuid=$(uuidgen)
osd_id=$(ceph "${conf[@]}" --connect-timeout 60 osd new "$osd_uuid" 2>>"$dir/log/ceph.out")
mkdir -p "$dir/osd/$osd_id"
ceph-osd "${conf[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.out" 2>&1
ceph-osd "${conf[@]}" -i "$osd_id" </dev/null >>"$dir/log/osd.out" 2>&1

start_rgw
radosgw-admin "${conf[@]}" user create --uid=arche --display-name="arche tests" \
  --access-key="$access_key" --secret-key="$secret_key" >>"$dir/log/radosgw-admin.out" 2>&1
cat >"$dir/env" <<EOF
RGW_ENDPOINT=127.0.0.1:$rgw_port
RGW_PORT=$rgw_port
RGW_TLS_ENDPOINT=127.0.0.1:$tls_port
RGW_CA_FILE=$dir/tls-cert.pem
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
EOF
wait_for_put "$rgw_port"
started=1

if [ -n "$owner" ]; then
  # Detached from our stdout/stderr so whoever reads them sees this script end.
  nohup bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; '$here/stop-rgw.sh' '$dir'" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/run/watcher.pid"
fi
cat "$dir/env"
