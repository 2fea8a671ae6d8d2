package nft

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// baseState is a small node: a ClusterIP, a NodePort, an ETP-Local
// LoadBalancer with source ranges, an IPv6 ClusterIP.
func baseState() model.State {
	return model.State{Services: []*model.VirtualService{
		vs(key("198.18.0.1", 30080, model.TCP), model.NodePort),
		vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP),
		vs(key("198.19.0.30", 443, model.TCP), model.LoadBalancer, local, restricted("198.18.0.0/24")),
		vs(key("2001:db8:19::10", 53, model.UDP), model.ClusterIP),
	}}
}

var basePods = prefixes("198.18.128.0/24", "2001:db8:80::/64")

func mustApply(t *testing.T, i Interface, d Desired) Result {
	t.Helper()
	res, err := i.Apply(d)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

// recreateWrites is the size of a transaction creating the table: three
// table messages, the sets, chains and rules, one message per set that has
// elements.
func recreateWrites(d Desired) int {
	rs := newRuleset()
	n := 3 + len(rs.sets) + len(rs.chains)
	for _, c := range rs.chains {
		n += len(c.rules)
	}
	return n + len(encode(d))
}

func TestFirstApplyCreatesThenNothing(t *testing.T) {
	f := NewFake()
	d := Build(baseState(), basePods)
	res := mustApply(t, f, d)
	want := Result{Writes: recreateWrites(d), Ops: Ops{
		Full: true, Recreate: true, Reason: "table missing", Sets: 10, Chains: 3, Rules: 17,
		ElementsAdded: 4 + 1 + 1 + 1 + 2 /* vips, local, restricted, allowed, pod CIDRs */}}
	if res != want {
		t.Fatalf("first Apply:\n got %+v\nwant %+v", res, want)
	}
	dump := f.Dump()
	if !dump.Exists || dump.Transactions != 1 || dump.Last.Writes != res.Writes {
		t.Fatalf("dump %+v", dump)
	}
	if got := dump.Sets[setVIPs4]; !reflect.DeepEqual(got, []string{"198.18.0.1 . tcp . 30080", "198.19.0.10 . tcp . 80", "198.19.0.30 . tcp . 443"}) {
		t.Fatalf("vips4 %v", got)
	}
	if got := dump.Sets[setAllowed4]; !reflect.DeepEqual(got, []string{"198.19.0.30 . tcp . 443 . 198.18.0.0/24"}) {
		t.Fatalf("lb_allowed4 %v", got)
	}

	// The same state again: nothing at all, not even a read.
	if res := mustApply(t, f, Build(baseState(), basePods)); res != (Result{}) {
		t.Fatalf("repeated Apply %+v, want nothing", res)
	}
	// A full one reads, finds everything, writes nothing.
	f.Invalidate()
	if res := mustApply(t, f, d); res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("full Apply of the same state %+v, want a read and nothing else", res)
	}
	if n := f.Dump().Transactions; n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}

func TestRestartWritesNothing(t *testing.T) {
	f := NewFake()
	d := Build(baseState(), basePods)
	mustApply(t, f, d)
	// A new proxyd (a new applier) over the same kernel.
	restarted := newApplier(f.k)
	res, err := restarted.apply(d)
	if err != nil {
		t.Fatal(err)
	}
	if res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("after restart %+v, want a read and no write", res)
	}
}

// deltaCase is one change of the desired state after baseState and the
// minimal transaction it takes; the kernel tests run the same cases.
type deltaCase struct {
	name   string
	change func(*model.State, *[]netip.Prefix)
	want   Result
	sets   map[string][]string // sets that must then hold exactly this
}

func deltaCases() []deltaCase {
	return []deltaCase{
		{
			name: "a new ClusterIP",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services = append(s.Services, vs(key("198.19.0.11", 80, model.TCP), model.ClusterIP))
			},
			want: Result{Writes: 1, Ops: Ops{ElementsAdded: 1}},
		},
		{
			name: "a ClusterIP goes",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services = s.Services[:1]
			},
			// 198.19.0.10 (vips4), 198.19.0.30 (vips4, vips_local4,
			// lb_restricted4, lb_allowed4), 2001:db8:19::10 (vips6): six
			// elements in five sets, one message each.
			want: Result{Writes: 5, Ops: Ops{ElementsDeleted: 6}},
			sets: map[string][]string{setVIPs4: {"198.18.0.1 . tcp . 30080"}, setVIPs6: {}, setAllowed4: {}},
		},
		{
			name: "externalTrafficPolicy turns Local",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services[1] = vs(key("198.19.0.10", 80, model.TCP), model.ExternalIP, local)
			},
			want: Result{Writes: 1, Ops: Ops{ElementsAdded: 1}},
			sets: map[string][]string{setLocalVIPs4: {"198.19.0.10 . tcp . 80", "198.19.0.30 . tcp . 443"}},
		},
		{
			name: "a source range changes",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services[2] = vs(key("198.19.0.30", 443, model.TCP), model.LoadBalancer, local, restricted("198.18.0.0/23"))
			},
			want: Result{Writes: 2, Ops: Ops{ElementsAdded: 1, ElementsDeleted: 1}},
			sets: map[string][]string{setAllowed4: {"198.19.0.30 . tcp . 443 . 198.18.0.0/23"}},
		},
		{
			name: "source ranges lifted",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services[2] = vs(key("198.19.0.30", 443, model.TCP), model.LoadBalancer, local)
			},
			want: Result{Writes: 2, Ops: Ops{ElementsDeleted: 2}},
			sets: map[string][]string{setRestricted4: {}, setAllowed4: {}},
		},
		{
			name: "a pod CIDR grows",
			change: func(_ *model.State, p *[]netip.Prefix) {
				*p = prefixes("198.18.128.0/23", "2001:db8:80::/64")
			},
			want: Result{Writes: 2, Ops: Ops{ElementsAdded: 1, ElementsDeleted: 1}},
			sets: map[string][]string{setPodCIDRs4: {"198.18.128.0/23"}},
		},
		{
			name: "an IPv6 VIP with a port change",
			change: func(s *model.State, _ *[]netip.Prefix) {
				s.Services[3] = vs(key("2001:db8:19::10", 5353, model.UDP), model.ClusterIP)
			},
			want: Result{Writes: 2, Ops: Ops{ElementsAdded: 1, ElementsDeleted: 1}},
			sets: map[string][]string{setVIPs6: {"2001:db8:19::10 . udp . 5353"}},
		},
	}
}

func TestDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake()
			mustApply(t, f, Build(baseState(), basePods))
			s, pods := baseState(), basePods
			tc.change(&s, &pods)
			d := Build(s, pods)
			if res := mustApply(t, f, d); res != tc.want {
				t.Fatalf("Apply:\n got %+v\nwant %+v", res, tc.want)
			}
			dump := f.Dump()
			for set, want := range tc.sets {
				if got := dump.Sets[set]; !reflect.DeepEqual(got, want) {
					t.Errorf("set %s: %v, want %v", set, got, want)
				}
			}
			// What the fake kernel holds is what a fresh table would.
			fresh := NewFake()
			mustApply(t, fresh, d)
			if !reflect.DeepEqual(fresh.Dump().Sets, dump.Sets) {
				t.Errorf("after the delta the sets are\n%v\na fresh table has\n%v", dump.Sets, fresh.Dump().Sets)
			}
			if res := mustApply(t, f, d); res != (Result{}) {
				t.Fatalf("repeated Apply %+v, want nothing", res)
			}
		})
	}
}

func TestFailedTransactionMakesTheNextApplyFull(t *testing.T) {
	f := NewFake()
	mustApply(t, f, Build(baseState(), basePods))
	s := baseState()
	s.Services = append(s.Services, vs(key("198.19.0.11", 80, model.TCP), model.ClusterIP))
	d := Build(s, basePods)

	f.FailNext(errors.New("ENOBUFS"))
	if _, err := f.Apply(d); err == nil || !strings.Contains(err.Error(), "ENOBUFS") {
		t.Fatalf("Apply with a failing transaction: %v", err)
	}
	if got := f.Dump().Sets[setVIPs4]; len(got) != 3 {
		t.Fatalf("a failed transaction changed the kernel: %v", got)
	}
	// The next Apply reads the kernel and writes the one element again.
	if res := mustApply(t, f, d); res != (Result{Writes: 1, Ops: Ops{Full: true, ElementsAdded: 1}}) {
		t.Fatalf("Apply after the error %+v", res)
	}
}

func TestFullApplyRepairsDrift(t *testing.T) {
	f := NewFake()
	d := Build(baseState(), basePods)
	mustApply(t, f, d)

	// Someone adds an element and deletes another behind proxyd's back.
	foreign := elem{key: string(vipKey(key("198.19.0.99", 80, model.TCP)))}
	f.k.sets.add(setVIPs4, foreign)
	delete(f.k.sets[setPodCIDRs4], f.k.sets.sorted(setPodCIDRs4)[0])

	// A partial Apply trusts its cache: nothing to do.
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("partial Apply %+v", res)
	}
	f.Invalidate()
	if res := mustApply(t, f, d); res != (Result{Writes: 2, Ops: Ops{Full: true, ElementsAdded: 1, ElementsDeleted: 1}}) {
		t.Fatalf("full Apply %+v, want the two elements repaired", res)
	}
	fresh := NewFake()
	mustApply(t, fresh, d)
	if !reflect.DeepEqual(fresh.Dump().Sets, f.Dump().Sets) {
		t.Fatalf("after repair\n%v\nwant\n%v", f.Dump().Sets, fresh.Dump().Sets)
	}
}

func TestTamperedStaticPartIsRecreated(t *testing.T) {
	f := NewFake()
	d := Build(baseState(), basePods)
	mustApply(t, f, d)
	f.Tamper("chain postrouting: 4 rules, want 3")
	f.Invalidate()
	res := mustApply(t, f, d)
	if !res.Ops.Recreate || res.Ops.Reason != "chain postrouting: 4 rules, want 3" || res.Writes != recreateWrites(d) {
		t.Fatalf("Apply after tampering %+v, want the table recreated", res)
	}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("then %+v", res)
	}
}

func TestDelete(t *testing.T) {
	f := NewFake()
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if d := f.Dump(); d.Exists || d.Transactions != 0 {
		t.Fatalf("deleting no table wrote: %+v", d)
	}
	d := Build(baseState(), basePods)
	mustApply(t, f, d)
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if dump := f.Dump(); dump.Exists {
		t.Fatalf("table still there: %+v", dump)
	}
	// The next Apply knows the table is gone.
	if res := mustApply(t, f, d); !res.Ops.Recreate || !res.Ops.Full {
		t.Fatalf("Apply after Delete %+v, want the table created", res)
	}
}

func TestManyElementsSpreadOverMessages(t *testing.T) {
	var s model.State
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		s.Services = append(s.Services, vs(model.VSKey{Addr: a, Port: 80, Proto: model.TCP}, model.ClusterIP))
	}
	d := Build(s, basePods)
	rs := newRuleset()
	vips, _ := rs.set(setVIPs4)
	per := vips.perMessage()
	wantMsgs := (10000 + per - 1) / per
	f := NewFake()
	res := mustApply(t, f, d)
	if want := recreateWrites(Desired{PodCIDRs: d.PodCIDRs}) + wantMsgs; res.Writes != want {
		t.Fatalf("%d messages, want %d (%d elements per message)", res.Writes, want, per)
	}
	t.Logf("10000 VIPs: %d messages, %d elements per message", res.Writes, per)
}
