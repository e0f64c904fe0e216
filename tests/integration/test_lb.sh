#!/usr/bin/env bash
# test_lb.sh - the load-balanced path without containers: nginx from Debian
# with deploy/nginx.conf (the compose upstream config; only its
# "server resnetd:8080" line becomes two loopback replicas and its listen line
# a free port) in front of two `resnetd serve` processes on 127.0.0.1.
#   1. Bounded traffic (4 clients x 30 POST /classify of dog.jpg); one replica
#      is SIGKILLed mid-load. Every client request must still answer 200 (the
#      retry policy: proxy_next_upstream error timeout http_503 non_idempotent),
#      and the survivor serves the rest.
#   2. The killed replica comes back on its port; once nginx sends to it again,
#      the other gets SIGTERM mid-load: again no failed request, and the
#      drained replica exits 0.
#
#   test_lb.sh RESNETD_BIN [MODEL]     (MODEL: models/resnet50.safetensors)
# Exits 77 (skipped) without nginx, except under CI=true (.ci/run installs
# nginx, so there a missing nginx is a failure); fails when the model is missing.
set -euo pipefail

resnetd=${1:?usage: test_lb.sh RESNETD_BIN [MODEL]}
src=$(cd "$(dirname "$0")/../.." && pwd)
model=${2:-$src/models/resnet50.safetensors}
photo=/usr/share/darknet/data/dog.jpg
nginx=$(command -v nginx || echo /usr/sbin/nginx)
clients=4
per_client=30

if [ ! -x "$nginx" ]; then
    [ "${CI:-}" = true ] && { echo "test_lb.sh: FAIL: no nginx, and CI=true (tools/install_deps.sh installs it)" >&2; exit 1; }
    echo "test_lb.sh: skipped: no nginx (apt-get install nginx)"; exit 77
fi
for f in "$resnetd" "$model" "$photo"; do
    [ -r "$f" ] || { echo "test_lb.sh: FAIL: $f missing (tools/fetch_model.sh; darknet)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/resnetd-lb.XXXXXX)
chmod 755 "$work"
pids=()
nginx_pid=
load_pids=()
cleanup() {
    local p
    # nginx's master takes its workers along on SIGTERM; SIGKILL would orphan them.
    if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    for p in "${pids[@]}" "${load_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test_lb.sh: FAIL: $*" >&2
    for f in "$work"/*.log; do echo "--- $f"; tail -5 "$f"; done >&2
    exit 1
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_replica NAME PORT: starts resnetd, waits (at most 60 s) for /readyz.
# RESNETD_* variables of the caller would override the flags: drop them.
start_replica() {
    local name=$1 port=$2 i
    env $(env | sed -n 's/^\(RESNETD_[A-Z_]*\)=.*/-u \1/p') \
        "$resnetd" serve --bind 127.0.0.1 --port "$port" --model "$model" \
        --inference-threads 1 --http-threads 2 --drain-timeout-s 10 \
        --access-log false 2>> "$work/$name.log" &
    eval "pid_$name=$!"
    pids+=($!)
    for i in $(seq 1 120); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
        kill -0 $! 2>/dev/null || fail "replica $name exited at start"
        sleep 0.5
    done
    fail "replica $name not ready within 60 s"
}

# load TAG: clients x per_client requests through nginx, in the background;
# each response code (000 = no answer) goes to $work/codes.TAG.N.
load() {
    local c
    for c in $(seq 1 $clients); do
        (for _ in $(seq 1 $per_client); do
            curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H 'Content-Type: image/jpeg' \
                --data-binary "@$photo" "http://127.0.0.1:$lb/classify" || true
         done > "$work/codes.$1.$c") &
        load_pids+=($!)
    done
}
answered() { cat "$work"/codes."$1".* 2>/dev/null | wc -l; }
wait_answered() { # TAG N: waits (at most 120 s) until N requests are answered
    local i
    for i in $(seq 1 1200); do
        [ "$(answered "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "load $1: fewer than $2 answers after 120 s"
}
check_codes() { # TAG: every request answered 200
    local total bad
    total=$(answered "$1")
    bad=$(cat "$work"/codes."$1".* | grep -cv '^200$' || true)
    echo "   $1: $total requests, $bad not 200 ($(cat "$work"/codes."$1".* | sort | uniq -c | tr '\n' ' '))"
    [ "$total" -eq $((clients * per_client)) ] || fail "$1: $total of $((clients * per_client)) requests ran"
    [ "$bad" -eq 0 ] || fail "$1: clients saw $bad failed requests"
}
top1() { # URL
    curl -sf -H 'Content-Type: image/jpeg' --data-binary "@$photo" "$1/classify" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["predictions"][0]["label"])'
}

port_a=$(free_port); port_b=$(free_port); lb=$(free_port)
echo "== replicas a :$port_a, b :$port_b; nginx :$lb"
start_replica a "$port_a"
start_replica b "$port_b"

# deploy/nginx.conf with its two deployment-specific lines swapped.
conf=$work/resnetd.conf
sed -e "s|^\( *\)server resnetd:8080\(.*\)$|\1server 127.0.0.1:$port_a\2\n\1server 127.0.0.1:$port_b\2|" \
    -e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$lb;|" "$src/deploy/nginx.conf" > "$conf"
[ "$(grep -c "server 127.0.0.1:" "$conf")" = 2 ] && grep -q "listen 127.0.0.1:$lb;" "$conf" ||
    fail "deploy/nginx.conf has no 'server resnetd:8080 ...' or 'listen 80;' line to replace"
mkdir -p "$work/tmp"
chmod 777 "$work/tmp"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 256; }
http {
    log_format lb '\$status "\$upstream_addr" "\$upstream_status"';
    access_log $work/access.log lb;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $conf;
}
NGINX
"$nginx" -t -q -p "$work" -c "$work/nginx.conf" 2>"$work/nginx-t.log" || { cat "$work/nginx-t.log"; fail "nginx -t"; }
"$nginx" -p "$work" -c "$work/nginx.conf" > "$work/nginx-out.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 1 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$lb/nginx-health" && break
    sleep 0.1
done
label=$(top1 "http://127.0.0.1:$lb") || fail "first request through nginx"
[ "$label" = malamute ] || fail "top-1 through nginx is '$label', expected malamute"

echo "== 1. SIGKILL replica a mid-load"
load_pids=()
load kill
wait_answered kill $((clients * per_client / 4))
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null || true
mark=$(wc -l < "$work/access.log")
wait "${load_pids[@]}"
check_codes kill
kill -0 "$pid_a" 2>/dev/null && fail "replica a survived SIGKILL"
after=$(tail -n +$((mark + 1)) "$work/access.log")
retried=$(grep -c ', ' "$work/access.log" || true)
served_b=$(printf '%s\n' "$after" | grep -c "127.0.0.1:$port_b\"" || true)
echo "   after the kill: $served_b requests answered by b; $retried retried on the other replica"
[ "$served_b" -gt 0 ] || fail "no request answered by the survivor after the kill"
label=$(top1 "http://127.0.0.1:$port_b") || fail "survivor b does not classify"
[ "$label" = malamute ] || fail "survivor b: top-1 '$label'"

echo "== 2. replica a back; SIGTERM replica b mid-load (drain)"
start_replica a "$port_a"
# nginx retries a after fail_timeout (10 s): wait until it answers through nginx.
back=0
for _ in $(seq 1 40); do
    curl -s -o /dev/null -H 'Content-Type: image/jpeg' --data-binary "@$photo" \
        "http://127.0.0.1:$lb/classify" || true
    if tail -n 1 "$work/access.log" | grep -q "^200 \"127.0.0.1:$port_a\""; then back=1; break; fi
    sleep 0.5
done
[ $back = 1 ] || fail "nginx did not send to the restarted replica a within 20 s"
load_pids=()
load term
wait_answered term $((clients * per_client / 4))
kill -TERM "$pid_b"
rc_b=0
wait "$pid_b" || rc_b=$?
wait "${load_pids[@]}"
check_codes term
echo "   replica b exit code after SIGTERM: $rc_b"
[ "$rc_b" = 0 ] || fail "replica b exited $rc_b after SIGTERM, expected 0 (drained)"
grep -q '"drained"' "$work/b.log" || fail "replica b did not log \"drained\""
label=$(top1 "http://127.0.0.1:$lb") || fail "nginx does not serve after b left"
[ "$label" = malamute ] || fail "after b left: top-1 '$label'"
echo "   peak RSS of replica a: $(grep VmHWM /proc/"$pid_a"/status | tr -s ' ')"
echo "test_lb.sh: PASS"
