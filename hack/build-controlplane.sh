#!/usr/bin/env bash
# Builds the test control plane (kube-apiserver, kube-controller-manager,
# etcd) from the Go module proxy, once, into a cache outside the repository:
#
#   ${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/controlplane/<key>/
#
# <key> names the Kubernetes and etcd versions and hashes the wrapper modules
# (test/controlplane/build/{kube,etcd}), so a version bump builds a new set and
# an unchanged one is never rebuilt. No release binaries are downloaded:
# everything is compiled from source: about 7-8 min on 2 cores with empty Go
# caches (20 s of it downloading modules), more when the cores are shared.
#
# Usage: build-controlplane.sh [--print-dir]
#   (no argument)  build when missing, then print the binaries' directory
#   --print-dir    print the directory only, build nothing (exit 0 either way;
#                  the caller checks for the files)
# Progress goes to stderr; stdout is only the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
kube_mod=$root/test/controlplane/build/kube
etcd_mod=$root/test/controlplane/build/etcd
binaries=(kube-apiserver kube-controller-manager etcd)

# version <module dir> <module path>: the required version, read from go.mod
# without loading the module graph (the warm path must stay instant/offline).
version() {
	sed -nE "s#^(require)?[[:space:]]*${2//./\\.} (v[^ ]+).*#\\2#p" "$1/go.mod" | head -1
}
kube_version=$(version "$kube_mod" k8s.io/kubernetes)
etcd_version=$(version "$etcd_mod" go.etcd.io/etcd/server/v3)
if [ -z "$kube_version" ] || [ -z "$etcd_version" ]; then
	echo "build-controlplane: cannot read the versions from $kube_mod/go.mod and $etcd_mod/go.mod" >&2
	exit 1
fi
# The key changes whenever what is built could change: the wrapper modules'
# requirements and sums, and etcd's main.
hash=$(cd "$root/test/controlplane/build" &&
	cat kube/go.mod kube/go.sum etcd/go.mod etcd/go.sum etcd/main.go | sha256sum | cut -c1-12)
key="kube-${kube_version}-etcd-${etcd_version}-${hash}"
cache=${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/controlplane
dir=$cache/$key

complete() {
	local b
	for b in "${binaries[@]}"; do
		[ -x "$1/$b" ] || return 1
	done
}

if [ "${1:-}" = "--print-dir" ]; then
	echo "$dir"
	exit 0
fi
if [ $# -gt 0 ]; then
	echo "usage: $0 [--print-dir]" >&2
	exit 2
fi
if complete "$dir"; then
	echo "$dir"
	exit 0
fi

mkdir -p "$cache"
# Two test runs may ask for a build at once: one builds, the other waits.
exec 9>"$cache/.lock-$key"
flock 9
if complete "$dir"; then
	echo "$dir"
	exit 0
fi

start=$(date +%s)
tmp=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Interrupted (a cancelled test sends SIGTERM to the whole group): exit
# through the EXIT trap so no half-built directory is left in the cache.
trap 'exit 143' TERM INT HUP

# Kubernetes' own build (hack/lib/version.sh) stamps these; without them the
# binaries report v0.0.0-master. The date is the tag's, so builds reproduce.
kube_date=$(cd "$kube_mod" && GOWORK=off go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)
minor=${kube_version#v*.}
minor=${minor%%.*}
major=${kube_version#v}
major=${major%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	kube_ldflags+=" -X ${pkg}.gitVersion=${kube_version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
	kube_ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${kube_date:-1970-01-01T00:00:00Z}"
done

# Static binaries, like Kubernetes' and etcd's releases; the tags are the
# ones hack/lib/golang.sh uses (notest and grpcnotrace leave out test-only
# and tracing code). No VCS stamp: the etcd wrapper sits in this repository,
# and its commit must not change the binary.
export GOWORK=off CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
echo "build-controlplane: building etcd ${etcd_version} into $dir" >&2
(cd "$etcd_mod" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" .)
echo "build-controlplane: building kube-apiserver, kube-controller-manager ${kube_version} (the long part)" >&2
(cd "$kube_mod" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$kube_ldflags" -o "$tmp/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)

if ! complete "$tmp"; then
	echo "build-controlplane: go build left out a binary in $tmp" >&2
	exit 1
fi
# A rename publishes the set at once: a reader never sees half of it.
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "build-controlplane: built in $(($(date +%s) - start)) s" >&2
echo "$dir"
