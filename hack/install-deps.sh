#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, idempotently: it
# does nothing when everything is present, and runs `apt-get update` once
# before installing what is missing. Go tools are pinned in tools/go.mod and
# built by `make tools`; nothing else is installed by hand.
set -euo pipefail

# Debian packages the test layers use. (The scripts that need one also check
# for it, so each works alone.)
packages=(
	git      # version stamping, buf breaking against history
	python3  # small checks in hack/verify.sh
	nftables # the kernel tests check that nft lists firewalld's table (the daemons never run nft)
	bird2    # routerd's BGP interop tests peer with BIRD (routerd/internal/bgp)
	ca-certificates # make images copies the host's CA bundle into the images (nothing is downloaded)
	# The VM layer (hack/vm-assets.sh): QEMU boots Debian's stock kernel
	# with an initramfs of busybox; kmod's depmod indexes its modules.
	qemu-system-x86
	busybox-static
	kmod
	xz-utils
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
