#!/usr/bin/env bash
# Fails when anything generated or formatted is not what is committed:
# the API's Go code, go.work, go.mod/go.sum of every module, gofmt; and when
# the api module depends on more than grpc and protobuf.
# Usage: verify.sh <tools-dir>
set -euo pipefail
tools=$(realpath "$1")
cd "$(dirname "$0")/.."
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Generated API code.
cp -r api "$tmp/api"
./hack/generate-api.sh "$tools" "$tmp/api" >/dev/null
if ! diff -r -q api "$tmp/api" >/dev/null; then
	echo "api/: generated code is stale; run 'make generate'" >&2
	diff -r api "$tmp/api" | head -40 >&2 || true
	fail=1
fi

# go.work.
./hack/update-go-work.sh "$tmp/go.work"
if ! cmp -s go.work "$tmp/go.work"; then
	echo "go.work is stale; run 'make generate'" >&2
	diff go.work "$tmp/go.work" >&2 || true
	fail=1
fi

# go.mod / go.sum of every module, tools included.
for m in api internal routerd proxyd firewalld test tools tools/buf deploy/imagebuild test/chart test/controlplane/build/kube test/controlplane/build/etcd; do
	if ! out=$(cd "$m" && GOWORK=off go mod tidy -diff 2>&1); then
		echo "$m/go.mod or go.sum is not tidy; run 'cd $m && GOWORK=off go mod tidy':" >&2
		echo "$out" | head -40 >&2
		fail=1
	fi
done

# The API module is what other projects import: grpc and protobuf only.
extra=$(cd api && go mod edit -json | python3 -c '
import json, sys
mod = json.load(sys.stdin)
allowed = {"google.golang.org/grpc", "google.golang.org/protobuf"}
print(" ".join(r["Path"] for r in mod.get("Require") or [] if not r.get("Indirect") and r["Path"] not in allowed))
')
if [ -n "$extra" ]; then
	echo "api/ may depend only on grpc and protobuf; it requires: $extra" >&2
	fail=1
fi

# The design card's libraries at their pinned versions (hack/pins.txt).
for m in api internal routerd proxyd firewalld test; do
	while read -r path want; do
		case "$path" in "" | "#"*) continue ;; esac
		got=$(cd "$m" && go mod edit -json | python3 -c '
import json, sys
mod = json.load(sys.stdin)
print(next((r["Version"] for r in mod.get("Require") or [] if r["Path"] == sys.argv[1]), ""))
' "$path")
		if [ -n "$got" ] && [ "$got" != "$want" ]; then
			echo "$m requires $path $got; the pin is $want (hack/pins.txt)" >&2
			fail=1
		fi
	done <hack/pins.txt
done

# Formatting (of the files there: a file deleted but not yet committed is
# still listed).
unformatted=$(git ls-files -co --exclude-standard '*.go' | while read -r f; do [ -f "$f" ] && echo "$f"; done | xargs -r gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" >&2
	echo "$unformatted" >&2
	fail=1
fi

# Additive-only API evolution: compare with the previous commit that has the API.
if git rev-parse -q --verify 'HEAD~1:api/buf.yaml' >/dev/null 2>&1; then
	(cd api && "$tools/buf" breaking --against '../.git#ref=HEAD~1,subdir=api') || fail=1
fi

exit $fail
