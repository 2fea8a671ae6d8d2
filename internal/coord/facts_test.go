package coord

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	tcp = nodev1.Protocol_PROTOCOL_TCP
	udp = nodev1.Protocol_PROTOCOL_UDP
)

// vip returns a cluster IP VIP for service.
func vip(ip string, port uint32, p nodev1.Protocol, service string) *nodev1.ServiceVIP {
	return &nodev1.ServiceVIP{
		Key:     &nodev1.ServiceVIPKey{Ip: ip, Port: port, Protocol: p},
		Service: service, PortName: "p", Kind: nodev1.VIPKind_VIP_KIND_CLUSTER_IP, LocalEndpoints: true,
	}
}

// vipMap returns the VIPs keyed as Facts holds them.
func vipMap(vs ...*nodev1.ServiceVIP) map[VIPKey]*nodev1.ServiceVIP {
	m := make(map[VIPKey]*nodev1.ServiceVIP, len(vs))
	for _, v := range vs {
		m[KeyOf(v)] = v
	}
	return m
}

func podNet(mtu uint32, cidrs ...string) *nodev1.PodNetwork {
	return &nodev1.PodNetwork{
		PodCidrs: cidrs, NodeIps: []string{"192.0.2.10"}, BridgeName: "kube-bridge", Mtu: mtu, BgpReady: true,
		CidrSource: nodev1.PodCIDRSource_POD_CIDR_SOURCE_NODE_SPEC,
	}
}

func policy(gen uint64) *nodev1.PolicyState {
	return &nodev1.PolicyState{
		InForce: true, AppliedGeneration: gen, Policies: 3, SelectedPods: 4, Rules: 42,
		AppliedTime: timestamppb.New(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)),
	}
}

// describe renders facts for failure messages.
func describe(f Facts) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{publisher=%q incarnation=%q generation=%d known=%v", f.Publisher, f.Incarnation, f.Generation, f.Known)
	fmt.Fprintf(&b, " pod_network={%v} policy_state={%v} vips=[", prototext.MarshalOptions{}.Format(f.PodNetwork), prototext.MarshalOptions{}.Format(f.PolicyState))
	for i, v := range sortedVIPs(f.VIPs) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prototext.MarshalOptions{}.Format(v))
	}
	b.WriteString("]}")
	return b.String()
}

// assertFacts fails unless got has want's identity and data.
func assertFacts(t *testing.T, got, want Facts) {
	t.Helper()
	if got.Publisher != want.Publisher || got.Incarnation != want.Incarnation || got.Generation != want.Generation ||
		got.Known != want.Known || !got.Equal(want) {
		t.Fatalf("facts differ\n got: %s\nwant: %s", describe(got), describe(want))
	}
	if got.PodNetwork == nil && want.PodNetwork != nil || got.PodNetwork != nil && want.PodNetwork == nil {
		t.Fatalf("pod network presence differs: got %v, want %v", got.PodNetwork, want.PodNetwork)
	}
}

// deepCopy returns a copy of f that shares nothing with it.
func deepCopy(f Facts) Facts {
	c := f
	c.PodNetwork = proto.CloneOf(f.PodNetwork)
	c.PolicyState = proto.CloneOf(f.PolicyState)
	if f.VIPs != nil {
		c.VIPs = make(map[VIPKey]*nodev1.ServiceVIP, len(f.VIPs))
		for k, v := range f.VIPs {
			c.VIPs[k] = proto.CloneOf(v)
		}
	}
	return c
}

func TestFactsApply(t *testing.T) {
	a := vip("10.96.0.1", 443, tcp, "default/kubernetes")
	a2 := vip("10.96.0.1", 443, tcp, "default/kubernetes-v2") // same key as a
	b := vip("10.96.0.10", 53, udp, "kube-system/kube-dns")
	c := vip("10.96.0.20", 80, tcp, "web/frontend")
	d := vip("10.96.0.30", 8080, tcp, "web/backend")
	pnA, pnB := podNet(1500, "10.244.1.0/24"), podNet(1450, "10.244.2.0/24", "fd00:10:244:2::/64")
	psA, psB := policy(1), policy(2)

	base := Facts{
		Publisher: "proxyd", Incarnation: "inc-1", Generation: 7, Known: true,
		PodNetwork: pnA, PolicyState: psA, VIPs: vipMap(a, b),
	}
	change := func(gen uint64, m *nodev1.WatchResponse) *nodev1.WatchResponse {
		m.Publisher, m.Incarnation, m.Generation = "proxyd", "inc-1", gen
		return m
	}
	snapshot := func(inc string, gen uint64, m *nodev1.WatchResponse) *nodev1.WatchResponse {
		m.Publisher, m.Incarnation, m.Generation, m.Snapshot = "proxyd", inc, gen, true
		return m
	}
	want := func(inc string, gen uint64, pn *nodev1.PodNetwork, ps *nodev1.PolicyState, vips ...*nodev1.ServiceVIP) Facts {
		return Facts{Publisher: "proxyd", Incarnation: inc, Generation: gen, Known: true, PodNetwork: pn, PolicyState: ps, VIPs: vipMap(vips...)}
	}

	for _, tc := range []struct {
		name string
		from Facts
		msg  *nodev1.WatchResponse
		want Facts
	}{{
		name: "snapshot replaces everything",
		from: base,
		msg:  snapshot("inc-2", 1, &nodev1.WatchResponse{PolicyState: psB, VipsSet: []*nodev1.ServiceVIP{c}}),
		want: want("inc-2", 1, nil, psB, c),
	}, {
		name: "empty snapshot clears VIPs, pod network and policy state",
		from: base,
		msg:  snapshot("inc-1", 8, &nodev1.WatchResponse{}),
		want: want("inc-1", 8, nil, nil),
	}, {
		name: "snapshot with only a pod network",
		from: base,
		msg:  snapshot("inc-1", 9, &nodev1.WatchResponse{PodNetwork: pnB}),
		want: want("inc-1", 9, pnB, nil),
	}, {
		name: "snapshot ignores vips_deleted",
		from: base,
		msg:  snapshot("inc-1", 9, &nodev1.WatchResponse{VipsSet: []*nodev1.ServiceVIP{a}, VipsDeleted: []*nodev1.ServiceVIPKey{a.GetKey()}}),
		want: want("inc-1", 9, nil, nil, a),
	}, {
		name: "first snapshot on unknown facts",
		from: Facts{Publisher: "proxyd"},
		msg:  snapshot("inc-1", 3, &nodev1.WatchResponse{PodNetwork: pnA, VipsSet: []*nodev1.ServiceVIP{a, b}}),
		want: want("inc-1", 3, pnA, nil, a, b),
	}, {
		name: "change replaces only the pod network",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{PodNetwork: pnB}),
		want: want("inc-1", 8, pnB, psA, a, b),
	}, {
		name: "change replaces only the policy state",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{PolicyState: psB}),
		want: want("inc-1", 8, pnA, psB, a, b),
	}, {
		name: "change with an empty pod network sets it",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{PodNetwork: &nodev1.PodNetwork{}}),
		want: want("inc-1", 8, &nodev1.PodNetwork{}, psA, a, b),
	}, {
		name: "change without messages keeps everything but the generation",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{}),
		want: want("inc-1", 8, pnA, psA, a, b),
	}, {
		name: "vips_set upserts",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{VipsSet: []*nodev1.ServiceVIP{a2, c}}),
		want: want("inc-1", 8, pnA, psA, a2, b, c),
	}, {
		name: "vips_deleted removes, unknown keys are ignored",
		from: base,
		msg: change(8, &nodev1.WatchResponse{VipsDeleted: []*nodev1.ServiceVIPKey{
			b.GetKey(), d.GetKey(), {Ip: "10.96.0.10", Port: 53, Protocol: tcp},
		}}),
		want: want("inc-1", 8, pnA, psA, a),
	}, {
		name: "vips_deleted and vips_set of different keys",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{VipsSet: []*nodev1.ServiceVIP{c, d}, VipsDeleted: []*nodev1.ServiceVIPKey{a.GetKey()}}),
		want: want("inc-1", 8, pnA, psA, b, c, d),
	}, {
		name: "all VIPs deleted",
		from: base,
		msg:  change(8, &nodev1.WatchResponse{VipsDeleted: []*nodev1.ServiceVIPKey{a.GetKey(), b.GetKey()}}),
		want: want("inc-1", 8, pnA, psA),
	}, {
		name: "change on zero facts",
		from: Facts{},
		msg:  change(1, &nodev1.WatchResponse{VipsSet: []*nodev1.ServiceVIP{a}}),
		want: want("inc-1", 1, nil, nil, a),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.from)
			fromVIPs := reflect.ValueOf(tc.from.VIPs).Pointer()
			msgBefore := proto.CloneOf(tc.msg)

			got := tc.from.Apply(tc.msg)
			assertFacts(t, got, tc.want)
			if got.VIPs == nil {
				t.Errorf("Apply returned nil VIPs; want an empty map")
			}
			// The input is left as it was.
			assertFacts(t, tc.from, before)
			if len(tc.from.VIPs) != len(before.VIPs) {
				t.Errorf("input VIPs changed: %d, want %d", len(tc.from.VIPs), len(before.VIPs))
			}
			if tc.from.VIPs != nil && reflect.ValueOf(got.VIPs).Pointer() == fromVIPs {
				t.Errorf("Apply returned the input's VIP map")
			}
			if !proto.Equal(tc.msg, msgBefore) {
				t.Errorf("Apply changed the message: %v, was %v", tc.msg, msgBefore)
			}
		})
	}
}

func TestFactsApplyResultIsIndependent(t *testing.T) {
	a := vip("10.96.0.1", 443, tcp, "default/kubernetes")
	b := vip("10.96.0.10", 53, udp, "kube-system/kube-dns")
	c := vip("10.96.0.20", 80, tcp, "web/frontend")
	base := Facts{Publisher: "proxyd", Incarnation: "i", Generation: 1, Known: true, PodNetwork: podNet(1500, "10.244.0.0/24"), VIPs: vipMap(a, b)}
	before := deepCopy(base)

	// A chain of changes: none of them may show through base.
	f := base
	for gen, msg := range []*nodev1.WatchResponse{
		{VipsSet: []*nodev1.ServiceVIP{c}},
		{VipsDeleted: []*nodev1.ServiceVIPKey{a.GetKey()}},
		{PodNetwork: podNet(9000, "10.244.9.0/24")},
		{VipsDeleted: []*nodev1.ServiceVIPKey{b.GetKey(), c.GetKey()}},
	} {
		msg.Publisher, msg.Incarnation, msg.Generation = "proxyd", "i", uint64(gen+2)
		prev, prevCopy := f, deepCopy(f)
		f = f.Apply(msg)
		assertFacts(t, prev, prevCopy)
	}
	assertFacts(t, base, before)
	if len(f.VIPs) != 0 || f.Generation != 5 || f.PodNetwork.GetMtu() != 9000 {
		t.Fatalf("after the chain: %s", describe(f))
	}

	// Writing to a result's map does not reach its origin either.
	next := base.Apply(&nodev1.WatchResponse{Publisher: "proxyd", Incarnation: "i", Generation: 2})
	next.VIPs[KeyOf(c)] = c
	delete(next.VIPs, KeyOf(a))
	assertFacts(t, base, before)
}

func TestFactsSnapshotRoundTrip(t *testing.T) {
	vips := []*nodev1.ServiceVIP{
		vip("10.96.0.9", 80, tcp, "a/one"),
		vip("10.96.0.10", 80, tcp, "a/two"), // sorts before .9: keys compare as strings
		vip("10.96.0.9", 80, udp, "a/three"),
		vip("10.96.0.9", 8080, tcp, "a/four"),
		vip("10.96.0.9", 443, tcp, "a/five"),
		vip("fd00::1", 53, udp, "a/six"),
	}
	wantOrder := []string{"a/two", "a/one", "a/three", "a/five", "a/four", "a/six"}

	for _, tc := range []struct {
		name string
		f    Facts
	}{
		{"zero", Facts{}},
		{"identity only", Facts{Publisher: "routerd", Incarnation: "x", Generation: 12, Known: true}},
		{"pod network only", Facts{Publisher: "routerd", Incarnation: "x", Generation: 3, Known: true, PodNetwork: podNet(1500, "10.244.0.0/24")}},
		{"policy only", Facts{Publisher: "firewalld", Incarnation: "y", Generation: 4, Known: true, PolicyState: policy(9)}},
		{"everything", Facts{
			Publisher: "proxyd", Incarnation: "z", Generation: 99, Known: true,
			PodNetwork: podNet(1450, "10.244.0.0/24", "fd00::/64"), PolicyState: policy(1), VIPs: vipMap(vips...),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.f.Snapshot()
			if !msg.GetSnapshot() || msg.GetPublisher() != tc.f.Publisher || msg.GetIncarnation() != tc.f.Incarnation || msg.GetGeneration() != tc.f.Generation {
				t.Fatalf("snapshot header = %v", msg)
			}
			if len(msg.GetVipsDeleted()) != 0 {
				t.Errorf("snapshot has vips_deleted: %v", msg.GetVipsDeleted())
			}
			if len(msg.GetVipsSet()) != len(tc.f.VIPs) {
				t.Fatalf("snapshot has %d VIPs, want %d", len(msg.GetVipsSet()), len(tc.f.VIPs))
			}
			if !slices.IsSortedFunc(msg.GetVipsSet(), func(a, b *nodev1.ServiceVIP) int { return compareKeys(KeyOf(a), KeyOf(b)) }) {
				t.Errorf("snapshot VIPs not in key order: %v", msg.GetVipsSet())
			}

			// Over the wire, into facts that hold something else.
			wire, err := proto.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			var decoded nodev1.WatchResponse
			if err := proto.Unmarshal(wire, &decoded); err != nil {
				t.Fatal(err)
			}
			stale := Facts{Publisher: "old", Incarnation: "old", Generation: 1000, Known: true, PodNetwork: podNet(1, "192.168.0.0/16"),
				PolicyState: policy(77), VIPs: vipMap(vip("10.0.0.1", 1, tcp, "old/old"))}
			got := stale.Apply(&decoded)
			want := tc.f
			want.Known = true
			assertFacts(t, got, want)
		})
	}

	// Deterministic and in key order.
	f := Facts{VIPs: vipMap(vips...)}
	var order []string
	for _, v := range f.Snapshot().GetVipsSet() {
		order = append(order, v.GetService())
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("snapshot VIP order = %v, want %v", order, wantOrder)
	}
	one, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f.Snapshot())
	for range 5 {
		again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f.Snapshot())
		if string(again) != string(one) {
			t.Fatal("two snapshots of the same facts differ")
		}
	}
}

func TestFactsEqual(t *testing.T) {
	a := vip("10.96.0.1", 443, tcp, "default/kubernetes")
	b := vip("10.96.0.10", 53, udp, "kube-system/kube-dns")
	base := Facts{Publisher: "p", Incarnation: "i", Generation: 1, Known: true, PodNetwork: podNet(1500, "10.244.0.0/24"), PolicyState: policy(1), VIPs: vipMap(a, b)}
	with := func(mutate func(*Facts)) Facts {
		f := deepCopy(base)
		mutate(&f)
		return f
	}
	for _, tc := range []struct {
		name  string
		other Facts
		equal bool
	}{
		{"deep copy", deepCopy(base), true},
		{"identity and generation are ignored", with(func(f *Facts) { f.Publisher, f.Incarnation, f.Generation, f.Known = "q", "j", 99, false }), true},
		{"VIPs missing entirely", with(func(f *Facts) { f.VIPs = nil }), false},
		{"pod network missing", with(func(f *Facts) { f.PodNetwork = nil }), false},
		{"pod network empty", with(func(f *Facts) { f.PodNetwork = &nodev1.PodNetwork{} }), false},
		{"pod network differs", with(func(f *Facts) { f.PodNetwork.Mtu = 9000 }), false},
		{"policy differs", with(func(f *Facts) { f.PolicyState.Rules++ }), false},
		{"VIP differs", with(func(f *Facts) { f.VIPs[KeyOf(a)].LocalEndpoints = false }), false},
		{"VIP missing", with(func(f *Facts) { delete(f.VIPs, KeyOf(b)) }), false},
		{"VIP extra", with(func(f *Facts) {
			f.VIPs[VIPKey{IP: "10.96.0.2", Port: 1, Protocol: tcp}] = vip("10.96.0.2", 1, tcp, "x/y")
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := base.Equal(tc.other); got != tc.equal {
				t.Errorf("Equal = %v, want %v", got, tc.equal)
			}
			if got := tc.other.Equal(base); got != tc.equal {
				t.Errorf("reverse Equal = %v, want %v", got, tc.equal)
			}
		})
	}
	empty := Facts{}
	if !empty.Equal(Facts{VIPs: map[VIPKey]*nodev1.ServiceVIP{}}) {
		t.Error("zero facts differ from facts with an empty VIP map")
	}
}

func TestSortedVIPs(t *testing.T) {
	keys := []VIPKey{
		{IP: "10.0.0.2", Port: 80, Protocol: tcp},
		{IP: "10.0.0.1", Port: 443, Protocol: tcp},
		{IP: "10.0.0.1", Port: 80, Protocol: udp},
		{IP: "10.0.0.1", Port: 80, Protocol: tcp},
		{IP: "10.0.0.1", Port: 80, Protocol: nodev1.Protocol_PROTOCOL_SCTP},
	}
	m := map[VIPKey]*nodev1.ServiceVIP{}
	for i, k := range keys {
		m[k] = vip(k.IP, k.Port, k.Protocol, fmt.Sprint(i))
	}
	var got []VIPKey
	for _, v := range sortedVIPs(m) {
		got = append(got, KeyOf(v))
	}
	want := []VIPKey{keys[3], keys[2], keys[4], keys[1], keys[0]}
	if !slices.Equal(got, want) {
		t.Errorf("sortedVIPs = %v, want %v", got, want)
	}
	if n := len(sortedVIPs(nil)); n != 0 {
		t.Errorf("sortedVIPs(nil) has %d entries", n)
	}
	// KeyOf and the proto form agree.
	for k := range maps.Keys(m) {
		if got := keyFromProto(k.proto()); got != k {
			t.Errorf("key round trip: %v became %v", k, got)
		}
	}
	if got := KeyOf(&nodev1.ServiceVIP{}); got != (VIPKey{}) {
		t.Errorf("KeyOf(no key) = %v", got)
	}
}
