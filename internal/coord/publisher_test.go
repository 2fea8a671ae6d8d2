package coord

import (
	"fmt"
	"slices"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

func TestPublisherSetVIPsMinimalDiff(t *testing.T) {
	a := vip("10.0.0.1", 80, tcp, "ns/a")
	a2 := vip("10.0.0.1", 80, tcp, "ns/a")
	a2.LocalEndpoints = false
	b := vip("10.0.0.1", 80, udp, "ns/b")
	c := vip("10.0.0.1", 443, tcp, "ns/c")
	c2 := vip("10.0.0.1", 443, tcp, "ns/c-renamed")
	d := vip("10.0.0.2", 53, udp, "ns/d")

	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	s := subscribe(p)
	watcherFacts := Facts{}
	gen := uint64(0)
	for _, step := range []struct {
		name    string
		vips    []*nodev1.ServiceVIP
		set     []*nodev1.ServiceVIP // nil and no deleted: no change at all
		deleted []*nodev1.ServiceVIPKey
	}{
		{name: "first set, unsorted input", vips: []*nodev1.ServiceVIP{c, a, d, b}, set: []*nodev1.ServiceVIP{a, b, c, d}},
		{name: "same set, new pointers", vips: cloneAll(a, b, c, d)},
		{name: "same set, other order", vips: cloneAll(d, c, b, a)},
		{name: "one changed", vips: []*nodev1.ServiceVIP{a2, b, c, d}, set: []*nodev1.ServiceVIP{a2}},
		{name: "one removed", vips: []*nodev1.ServiceVIP{a2, c, d}, deleted: []*nodev1.ServiceVIPKey{b.GetKey()}},
		{name: "one added back", vips: []*nodev1.ServiceVIP{a2, b, c, d}, set: []*nodev1.ServiceVIP{b}},
		{name: "changed and removed together", vips: []*nodev1.ServiceVIP{d, c2, a2}, set: []*nodev1.ServiceVIP{c2}, deleted: []*nodev1.ServiceVIPKey{b.GetKey()}},
		{name: "all removed", vips: nil, deleted: []*nodev1.ServiceVIPKey{a.GetKey(), c.GetKey(), d.GetKey()}},
		{name: "still none", vips: []*nodev1.ServiceVIP{}},
		{name: "from empty", vips: []*nodev1.ServiceVIP{b}, set: []*nodev1.ServiceVIP{b}},
	} {
		p.SetVIPs(step.vips)
		msgs := p.take(s)
		wantChange := step.set != nil || step.deleted != nil
		if wantChange {
			gen++
		}
		if got := p.Facts(); got.Generation != gen || !got.Equal(Facts{VIPs: vipMap(step.vips...)}) {
			t.Fatalf("%s: publisher facts %s, want generation %d and VIPs %v", step.name, describe(got), gen, step.vips)
		}
		if wasWoken := woken(s); wasWoken != wantChange {
			t.Errorf("%s: watcher woken = %v, want %v", step.name, wasWoken, wantChange)
		}
		if !wantChange {
			if len(msgs) != 0 {
				t.Fatalf("%s: no change expected, got %v", step.name, msgs)
			}
			continue
		}
		if len(msgs) != 1 {
			t.Fatalf("%s: got %d messages, want 1: %v", step.name, len(msgs), msgs)
		}
		m := msgs[0]
		if m.GetSnapshot() || m.GetPublisher() != "proxyd" || m.GetIncarnation() != "inc-1" || m.GetGeneration() != gen {
			t.Errorf("%s: header %v, want change proxyd/inc-1/%d", step.name, m, gen)
		}
		if m.PodNetwork != nil || m.PolicyState != nil {
			t.Errorf("%s: change carries other facts: %v", step.name, m)
		}
		if !sameVIPs(m.GetVipsSet(), step.set) {
			t.Errorf("%s: vips_set = %v, want %v", step.name, m.GetVipsSet(), step.set)
		}
		if got, want := keysOf(m.GetVipsDeleted()), keysOf(step.deleted); !slices.Equal(got, want) {
			t.Errorf("%s: vips_deleted = %v, want %v", step.name, got, want)
		}
		watcherFacts = watcherFacts.Apply(m)
		if !watcherFacts.Equal(p.Facts()) {
			t.Errorf("%s: the change applied gives %s, publisher has %s", step.name, describe(watcherFacts), describe(p.Facts()))
		}
	}
}

func TestPublisherCopiesWhatItIsGiven(t *testing.T) {
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	s := subscribe(p)
	v := vip("10.0.0.1", 80, tcp, "ns/a")
	pn := podNet(1500, "10.244.0.0/24")
	p.SetVIPs([]*nodev1.ServiceVIP{v})
	p.SetPodNetwork(pn)
	sent := p.take(s)

	// The caller reuses its objects.
	v.Service = "ns/changed"
	pn.Mtu = 9000

	f := p.Facts()
	if got := f.VIPs[KeyOf(v)].GetService(); got != "ns/a" {
		t.Errorf("publisher's VIP changed with the caller's: service %q", got)
	}
	if got := f.PodNetwork.GetMtu(); got != 1500 {
		t.Errorf("publisher's pod network changed with the caller's: mtu %d", got)
	}
	if got := sent[0].GetVipsSet()[0].GetService(); got != "ns/a" {
		t.Errorf("sent change altered afterwards: service %q", got)
	}
	if got := sent[1].GetPodNetwork().GetMtu(); got != 1500 {
		t.Errorf("sent change altered afterwards: mtu %d", got)
	}
	// Setting them again now is a change.
	p.SetVIPs([]*nodev1.ServiceVIP{v})
	p.SetPodNetwork(pn)
	if got := p.Facts().Generation; got != 4 {
		t.Errorf("generation = %d, want 4", got)
	}
}

func TestPublisherGeneration(t *testing.T) {
	p := NewPublisher(zap.NewNop(), "routerd", "inc-7")
	s := subscribe(p)
	if f := p.Facts(); f.Publisher != "routerd" || f.Incarnation != "inc-7" || f.Generation != 0 || !f.Known || f.VIPs == nil {
		t.Fatalf("new publisher facts = %s", describe(f))
	}
	pnA, pnB := podNet(1500, "10.244.1.0/24"), podNet(1500, "10.244.2.0/24")
	psA, psB := policy(1), policy(2)
	steps := []struct {
		name   string
		do     func()
		change bool
		check  func(*nodev1.WatchResponse) bool
	}{
		{"unknown pod network stays unknown", func() { p.SetPodNetwork(nil) }, false, nil},
		{"unknown policy stays unknown", func() { p.SetPolicyState(nil) }, false, nil},
		{"no VIPs stay none", func() { p.SetVIPs(nil) }, false, nil},
		{"pod network set", func() { p.SetPodNetwork(pnA) }, true, func(m *nodev1.WatchResponse) bool { return proto.Equal(m.GetPodNetwork(), pnA) }},
		{"same pod network, other message", func() { p.SetPodNetwork(proto.CloneOf(pnA)) }, false, nil},
		{"pod network changed", func() { p.SetPodNetwork(pnB) }, true, func(m *nodev1.WatchResponse) bool { return proto.Equal(m.GetPodNetwork(), pnB) }},
		{"policy set", func() { p.SetPolicyState(psA) }, true, func(m *nodev1.WatchResponse) bool { return proto.Equal(m.GetPolicyState(), psA) }},
		{"same policy", func() { p.SetPolicyState(proto.CloneOf(psA)) }, false, nil},
		{"policy changed", func() { p.SetPolicyState(psB) }, true, func(m *nodev1.WatchResponse) bool { return proto.Equal(m.GetPolicyState(), psB) }},
		{"empty pod network is not unknown", func() { p.SetPodNetwork(&nodev1.PodNetwork{}) }, true, func(m *nodev1.WatchResponse) bool {
			return m.PodNetwork != nil && proto.Size(m.PodNetwork) == 0
		}},
		{"VIPs set", func() { p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, "a/b")}) }, true, func(m *nodev1.WatchResponse) bool { return len(m.GetVipsSet()) == 1 }},
	}
	gen := uint64(0)
	for _, step := range steps {
		step.do()
		if step.change {
			gen++
		}
		if got := p.Facts().Generation; got != gen {
			t.Fatalf("%s: generation %d, want %d", step.name, got, gen)
		}
		msgs := p.take(s)
		if !step.change {
			if len(msgs) != 0 {
				t.Fatalf("%s: sent %v, want nothing", step.name, msgs)
			}
			continue
		}
		if len(msgs) != 1 || msgs[0].GetSnapshot() || msgs[0].GetGeneration() != gen || !step.check(msgs[0]) {
			t.Fatalf("%s: sent %v, want one change of generation %d", step.name, msgs, gen)
		}
		// A change carries only what changed.
		n := 0
		for _, set := range []bool{msgs[0].PodNetwork != nil, msgs[0].PolicyState != nil, len(msgs[0].VipsSet) > 0, len(msgs[0].VipsDeleted) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: change carries %d kinds of facts: %v", step.name, n, msgs[0])
		}
	}
}

func TestPublisherUnsetForcesSnapshot(t *testing.T) {
	p := NewPublisher(zap.NewNop(), "routerd", "inc-1")
	s := subscribe(p)
	a, b := vip("10.0.0.1", 80, tcp, "ns/a"), vip("10.0.0.2", 80, tcp, "ns/b")
	pnA, psA := podNet(1500, "10.244.1.0/24"), policy(1)

	// The watcher's view, built only from what it is sent.
	var view Facts
	deliver := func(step string, wantSnapshot bool, wantMsgs int) {
		t.Helper()
		msgs := p.take(s)
		if len(msgs) != wantMsgs {
			t.Fatalf("%s: got %d messages, want %d: %v", step, len(msgs), wantMsgs, msgs)
		}
		for i, m := range msgs {
			if m.GetSnapshot() != (wantSnapshot && i == 0) {
				t.Fatalf("%s: message %d snapshot=%v: %v", step, i, m.GetSnapshot(), m)
			}
			if !m.GetSnapshot() && m.GetGeneration() != view.Generation+1 {
				t.Fatalf("%s: change of generation %d after %d", step, m.GetGeneration(), view.Generation)
			}
			view = view.Apply(m)
		}
		want := p.Facts()
		assertFacts(t, view, want)
	}

	p.SetPodNetwork(pnA)
	p.SetPolicyState(psA)
	p.SetVIPs([]*nodev1.ServiceVIP{a})
	deliver("three changes", false, 3)

	p.SetPodNetwork(nil)
	if _, resync := queued(p, s); !resync || !woken(s) {
		t.Fatal("unsetting the pod network did not ask the watcher for a snapshot")
	}
	deliver("pod network unset", true, 1)
	if view.PodNetwork != nil || view.Generation != 4 || !proto.Equal(view.PolicyState, psA) || len(view.VIPs) != 1 {
		t.Fatalf("after unset: %s", describe(view))
	}

	p.SetVIPs([]*nodev1.ServiceVIP{a, b})
	deliver("back to changes", false, 1)

	p.SetPodNetwork(nil) // already unknown: nothing
	deliver("unset again", false, 0)

	p.SetPolicyState(nil)
	deliver("policy unset", true, 1)
	if view.PolicyState != nil || view.Generation != 6 {
		t.Fatalf("after policy unset: %s", describe(view))
	}

	// Queued changes are dropped for the snapshot, which has them all.
	p.SetVIPs([]*nodev1.ServiceVIP{b})
	p.SetPodNetwork(pnA)
	p.SetPolicyState(psA)
	p.SetPodNetwork(nil)
	p.SetVIPs([]*nodev1.ServiceVIP{a}) // after the reset: not queued, the snapshot has it
	deliver("changes then unset", true, 1)
	if view.Generation != 11 || view.PodNetwork != nil || !proto.Equal(view.PolicyState, psA) || !view.Equal(Facts{PolicyState: psA, VIPs: vipMap(a)}) {
		t.Fatalf("after changes and unset: %s", describe(view))
	}
}

func TestPublisherSlowWatcherGetsSnapshot(t *testing.T) {
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	slow, fast := subscribe(p), subscribe(p)
	var fastView Facts
	fastView = fastView.Apply(p.Facts().Snapshot())
	set := func(i int) { p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, fmt.Sprint("ns/svc-", i))}) }

	for i := 1; i <= maxQueued; i++ {
		set(i)
		for _, m := range p.take(fast) {
			if m.GetSnapshot() || m.GetGeneration() != fastView.Generation+1 {
				t.Fatalf("fast watcher got %v after generation %d", m, fastView.Generation)
			}
			fastView = fastView.Apply(m)
		}
		if n, resync := queued(p, slow); n != i || resync {
			t.Fatalf("after %d changes the slow watcher has %d queued, resync %v", i, n, resync)
		}
	}
	// One more than it may hold: the backlog is dropped for a snapshot.
	set(maxQueued + 1)
	if n, resync := queued(p, slow); n != 0 || !resync {
		t.Fatalf("after %d changes: %d queued, resync %v; want 0, true", maxQueued+1, n, resync)
	}
	for i := maxQueued + 2; i <= maxQueued+20; i++ {
		set(i)
		if n, resync := queued(p, slow); n != 0 || !resync {
			t.Fatalf("after %d changes: %d queued, resync %v; want 0, true", i, n, resync)
		}
	}
	msgs := p.take(slow)
	if len(msgs) != 1 || !msgs[0].GetSnapshot() || msgs[0].GetGeneration() != maxQueued+20 {
		t.Fatalf("slow watcher got %d messages (first %v), want one snapshot of generation %d", len(msgs), msgs[0], maxQueued+20)
	}
	slowView := Facts{}.Apply(msgs[0])
	assertFacts(t, slowView, p.Facts())

	// Caught up: changes again.
	set(0)
	msgs = p.take(slow)
	if len(msgs) != 1 || msgs[0].GetSnapshot() || msgs[0].GetGeneration() != maxQueued+21 {
		t.Fatalf("after the snapshot: %v, want one change", msgs)
	}

	// The fast watcher never noticed.
	for _, m := range p.take(fast) {
		if m.GetSnapshot() || m.GetGeneration() != fastView.Generation+1 {
			t.Fatalf("fast watcher got %v after generation %d", m, fastView.Generation)
		}
		fastView = fastView.Apply(m)
	}
	assertFacts(t, fastView, p.Facts())
}

func TestPublisherUpdateVIPs(t *testing.T) {
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	a := &nodev1.ServiceVIP{Key: &nodev1.ServiceVIPKey{Ip: "198.19.0.10", Port: 80, Protocol: nodev1.Protocol_PROTOCOL_TCP}, Service: "default/web"}
	b := &nodev1.ServiceVIP{Key: &nodev1.ServiceVIPKey{Ip: "198.19.0.11", Port: 53, Protocol: nodev1.Protocol_PROTOCOL_UDP}, Service: "default/dns"}
	p.UpdateVIPs([]*nodev1.ServiceVIP{a, b}, nil)
	if f := p.Facts(); f.Generation != 1 || len(f.VIPs) != 2 {
		t.Fatalf("after adding: %+v", f)
	}
	// Unchanged VIPs and deletions of unknown keys publish nothing.
	p.UpdateVIPs([]*nodev1.ServiceVIP{proto.CloneOf(a)}, []VIPKey{{IP: "198.19.9.9", Port: 1, Protocol: nodev1.Protocol_PROTOCOL_TCP}})
	if f := p.Facts(); f.Generation != 1 {
		t.Fatalf("a no-op update bumped the generation to %d", f.Generation)
	}
	a2 := proto.CloneOf(a)
	a2.LocalEndpoints = true
	p.UpdateVIPs([]*nodev1.ServiceVIP{a2}, []VIPKey{KeyOf(b)})
	f := p.Facts()
	if f.Generation != 2 || len(f.VIPs) != 1 || !f.VIPs[KeyOf(a)].GetLocalEndpoints() {
		t.Fatalf("after the change: %+v", f)
	}
}
