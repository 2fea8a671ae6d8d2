#!/usr/bin/env bash
# Builds what the VM test runner (test/vm) boots: Debian's stock kernel, its
# modules and a small busybox initramfs, once, into a cache outside the
# repository:
#
#   ${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/vm/<version>/
#
# <version> is the Debian version of the kernel package (linux-image-amd64 is
# a metapackage; the kernel is in the linux-image-<abi>-amd64 it depends on).
# The kernel package is extracted with dpkg-deb, never installed: the host
# keeps its own kernel. A complete cache is used as it is, and nothing is
# installed or downloaded then.
#
# Usage: vm-assets.sh
#   Installs the Debian packages it needs when they are missing (root),
#   builds the assets when missing, and prints the asset directory.
#   NODENET_VM_KERNEL_PACKAGE=linux-image-6.1.0-NN-amd64 pins the kernel
#   package instead of following linux-image-amd64.
# Progress goes to stderr; stdout is only the directory.
#
# The directory holds:
#   vmlinux              the uncompressed kernel (QEMU boots it through PVH,
#                        skipping ~3.5 s of decompression under TCG)
#   vmlinuz              the kernel as packaged (fallback)
#   config               the kernel's build configuration (what it supports)
#   initramfs.cpio.gz    busybox, /init, the modules needed to mount 9p
#   lib/modules/<release>/  every module of the package, with depmod's index
#   kernel-release       uname -r of the kernel
#   complete             written last: "format <n>"; test/vm checks <n>
set -euo pipefail

# format changes whenever the layout or the contract with test/vm changes
# (test/vm/assets.go assetFormat must match); an older cache is rebuilt.
format=1
cache=${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/vm
packages=(
	qemu-system-x86 # the VM (TCG: no KVM needed)
	busybox-static  # the initramfs userland, and its cpio
	kmod            # depmod, and modprobe to list module dependencies
	xz-utils        # unpacks the kernel image to a bootable vmlinux
)
# Modules the initramfs carries: what mounting the 9p shares and the serial
# ports needs. Everything else loads from lib/modules over 9p.
boot_modules=(virtio_pci virtio_console 9pnet_virtio 9p overlay)

log() { echo "vm-assets: $*" >&2; }
die() {
	log "$*"
	exit 1
}

updated=0 # apt-get update ran
tmp=""    # the build directory, removed on exit
apt_update() {
	[ "$updated" = 1 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "the package lists need 'apt-get update'; run as root"
	log "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	updated=1
}

install_packages() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}; run as root to install them"
	apt_update
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# kernel_package: the linux-image-<abi>-amd64 package to use.
kernel_package() {
	if [ -n "${NODENET_VM_KERNEL_PACKAGE:-}" ]; then
		echo "$NODENET_VM_KERNEL_PACKAGE"
		return
	fi
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# candidate_version <package>: the version apt would download.
candidate_version() {
	apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2; exit }'
}

is_complete() { [ -f "$1/complete" ] && [ "$(cat "$1/complete")" = "format $format" ]; }

# newest_complete: the most recently built complete cache, for machines whose
# package lists cannot name a kernel (no lists, no network).
newest_complete() {
	local d best="" best_time=0 t
	for d in "$cache"/*/; do
		d=${d%/}
		is_complete "$d" || continue
		t=$(stat -c %Y "$d/complete")
		if [ "$t" -gt "$best_time" ]; then
			best=$d
			best_time=$t
		fi
	done
	[ -n "$best" ] && echo "$best"
}

# resolve: sets pkg and version, refreshing the package lists once when they
# name no kernel.
resolve() {
	pkg=$(kernel_package)
	version=""
	[ -n "$pkg" ] && version=$(candidate_version "$pkg")
	if [ -z "$version" ] && [ "$(id -u)" -eq 0 ]; then
		apt_update
		pkg=$(kernel_package)
		[ -n "$pkg" ] && version=$(candidate_version "$pkg")
	fi
	return 0
}

# fetch <dir>: downloads the kernel .deb into dir.
fetch() {
	log "downloading $pkg=$version"
	(cd "$1" && apt-get download -o APT::Sandbox::User=root "$pkg=$version" >&2)
}

# extract_vmlinux <vmlinuz> <out>: the ELF kernel inside the bzImage. Debian
# compresses it with xz; the payload starts at the xz magic.
extract_vmlinux() {
	local off
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$1" | head -1 | cut -d: -f1 || true)
	[ -n "$off" ] || return 1
	# xz complains about the bytes after the stream; the ELF check below is
	# what counts.
	tail -c +$((off + 1)) "$1" | xz -dc >"$2" 2>/dev/null || true
	[ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ]
}

# build_initramfs <tree> <release> <out>
build_initramfs() {
	local tree=$1 release=$2 out=$3 stage m f rel
	stage=$(mktemp -d "$cache/.initramfs.XXXXXX")
	mkdir -p "$stage"/{bin,proc,sys,dev,ctl,host,newroot,rw,tmp,lib/modules/"$release"}
	cp /bin/busybox "$stage/bin/busybox"
	for m in "${boot_modules[@]}"; do
		modprobe -d "$tree" -S "$release" --show-depends "$m"
	done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r f; do
		rel=${f#"$tree"/lib/modules/"$release"/}
		mkdir -p "$stage/lib/modules/$release/$(dirname "$rel")"
		cp "$f" "$stage/lib/modules/$release/$rel"
	done
	cp "$tree/lib/modules/$release"/modules.{order,builtin,builtin.modinfo} "$stage/lib/modules/$release/"
	depmod -b "$stage" "$release"
	# Stage 1. It only reaches the runner's control share; the runner writes
	# stage 2 (/ctl/init.sh) for each run (test/vm/guestinit.go).
	cat >"$stage/init" <<-'EOF'
		#!/bin/busybox sh
		/bin/busybox --install -s /bin
		export PATH=/bin
		mount -t proc proc /proc
		mount -t sysfs sysfs /sys
		mount -t devtmpfs devtmpfs /dev
		# Modules the kernel asks for on demand load with busybox's modprobe.
		echo /bin/modprobe >/proc/sys/kernel/modprobe
		for m in @BOOT_MODULES@; do
			modprobe "$m" || echo "nodenet-vm: cannot load $m"
		done
		if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 nodenet.ctl /ctl && [ -f /ctl/init.sh ]; then
			exec sh /ctl/init.sh
		fi
		echo "nodenet-vm: no control share (nodenet.ctl with init.sh)"
		poweroff -f
	EOF
	sed -i "s/@BOOT_MODULES@/${boot_modules[*]}/" "$stage/init"
	chmod 0755 "$stage/init"
	(cd "$stage" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null | gzip -9) >"$out"
	rm -rf "$stage"
}

# build <tmp> <final>: the asset set from the .deb in tmp, assembled in tmp
# and renamed into place, so a cache dir is either complete or absent.
build() {
	local tmp=$1 final=$2 release
	log "extracting $pkg=$version"
	dpkg-deb -x "$tmp"/*.deb "$tmp/pkg"
	release=$(ls "$tmp/pkg/lib/modules")
	if [ -z "$release" ] || [ ! -f "$tmp/pkg/boot/vmlinuz-$release" ]; then
		die "$pkg has no kernel in boot/ and lib/modules/"
	fi
	mkdir -p "$tmp/out/lib/modules"
	mv "$tmp/pkg/lib/modules/$release" "$tmp/out/lib/modules/$release"
	log "depmod $release"
	depmod -b "$tmp/out" "$release"
	cp "$tmp/pkg/boot/vmlinuz-$release" "$tmp/out/vmlinuz"
	cp "$tmp/pkg/boot/config-$release" "$tmp/out/config"
	if ! extract_vmlinux "$tmp/out/vmlinuz" "$tmp/out/vmlinux"; then
		log "cannot unpack vmlinux; the runner boots vmlinuz (slower)"
		rm -f "$tmp/out/vmlinux"
	fi
	log "building the initramfs"
	build_initramfs "$tmp/out" "$release" "$tmp/out/initramfs.cpio.gz"
	echo "$release" >"$tmp/out/kernel-release"
	echo "format $format" >"$tmp/out/complete"
	rm -rf "$final"
	mv "$tmp/out" "$final"
	log "assets ready: $final"
}

main() {
	[ $# -eq 0 ] || die "usage: $0 (no arguments)"
	install_packages
	mkdir -p "$cache"
	# One builder at a time: parallel test packages may all ask at once.
	exec 9>"$cache/.lock"
	flock 9
	resolve
	if [ -z "$version" ]; then
		local d
		if d=$(newest_complete); then
			log "no kernel package in the package lists; using $d"
			echo "$d"
			return
		fi
		die "cannot find the kernel package (apt-cache depends linux-image-amd64)"
	fi
	if is_complete "$cache/$version"; then
		echo "$cache/$version"
		return
	fi
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	if ! fetch "$tmp"; then
		# Stale package lists name a version the mirror no longer has:
		# refresh them once and look again.
		[ "$updated" = 0 ] || die "cannot download $pkg=$version"
		apt_update
		resolve
		[ -n "$version" ] || die "no kernel package found after apt-get update"
		if is_complete "$cache/$version"; then
			echo "$cache/$version"
			return
		fi
		fetch "$tmp" || die "cannot download $pkg=$version"
	fi
	build "$tmp" "$cache/$version"
	echo "$cache/$version"
}

main "$@"
