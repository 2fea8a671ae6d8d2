#!/usr/bin/env bash
# Checks make demo without a terminal, both ways it ends (about 2 minutes
# each; the cached builds must exist: make demo-check depends on them):
#   1. NODENET_DEMO_HOLD=0: the demo is shown, checked, and stops by itself.
#   2. Ctrl-C: the demo runs until SIGINT reaches its process group, as a
#      terminal sends it, and then stops.
# After each, nothing of it may be left: no process of its control plane or
# VM, no temporary directory, no kubeconfig.
set -euo pipefail
cd "$(dirname "$0")/.."
kubeconfig=_output/demo/kubeconfig
tmp=${TMPDIR:-/tmp}
log=$(mktemp)
pid=
# A failed check stops the demo it left running (SIGTERM: the same clean
# stop as Ctrl-C).
finish() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || true
		wait "$pid" || true
	fi
	rm -f "$log"
}
trap finish EXIT

fail() {
	echo "check-demo: $*; the end of the demo's output:" >&2
	tail -n 40 "$log" >&2
	digest >&2
	exit 1
}

# digest prints, last (where a CI summary looks), why the demo failed: the
# end of a failed run's output is the control plane's logs, dumped as it
# stops. The last step shown, the failures of the host and guest tests,
# and what the VM's console said of a timeout (hung tasks, say).
digest() {
	echo "check-demo: digest of the demo's output (the whole output is above):"
	grep -E '^## [0-9]+\.' "$log" | tail -n 1 | sed 's/^/  last step shown: /'
	grep -vE '^[[:space:]]*[IWEF][0-9]{4} ' "$log" |
		grep -E -e '--- FAIL|^panic:|_test\.go:[0-9]+:|vm: |timed out|timings:|blocked for more than|unregister_netdevice|BUG:|WARNING:|Call Trace' |
		cut -c1-400 | tail -n 60 | sed 's/^/  /'
}

# expect_shown checks the log has every step and the usage.
expect_shown() {
	local want
	for want in "## 1. The nodes" "ip route show proto 196" "routerd status --run-dir" "ipvsadm -Ln" \
		"ClusterIP, round robin" "NodePort from outside the cluster" "blocked, no answer" \
		"nodenet demo: the cluster is ready." "--kubeconfig $kubeconfig get nodes,pods,svc,networkpolicies -A -o wide" \
		"nodenet demo: stopped, everything cleaned up"; do
		grep -qF -- "$want" "$log" || fail "the output lacks \"$want\""
	done
}

# expect_clean checks the run whose test temp dirs were $1 left nothing.
expect_clean() {
	local d
	[ ! -e "$kubeconfig" ] || fail "$kubeconfig is left"
	for d in $1; do
		[ ! -e "$d" ] || fail "$d is left"
		! pgrep -f -- "$d" >/dev/null || fail "processes of $d are left: $(pgrep -af -- "$d")"
	done
}

# new_test_dirs lists the test temp dirs that were not there before ($1).
new_test_dirs() {
	comm -13 <(echo "$1") <(ls -d "$tmp"/TestDemo* 2>/dev/null | sort)
}

echo "check-demo: 1. NODENET_DEMO_HOLD=0"
NODENET_DEMO_HOLD=0 ./hack/demo.sh >"$log" 2>&1 || fail "the demo failed"
expect_shown
# The test's temporary directory is gone by now: the log names it.
dirs=$(grep -o "(dir $tmp/TestDemo[0-9]*" "$log" | cut -d' ' -f2 | sort -u)
[ -n "$dirs" ] || fail "the log names no test temp dir"
expect_clean "$dirs"

echo "check-demo: 2. Ctrl-C"
before=$(ls -d "$tmp"/TestDemo* 2>/dev/null | sort || true)
# With job control on, the job gets a process group of its own for the
# signal to go to, as a terminal's Ctrl-C goes to the foreground job; and
# SIGINT is not ignored in it, as it would be in a background job started
# without job control (which demo.sh could then not trap).
# env --default-signal: a shell started in the background by a
# non-interactive one (a CI runner's `cmd &`) has SIGINT ignored, and a
# signal ignored on entry cannot be trapped: demo.sh could not pass it on.
set -m
env --default-signal=INT ./hack/demo.sh >"$log" 2>&1 </dev/null &
pid=$!
set +m
ok=
for _ in $(seq 600); do
	if grep -qF "Ctrl-C stops the demo" "$log" && [ -e "$kubeconfig" ]; then
		ok=1
		break
	fi
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
[ -n "$ok" ] || fail "the demo did not come up"
dirs=$(new_test_dirs "$before")
[ -n "$dirs" ] || fail "no test temp dir found in $tmp"
if command -v kubectl >/dev/null; then
	kubectl --kubeconfig "$kubeconfig" get pods -n demo >/dev/null || fail "kubectl with $kubeconfig failed"
fi
kill -INT -- "-$pid"
# The stop is bounded: a demo that ignores the signal fails the check
# instead of hanging CI.
for _ in $(seq 180); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
kill -0 "$pid" 2>/dev/null && fail "the demo did not stop within 180 s of SIGINT"
wait "$pid" || fail "the demo exited with status $? after SIGINT"
expect_shown
expect_clean "$dirs"
echo "check-demo: ok"
