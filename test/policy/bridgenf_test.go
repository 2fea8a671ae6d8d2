//go:build kernel

package policy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/test/netns"
)

// Pods of one node talk through the node's kube-bridge: without
// br_netfilter's calls into the IP hooks (bridge-nf-call-iptables for IPv4,
// -ip6tables for IPv6), bridged packets never reach the inet table
// firewalld enforces policies in, and every same-node pair would be
// unpoliced. The settings exist once the br_netfilter module is loaded and,
// since Linux 5.3, are per network namespace (each new namespace starting
// at 1). Setting them in a node must not change the host's: setBridgeNetfilter
// checks that before relying on it.

// bridgeNFKeys are the settings, as paths under /proc/sys.
func bridgeNFKeys() []string {
	return []string{"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"}
}

// setBridgeNetfilter sets both settings to 1 in every node, once it has
// checked that they are per namespace on this kernel, and reports what it
// found.
func (f *fixture) setBridgeNetfilter(t *testing.T) string {
	t.Helper()
	hostBefore, err := os.ReadFile("/proc/sys/" + bridgeNFKeys()[0])
	if errors.Is(err, os.ErrNotExist) {
		t.Fatal("br_netfilter is not loaded (no /proc/sys/net/bridge): bridged pod-to-pod traffic could not be policed; load the module on the host (modprobe br_netfilter)")
	}
	if err != nil {
		t.Fatal(err)
	}
	release := kernelRelease()
	if !atLeast(release, 5, 3) {
		t.Fatalf("kernel %s: br_netfilter's settings are global before Linux 5.3; setting them in a node would change the host's", release)
	}
	n0, n1 := f.nodes[0], f.nodes[1]
	key := bridgeNFKeys()[0]
	defaults, err := readSysctl(n0.NetNS, key)
	if err != nil {
		t.Fatal(err)
	}
	// Flip node1 away from node0's value: node0 and the host must not move.
	flipped := "0"
	if defaults == "0" {
		flipped = "1"
	}
	if err := n1.SetSysctl(key, flipped); err != nil {
		t.Fatal(err)
	}
	n0After, err := readSysctl(n0.NetNS, key)
	if err != nil {
		t.Fatal(err)
	}
	hostAfter, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		t.Fatal(err)
	}
	if n0After != defaults || strings.TrimSpace(string(hostAfter)) != strings.TrimSpace(string(hostBefore)) {
		t.Fatalf("kernel %s: %s is not per network namespace: setting %s in node1 moved node0 from %s to %s and the host from %s to %s",
			release, key, flipped, defaults, n0After, strings.TrimSpace(string(hostBefore)), strings.TrimSpace(string(hostAfter)))
	}
	for _, n := range f.nodes {
		for _, k := range bridgeNFKeys() {
			if err := n.SetSysctl(k, "1"); err != nil {
				t.Fatalf("%s: %s: %v", n.Name, k, err)
			}
			if v, err := readSysctl(n.NetNS, k); err != nil || v != "1" {
				t.Fatalf("%s: %s reads %q, %v after setting 1", n.Name, k, v, err)
			}
		}
	}
	return fmt.Sprintf("kernel %s: the bridge-nf-call settings are per network namespace (a new namespace starts at %s; "+
		"setting %s in node1 left node0 and the host alone); set to 1 in every node", release, defaults, flipped)
}

// readSysctl reads /proc/sys/<key> as seen from inside ns.
func readSysctl(ns *netns.NetNS, key string) (string, error) {
	var v string
	err := ns.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// atLeast reports whether release (e.g. "6.18.44-fc") is major.minor or
// newer; false when it cannot tell.
func atLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
