package trace

// Builders and a snapshot over desired.Compute, the way the controller's
// store holds it.
//
// Address plan: this node node-a 198.18.0.10 in zone-a, its pods
// 198.18.128.0/24; node-b's pods 198.18.129.0/24; ClusterIPs 198.19.0.x,
// LoadBalancer and external IPs 198.19.200.x; a client outside the cluster
// 198.18.50.5.

import (
	"net/netip"
	"slices"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	ns       = "shop"
	thisNode = "node-a"
	peerNode = "node-b"
	nodeIP   = "198.18.0.10"
	podCIDR  = "198.18.128.0/24"
	outside  = "198.18.50.5"
)

var syncTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func thisNodeFacts() desired.Node {
	return desired.Node{Name: thisNode, Zone: "zone-a", IPs: []netip.Addr{netip.MustParseAddr(nodeIP)}}
}

type svcMod func(*corev1.Service)

func svc(name, clusterIP string, mods ...svcMod) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
	for _, m := range mods {
		m(s)
	}
	return s
}

func nodePort(port int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = port
	}
}

func loadBalancer(ip string, ranges ...string) svcMod {
	return func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.LoadBalancerSourceRanges = ranges
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	}
}

func externalLocal(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
}

func internalLocal(s *corev1.Service) {
	s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
}

func affinity(seconds int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(seconds)}}
	}
}

func scheduler(name string) svcMod {
	return func(s *corev1.Service) {
		s.Annotations = map[string]string{desired.SchedulerAnnotation: name}
	}
}

func preferClose(s *corev1.Service) {
	s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferClose)
}

// ep is one endpoint: address, node, conditions and zone hint.
type ep struct {
	addr, node, zone      string
	notReady, terminating bool
	notServing            bool
}

func slice(svcName string, eps ...ep) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName + "-1",
		Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}}}
	for i, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.addr}, NodeName: ptr.To(e.node),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: svcName + "-" + string(rune('a'+i))},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!e.notReady), Serving: ptr.To(!e.notServing), Terminating: ptr.To(e.terminating)}}
		if e.zone != "" {
			x.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: e.zone}}}
		}
		sl.Endpoints = append(sl.Endpoints, x)
	}
	return sl
}

// world is the desired-state input of a case.
type world struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
	podCIDRs []netip.Prefix
}

func (w world) input() desired.Input {
	in := desired.Input{Slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}, Node: thisNodeFacts()}
	in.Services = w.services
	for _, sl := range w.slices {
		k := types.NamespacedName{Namespace: sl.Namespace, Name: sl.Labels[discoveryv1.LabelServiceName]}
		in.Slices[k] = append(in.Slices[k], sl)
	}
	return in
}

var cfg = desired.Config{DefaultScheduler: "rr"}

// snapshot is what the controller hands Run after a sync of w: the merged
// state of desired.Compute and the inputs it came from.
func (w world) snapshot() (Snapshot, model.State) {
	in := w.input()
	st, _ := desired.Compute(in, cfg)
	byKey := map[model.VSKey]*model.VirtualService{}
	for _, vs := range st.Services {
		byKey[vs.VSKey] = vs
	}
	return Snapshot{
		Generation: 7, Time: syncTime, Node: in.Node, PodCIDRs: w.podCIDRs, Config: cfg,
		VirtualService: func(k model.VSKey) *model.VirtualService { return byKey[k] },
		KeysAt: func(a netip.Addr) []model.VSKey {
			var out []model.VSKey
			for _, vs := range st.Services {
				if vs.Addr == a {
					out = append(out, vs.VSKey)
				}
			}
			return out
		},
		Inputs: func(n types.NamespacedName) (*corev1.Service, []*discoveryv1.EndpointSlice, bool) {
			i := slices.IndexFunc(in.Services, func(s *corev1.Service) bool { return s.Namespace == n.Namespace && s.Name == n.Name })
			if i < 0 {
				return nil, nil, false
			}
			return in.Services[i], in.Slices[n], true
		},
	}, st
}

func key(s string) model.VSKey {
	ap := netip.MustParseAddrPort(s)
	return model.VSKey{Addr: ap.Addr(), Port: ap.Port(), Proto: model.TCP}
}

func ipSource(s string) Source { return Source{Kind: SourceIP, Addr: netip.MustParseAddr(s)} }

type corev1Service = corev1.Service

func svcs(s ...*corev1.Service) []*corev1.Service { return s }

func sls(s ...*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice { return s }
