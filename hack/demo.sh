#!/usr/bin/env bash
# The local demo. Today it runs the daemon skeleton of one node (sockets,
# health, status, facts: test/cmd/skeletond under the three daemon names) on
# this machine, in a temporary run dir, and shows `status` every few seconds
# until Ctrl-C. proxyd itself needs IPVS and an API server, which the demo
# cluster of issue 8 (real control plane, nodes and pods as network
# namespaces in the VM) brings.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=_output/bin/skeleton
mkdir -p "$bin"
go build -o "$bin/skeletond" ./test/cmd/skeletond
for d in routerd proxyd firewalld; do ln -f "$bin/skeletond" "$bin/$d"; done
run_dir=$(mktemp -d /tmp/nodenet-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

export NODENET_RUN_DIR=$run_dir NODENET_NODE_NAME=demo-node NODENET_LOG_FORMAT=console NODENET_METRICS_ADDR=127.0.0.1:0
for d in routerd proxyd firewalld; do
	"$bin/$d" run >"$run_dir/$d.log" 2>&1 &
	pids+=($!)
done
echo "nodenet demo: daemons running with run dir $run_dir (logs there); Ctrl-C stops them."
rounds=${DEMO_ROUNDS:-0} # 0: until Ctrl-C
i=0
while :; do
	sleep 2
	echo
	"$bin/routerd" status || true
	i=$((i + 1))
	if [ "$rounds" -gt 0 ] && [ "$i" -ge "$rounds" ]; then break; fi
done
