// Package vm runs a command inside a small virtual machine that boots
// Debian's stock kernel, for the kernel features the host kernel may lack
// (IPVS, IPIP, dummy links, SCTP). The command sees the host's files at the
// same paths, so a Go test binary, its libc and its testdata work as they
// are; its output and exit code come back to the caller.
//
// The VM is QEMU with TCG (no KVM needed): q35, one vCPU, the uncompressed
// kernel booted through PVH, and a busybox initramfs built by
// hack/vm-assets.sh into a cache outside the repository. Inside the guest:
//
//   - the host root is shared read-only over virtio-9p and made writable
//     with an overlay whose upper layer is a tmpfs, so nothing the command
//     writes reaches the host (except Options.WritableDirs);
//   - the command runs chrooted into that overlay, with its environment and
//     working directory, stdin from /dev/null, stdout and stderr on two
//     virtio serial ports that QEMU writes to pipes read by Run;
//   - its exit status goes to a small writable 9p share (the run
//     directory), then the guest powers off;
//   - Options.Forwards lets the guest reach TCP services on the host
//     (e.g. a kube-apiserver on 127.0.0.1) through QEMU's user networking
//     with restrict=on: the guest reaches nothing else.
//
// Why QEMU and not user-mode Linux: Debian's UML kernel builds nftables
// without the ip, ip6 and inet families (no NAT chains, no inet filter
// tables), has no SMP and no user-mode network that reaches the host's
// loopback without host-side setup; QEMU boots the same kernel that real
// Debian nodes run. See the numbers in test/vm/README.md.
package vm
