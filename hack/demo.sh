#!/usr/bin/env bash
# The local demo (make demo): the end-to-end cluster of test/e2e/cluster
# (a real control plane on this machine; three nodes as network namespaces
# in a VM booting Debian's kernel, each running routerd, proxyd and
# firewalld) with the lab of kube-router's "pod networking with BGP, IPVS
# service proxy, network policies" built and shown on it, then left
# running until Ctrl-C. The host test TestDemo and its guest TestDemoGuest
# do the work (host_demo_test.go, guest_demo_*_test.go).
#
# NODENET_DEMO_HOLD=0 ends it once shown (for scripts), cleaning up as
# Ctrl-C does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (network namespaces, the VM's shares)" >&2
	exit 1
fi

bin=_output/demo
mkdir -p "$bin"
echo "nodenet demo: building (the test binary; the daemons next, while the control plane starts)"
go test -c -tags e2e -o "$bin/cluster-e2e.test" ./test/e2e/cluster

# The test runs in a session of its own, so that Ctrl-C at the terminal
# reaches only this script: the script passes it on as one SIGINT, and the
# test cancels the VM and returns normally, running every cleanup (control
# plane, temporary directories, kubeconfig). Killed from the terminal
# together with its children, it would leave them half stopped. In a
# non-interactive shell a background job is no process group leader, so
# setsid does not fork: $! is the test's pid.
pid=
forward() {
	if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
}
trap forward INT TERM
# CI=true: a missing prerequisite (control plane binaries, VM assets) is
# an error, not a skip that would look like a demo that ran.
(cd test/e2e/cluster && exec setsid env NODENET_DEMO=1 CI=true "$root/$bin/cluster-e2e.test" \
	-test.run '^TestDemo$' -test.v -test.timeout 0) &
pid=$!
# wait returns early when a trapped signal arrives: wait again until the
# test itself has ended, and report its status.
status=0
while :; do
	wait "$pid" && status=0 || status=$?
	if ! kill -0 "$pid" 2>/dev/null; then break; fi
done
rm -f "$bin/cluster-e2e.test"
if [ "$status" -ne 0 ]; then
	echo "nodenet demo: failed (exit status $status); the output above says why" >&2
	exit "$status"
fi
echo "nodenet demo: stopped, everything cleaned up"
