//go:build kernel

package nft

// The real table against the host kernel, each test in namespaces of its
// own. Address plan: as the unit tests (helpers_test.go); IPv6 addresses
// (2001:db8::/32) are set contents only, never on an interface.

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

// readKernel reads firewalld's table in ns as a full Apply does.
func readKernel(t testing.TB, ns netns.NsHandle, cfg Config) (*content, string) {
	t.Helper()
	log, err := newLogConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, why, err := (&kernel{netns: int(ns)}).read(newRuleset(log))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return c, why
}

// holds fails unless the table in ns holds d, as written with cfg: every
// set's elements, the peer sets, every group chain's rules.
func holds(t *testing.T, ns netns.NsHandle, cfg Config, d *model.Datapath) {
	t.Helper()
	got, why := readKernel(t, ns, cfg)
	if why != "" {
		t.Fatalf("the table reads back as different: %s", why)
	}
	log, _ := newLogConfig(cfg)
	rs := newRuleset(log)
	want := asRead(rs, newState(d))
	if !reflect.DeepEqual(got.elems, want.elems) {
		t.Fatalf("elements read back\n%v\nwant\n%v", rs.render(got.elems), rs.render(want.elems))
	}
	if !reflect.DeepEqual(got.sets, want.sets) {
		t.Fatalf("peer sets read back %v, want %v", slices.Sorted(maps.Keys(got.sets)), slices.Sorted(maps.Keys(want.sets)))
	}
	if !reflect.DeepEqual(got.chains, want.chains) {
		for k := range want.chains {
			if got.chains[k] != want.chains[k] {
				t.Errorf("chain %s: rules read back differ", groupChainName(k))
			}
		}
		t.Fatalf("group chains read back: %d, want %d", len(got.chains), len(want.chains))
	}
}

func TestKernelCreateReadBackRestart(t *testing.T) {
	for _, cfg := range []Config{{}, {LogGroup: 5, LogRate: 10, LogBurst: 20}, {LogGroup: 6, LogRate: 1}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			ns := netnstest.New(t)
			cfg.NetNS = int(ns)
			tb := New(cfg)
			d := baseDatapath()

			res := mustApply(t, tb, d)
			fake := NewFake(cfg)
			if want := mustApply(t, fake, d); res != want {
				t.Fatalf("first Apply %+v; the fake counts %+v", res, want)
			}
			holds(t, ns, cfg, d)
			got, _ := readKernel(t, ns, cfg)
			rendered := newRuleset(logConfig{}).render(got.elems)
			for name := range got.sets {
				if rendered[name] == nil {
					rendered[name] = []string{}
				}
			}
			if !reflect.DeepEqual(rendered, fake.Dump().Sets) {
				t.Fatalf("kernel sets\n%v\nfake sets\n%v", rendered, fake.Dump().Sets)
			}

			if res := mustApply(t, tb, d); res != (Result{}) {
				t.Fatalf("second Apply %+v, want nothing", res)
			}
			if res := mustApplyDelta(t, tb, d, model.NewDelta()); res != (Result{}) {
				t.Fatalf("empty delta %+v, want nothing", res)
			}
			tb.Invalidate()
			if res := mustApply(t, tb, d); res != (Result{Full: true}) {
				t.Fatalf("full Apply of the same Datapath %+v, want a read only", res)
			}
			// A restarted firewalld: a new Table over the same kernel.
			if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
				t.Fatalf("after restart %+v, want no write", res)
			}
		})
	}
}

func TestKernelDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		for _, how := range []string{"Apply", "ApplyDelta"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				ns := netnstest.New(t)
				cfg := Config{NetNS: int(ns), LogGroup: 2, LogRate: 5}
				tb := New(cfg)
				mustApply(t, tb, baseDatapath())
				d := baseDatapath()
				tc.change(d)
				want := tc.want
				if want.Writes > 0 {
					want.Writes += want.ChainsAdded + want.ChainsChanged // logging: one rule more per chain written
				}
				var res Result
				if how == "Apply" {
					res = mustApply(t, tb, d)
				} else {
					res = mustApplyDelta(t, tb, d, modelDelta(baseDatapath(), d))
				}
				if res != want {
					t.Fatalf("%s:\n got %+v\nwant %+v", how, res, want)
				}
				// The kernel now holds exactly d: a restarted firewalld
				// writes nothing, and the content is d's.
				if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
					t.Fatalf("restart after the change %+v, want no write", res)
				}
				holds(t, ns, cfg, d)
				got, _ := readKernel(t, ns, cfg)
				rendered := newRuleset(logConfig{}).render(got.elems)
				for set, want := range tc.sets {
					if !reflect.DeepEqual(rendered[set], want) && !(len(want) == 0 && len(rendered[set]) == 0) {
						t.Errorf("set %s: %v, want %v", set, rendered[set], want)
					}
				}
				// And back.
				if how == "Apply" {
					mustApply(t, tb, baseDatapath())
				} else {
					mustApplyDelta(t, tb, baseDatapath(), modelDelta(d, baseDatapath()))
				}
				holds(t, ns, cfg, baseDatapath())
			})
		}
	}
}

// TestKernelOrder runs the transaction that takes every kind of step
// (TestDeltaOrder) against the kernel: it refuses a set or chain deleted
// while named or jumped to, and a rule or element naming one that does
// not exist yet.
func TestKernelOrder(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 1, LogRate: 1}
	tb := New(cfg)
	old, new := orderDatapaths()
	mustApply(t, tb, old)
	res := mustApplyDelta(t, tb, new, modelDelta(old, new))
	t.Logf("%+v", res)
	holds(t, ns, cfg, new)
	mustApplyDelta(t, tb, old, modelDelta(new, old))
	holds(t, ns, cfg, old)
	// Through a full read too.
	tb.Invalidate()
	mustApply(t, tb, new)
	holds(t, ns, cfg, new)
}
