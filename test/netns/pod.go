package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Pod is a pod: a namespace attached to its node's kube-bridge by the CNI
// plugins, eth0 with an address from the node's pod CIDR and a default
// route via the bridge. Name and the namespace helpers (Serve*, Dial*, Do,
// ...) come from the embedded NetNS.
type Pod struct {
	*NetNS
	// Node is the node the pod runs on.
	Node *Node
	// IP is eth0's address, allocated by host-local.
	IP netip.Addr
	// MAC is eth0's MAC.
	MAC net.HardwareAddr
	// ContainerID is the sandbox id the CNI plugins were given.
	ContainerID string

	topo  *Topology
	att   *podAttachment
	state podState // guarded by topo.mu
}

type podState int

const (
	podCreating podState = iota
	podReady
	podDeleting
)

// CreatePod creates a pod called name on node n, the way a kubelet's
// runtime does: a new network namespace, CNI ADD of the loopback network,
// then CNI ADD with the node's config (the bridge plugin makes the veth pair
// and host-local picks the address). Pod names are unique in a topology; a
// deleted pod's name can be used again.
func (t *Topology) CreatePod(ctx context.Context, n *Node, name string) (_ *Pod, err error) {
	if err := checkPodName(name); err != nil {
		return nil, err
	}
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return nil, errors.New("netns: topology closed")
	case t.pods[name] != nil:
		t.mu.Unlock()
		return nil, fmt.Errorf("netns: pod %q exists", name)
	}
	t.seq++
	p := &Pod{Node: n, topo: t, ContainerID: fmt.Sprintf("%s-%s-%d", t.ID, name, t.seq)}
	t.pods[name] = p // reserves the name while the pod is made
	t.mu.Unlock()
	defer func() {
		if err != nil {
			t.mu.Lock()
			delete(t.pods, name)
			t.mu.Unlock()
		}
	}()

	ns, err := newNetNS(name, t.netnsPath("pod-"+name), false)
	if err != nil {
		return nil, err
	}
	p.NetNS = ns
	att, err := cniAdd(ctx, n.cni, n.CNIConfDir, p.ContainerID, name, ns.Path)
	if err != nil {
		_ = ns.destroy()
		return nil, fmt.Errorf("pod %s on %s: %w", name, n.Name, err)
	}
	p.att, p.IP, p.MAC = att, att.ip, att.mac

	// An address used before (host-local wraps around its range) may still
	// have neighbour entries with the old pod's MAC on the node and in the
	// pods next to it: clear them so the new pod is reachable at once.
	t.mu.Lock()
	if t.used[n] == nil {
		t.used[n] = map[string]int{}
	}
	reused := t.used[n][p.IP.String()] > 0
	t.used[n][p.IP.String()]++
	t.mu.Unlock()
	if reused {
		if err := t.flushNeighboursOn(n, p.IP, p); err != nil {
			_ = cniDel(context.WithoutCancel(ctx), n.cni, att)
			_ = ns.destroy()
			return nil, err
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		// Close ran meanwhile and did not see a ready pod; it unmounts
		// what is left under the run directory, ns included.
		_ = ns.destroy()
		return nil, errors.New("netns: topology closed")
	}
	p.state = podReady
	return p, nil
}

// Delete deletes the pod as a kubelet does: its servers stop (the
// containers), CNI DEL runs with the config it was added with (the bridge
// plugin removes the veth, host-local releases the address), then the
// namespace goes. Neighbour entries for its address are flushed on the node
// and the node's other pods. Deleting twice is a no-op.
func (p *Pod) Delete() error {
	t := p.topo
	t.mu.Lock()
	if p.state != podReady || t.closed {
		t.mu.Unlock()
		return nil
	}
	p.state = podDeleting
	t.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
	defer cancel()
	var errs []error
	p.stopServer()
	errs = append(errs, cniDel(ctx, p.Node.cni, p.att))
	errs = append(errs, p.destroy())
	errs = append(errs, t.flushNeighboursOn(p.Node, p.IP, p))

	t.mu.Lock()
	if t.pods[p.Name] == p {
		delete(t.pods, p.Name)
	}
	t.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete pod %s: %w", p.Name, err)
	}
	return nil
}

// flushNeighboursOn deletes neighbour entries for ip in node n's namespace
// and in its pods other than skip.
func (t *Topology) flushNeighboursOn(n *Node, ip netip.Addr, skip *Pod) error {
	errs := []error{n.FlushNeighbours(ip)}
	for _, q := range t.Pods() {
		if q.Node == n && q != skip {
			errs = append(errs, q.FlushNeighbours(ip))
		}
	}
	return errors.Join(errs...)
}

// stopServer stops the pod's echo servers before its network goes.
func (p *Pod) stopServer() {
	p.mu.Lock()
	srv := p.server
	p.server = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// checkPodName accepts DNS labels (what Kubernetes allows for names that
// end up in hostnames): lower-case letters, digits and '-', at most 63.
func checkPodName(name string) error {
	ok := len(name) > 0 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-'
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("netns: pod name %q: want a DNS label (a-z, 0-9, '-', at most 63)", name)
	}
	return nil
}
