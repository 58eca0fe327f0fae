#!/usr/bin/env bash
# compare.sh DIR PORT: the before/after run of docs/benchmarks.md ("Issue 10"): login at 1000/s for 20s and saturation (3000/s) for 20s, then hold 10,000 rooms for 30 s, against DIR/qrauthd
set -u
d=$1; port=$2; dbg=$((port-2000))
run_server() {
  rm -rf /tmp/bench/data-$port; mkdir -p /tmp/bench/data-$port
  $d/qrauthd -addr 127.0.0.1:$port -data /tmp/bench/data-$port/qrauth.db -admin-socket off \
    -room-rate 1e9 -room-burst 1000000 -app-rate 1e9 -app-burst 1000000 -max-rooms 200000 -room-ttl 10m \
    -debug-addr 127.0.0.1:$dbg -log-level warn > /tmp/bench/server-$port.log 2>&1 &
  echo $! > /tmp/bench/pid-$port
  for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$port/healthz && break; sleep 0.1; done
}
stop_server() { kill $(cat /tmp/bench/pid-$port); wait $(cat /tmp/bench/pid-$port) 2>/dev/null; }
for rate in 1000 3000; do
  run_server
  $d/qrauth-bench login --server http://127.0.0.1:$port --debug http://127.0.0.1:$dbg --rate $rate --duration 20s --devices 200 --baseline=false
  stop_server
done
run_server
$d/qrauth-bench hold --server http://127.0.0.1:$port --debug http://127.0.0.1:$dbg --rooms 10000 --clients 2 --duration 30s --baseline=false
stop_server
