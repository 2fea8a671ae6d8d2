package desired

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/proxyd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Compute returns the desired state for in and the problems it skipped.
// Services are visited in namespace/name order, so when two claim the same
// virtual service the first keeps it, whatever order the informer gave.
func Compute(in Input, cfg Config) (model.State, []Problem) {
	svcs := slices.DeleteFunc(slices.Clone(in.Services), func(s *corev1.Service) bool { return s == nil })
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	results := make([]ServiceResult, len(svcs))
	for i, svc := range svcs {
		results[i] = ComputeService(svc, in.Slices[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}], in.Node, cfg)
	}
	return Merge(results)
}

// ServiceResult is the desired state of one Service.
type ServiceResult struct {
	Services    []*model.VirtualService
	HealthCheck *model.HealthCheck
	Problems    []Problem
}

// Merge joins per-Service results, given in namespace/name order, into one
// state. A virtual service claimed twice stays with the first claimant.
func Merge(results []ServiceResult) (model.State, []Problem) {
	var st model.State
	var problems []Problem
	byKey := map[model.VSKey]*model.VirtualService{}
	hcPorts := map[uint16]types.NamespacedName{}
	for _, r := range results {
		problems = append(problems, r.Problems...)
		for _, vs := range r.Services {
			if prev, taken := byKey[vs.VSKey]; taken {
				problems = append(problems, Problem{Kind: "Service", Object: vs.Service, Reason: "DuplicateVIP",
					Message: fmt.Sprintf("%s is already used by %s port %q", vs.VSKey, prev.Service, prev.PortName)})
				continue
			}
			byKey[vs.VSKey] = vs
			st.Services = append(st.Services, vs)
		}
		// One node port answers for one Service: like a VIP, a health check
		// port claimed twice stays with the first claimant (before, both were
		// kept and their order was left to an unstable sort).
		if hc := r.HealthCheck; hc != nil {
			if prev, taken := hcPorts[hc.Port]; taken {
				problems = append(problems, Problem{Kind: "Service", Object: hc.Service, Reason: "DuplicateHealthCheckPort",
					Message: fmt.Sprintf("healthCheckNodePort %d is already used by %s", hc.Port, prev)})
			} else {
				hcPorts[hc.Port] = hc.Service
				st.HealthChecks = append(st.HealthChecks, *hc)
			}
		}
	}
	slices.SortFunc(st.Services, func(a, b *model.VirtualService) int { return a.VSKey.Compare(b.VSKey) })
	slices.SortFunc(st.HealthChecks, func(a, b model.HealthCheck) int { return cmp.Compare(a.Port, b.Port) })
	return st, problems
}

// ComputeService returns the desired state of one Service from its
// EndpointSlices. It reads nothing else, so a caller may cache it until the
// Service, its slices or the node change.
func ComputeService(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, node Node, cfg Config) ServiceResult {
	if cfg.DefaultScheduler == "" {
		cfg.DefaultScheduler = "rr"
	}
	if svc == nil {
		return ServiceResult{}
	}
	node.IPs = nodeAddrs(node.IPs)
	c := &computation{node: node, cfg: cfg}
	c.service(svc, sortedSlices(slices_))
	// One bad endpoint is met once per Service port that uses its slice;
	// report it once.
	seen := map[Problem]bool{}
	c.out.Problems = slices.DeleteFunc(c.out.Problems, func(p Problem) bool {
		dup := seen[p]
		seen[p] = true
		return dup
	})
	return c.out
}

// nodeAddrs returns the node addresses NodePorts can be served on: valid,
// specified, without zone, IPv4-mapped ones as IPv4, each once, sorted (so
// that problems about them come in the same order whatever order the node
// facts listed them in). The input is not modified.
func nodeAddrs(in []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range in {
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

type computation struct {
	node Node
	cfg  Config
	out  ServiceResult
}

func (c *computation) problem(kind string, obj types.NamespacedName, reason, format string, args ...any) {
	c.out.Problems = append(c.out.Problems, Problem{Kind: kind, Object: obj, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// vipSet is the addresses of one kind a Service is reached on.
type vipSet struct {
	kind  model.Kind
	addrs []netip.Addr
}

func (c *computation) service(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice) {
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return // headless: DNS answers with the endpoints themselves
	}
	bad := func(reason, format string, args ...any) { c.problem("Service", name, reason, format, args...) }

	sched, err := scheduler(svc, c.cfg.DefaultScheduler)
	if err != nil {
		bad("InvalidScheduler", "%v", err)
	}
	vips := c.addresses(svc, bad)
	ranges, rangeErrs := sourceRanges(svc)
	for _, err := range rangeErrs {
		bad("InvalidSourceRange", "%v", err)
	}
	restricted := len(ranges) > 0 || len(rangeErrs) > 0
	mode := serviceTopology(svc)
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	badSlice := func(sl *discoveryv1.EndpointSlice, msg string) {
		c.problem("EndpointSlice", types.NamespacedName{Namespace: sl.Namespace, Name: sl.Name}, "InvalidEndpoint", "%s", msg)
	}

	localReady := map[netip.Addr]bool{}
	for _, sp := range svc.Spec.Ports {
		proto, ok := protocol(sp.Protocol)
		if !ok {
			bad("InvalidProtocol", "port %q: protocol %q is not TCP, UDP or SCTP", sp.Name, sp.Protocol)
			continue
		}
		if sp.Port < 1 || sp.Port > 65535 {
			bad("InvalidPort", "port %q: %d is out of range", sp.Name, sp.Port)
			continue
		}
		apiProto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
		// Endpoints are chosen once per family and shared by every VIP
		// of that family.
		chosen := map[discoveryv1.AddressType]selection{}
		pick := func(a netip.Addr) selection {
			fam := discoveryv1.AddressTypeIPv4
			if a.Is6() {
				fam = discoveryv1.AddressTypeIPv6
			}
			s, ok := chosen[fam]
			if !ok {
				s = choose(portEndpoints(sp, apiProto, fam, slices_, c.node.Name, badSlice), mode, c.node)
				chosen[fam] = s
				for _, e := range s.local[:s.localReady] {
					localReady[e.addr.Addr()] = true
				}
			}
			return s
		}
		for _, set := range vips {
			port := uint16(sp.Port)
			if set.kind == model.NodePort {
				if sp.NodePort == 0 {
					continue // allocateLoadBalancerNodePorts: false
				}
				if sp.NodePort < 1 || sp.NodePort > 65535 {
					bad("InvalidPort", "port %q: nodePort %d is out of range", sp.Name, sp.NodePort)
					continue
				}
				port = uint16(sp.NodePort)
			}
			for _, a := range set.addrs {
				s := pick(a)
				eps := s.forPolicy(policyLocal(set.kind, internalLocal, externalLocal))
				vs := &model.VirtualService{
					VSKey:              model.VSKey{Addr: a, Port: port, Proto: proto},
					Scheduler:          sched,
					PersistenceTimeout: persistence(svc),
					Dests:              dests(eps),
					Service:            name,
					PortName:           sp.Name,
					Kind:               set.kind,
					ExternalLocal:      externalLocal && set.kind.External(),
					LocalEndpoints:     s.localReady > 0,
				}
				if set.kind == model.LoadBalancer && restricted {
					vs.SourceRestricted, vs.SourceRanges = true, ranges
				}
				c.out.Services = append(c.out.Services, vs)
			}
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && externalLocal && svc.Spec.HealthCheckNodePort != 0 {
		if svc.Spec.HealthCheckNodePort < 1 || svc.Spec.HealthCheckNodePort > 65535 {
			bad("InvalidPort", "healthCheckNodePort %d is out of range", svc.Spec.HealthCheckNodePort)
		} else {
			c.out.HealthCheck = &model.HealthCheck{Service: name, Port: uint16(svc.Spec.HealthCheckNodePort), LocalEndpoints: len(localReady)}
		}
	}
}

// policyLocal: the traffic policy that applies to a VIP of kind is Local
// (internalTrafficPolicy for ClusterIPs, externalTrafficPolicy otherwise).
func policyLocal(kind model.Kind, internalLocal, externalLocal bool) bool {
	if kind.External() {
		return externalLocal
	}
	return internalLocal
}

// addresses returns every address the Service is reached on, by kind.
func (c *computation) addresses(svc *corev1.Service, bad func(reason, format string, args ...any)) []vipSet {
	parse := func(what, s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" || a.IsUnspecified() {
			bad("InvalidIP", "%s %q is not an IP address", what, s)
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	var out []vipSet
	cluster := vipSet{kind: model.ClusterIP}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, s := range ips {
		if a, ok := parse("clusterIP", s); ok {
			cluster.addrs = append(cluster.addrs, a)
		}
	}
	out = append(out, cluster)

	// A Service is proxied only in the IP families it has a ClusterIP in.
	// The docs are silent; kube-proxy runs one proxier per family and each
	// ignores a Service without a ClusterIP of its family, and drops
	// externalIPs and (VIP-mode) load-balancer IPs of the other family
	// ("kube-proxy does not implement IP family translation"). Before, a
	// single-stack IPv4 Service got NodePorts on the node's IPv6 addresses
	// (and VIPs for IPv6 externalIPs) that could never have an endpoint:
	// virtual services that only black-hole traffic, and that routerd would
	// announce. The families come from the ClusterIPs, else from
	// spec.ipFamilies; with neither, nothing is filtered.
	fams := map[bool]bool{} // by Is4
	for _, a := range cluster.addrs {
		fams[a.Is4()] = true
	}
	if len(fams) == 0 {
		for _, f := range svc.Spec.IPFamilies {
			fams[f == corev1.IPv4Protocol] = true
		}
	}
	inFamily := func(a netip.Addr) bool { return len(fams) == 0 || fams[a.Is4()] }
	ofFamily := func(what string, a netip.Addr) bool {
		if inFamily(a) {
			return true
		}
		bad("IPFamilyMismatch", "%s %s is not of the Service's IP families", what, a)
		return false
	}

	external := vipSet{kind: model.ExternalIP}
	for _, s := range svc.Spec.ExternalIPs {
		if a, ok := parse("externalIP", s); ok && ofFamily("externalIP", a) {
			external.addrs = append(external.addrs, a)
		}
	}
	out = append(out, external)

	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		lb := vipSet{kind: model.LoadBalancer}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP == "" {
				continue // a hostname: nothing to capture
			}
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue // the load balancer proxies to the nodes itself
			}
			if a, ok := parse("loadBalancer ingress IP", ing.IP); ok && ofFamily("loadBalancer ingress IP", a) {
				lb.addrs = append(lb.addrs, a)
			}
		}
		out = append(out, lb)
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		out = append(out, vipSet{kind: model.NodePort, addrs: slices.DeleteFunc(slices.Clone(c.node.IPs), func(a netip.Addr) bool { return !inFamily(a) })})
	}
	return out
}

func protocol(p corev1.Protocol) (model.Protocol, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return model.TCP, true
	case corev1.ProtocolUDP:
		return model.UDP, true
	case corev1.ProtocolSCTP:
		return model.SCTP, true
	}
	return 0, false
}

// dests turns endpoints into real servers of equal weight.
func dests(eps []endpoint) []model.Dest {
	out := make([]model.Dest, len(eps))
	for i, e := range eps {
		out[i] = model.Dest{DestKey: model.DestKey{Addr: e.addr.Addr(), Port: e.addr.Port()}, Weight: 1, Local: e.local}
	}
	return out
}
