#!/usr/bin/env bash
# Builds the CNI reference plugins the network-namespace test topology runs
# (test/netns): bridge, host-local and loopback of containernetworking/plugins,
# from the Go module proxy, into a cache outside the repository:
#
#   ${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/cni/<version>/
#
# Idempotent: does nothing when the binaries are there. Safe to run
# concurrently (parallel tests may all find the cache empty): runs take turns
# under a lock, and a run builds into its own temporary directory that it
# publishes with one rename, so a reader never sees half a cache.
# Prints the directory that holds the plugins.
# Usage: build-cni-plugins.sh
set -euo pipefail

version=v1.9.1
plugins=(main/bridge ipam/host-local main/loopback)

cache=${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}
dest=$cache/cni/$version

complete() {
	local p
	for p in "${plugins[@]}"; do
		[[ -x $dest/${p##*/} ]] || return 1
	done
}

if complete; then
	echo "$dest"
	exit 0
fi

mkdir -p "$cache/cni"
# Parallel tests may all find the cache empty: the first builds, the others
# wait for it here instead of compiling the same plugins at the same time.
if command -v flock >/dev/null; then
	exec 9>"$cache/cni/.build.lock"
	flock 9
	if complete; then
		echo "$dest"
		exit 0
	fi
fi
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp" # mktemp makes it 0700; the cache is readable like any other

pkgs=()
for p in "${plugins[@]}"; do
	pkgs+=("github.com/containernetworking/plugins/plugins/$p@$version")
done
# `go install pkg@version` builds the plugins' own module as released (no
# workspace, no GOFLAGS from the caller). Static binaries (no cgo) so they also
# run in a VM whose userland differs from the build machine's.
(cd "$tmp" && GOWORK=off GOFLAGS=-trimpath CGO_ENABLED=0 GOBIN="$tmp" go install "${pkgs[@]}")

# A directory left incomplete by hand (a plugin deleted) is replaced; a
# complete one published meanwhile by a concurrent run wins over ours.
if [[ -e $dest ]] && ! complete; then
	rm -rf "$dest"
fi
if ! mv -T "$tmp" "$dest" 2>/dev/null && ! complete; then
	echo "build-cni-plugins: could not publish $dest" >&2
	exit 1
fi
echo "$dest"
