package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The syncer against the fake kernel: what reaches the table, and how
// little of it is rewritten when little changes.

// world is a set of Services and slices to compute rulesets from.
type world struct {
	svcs   []*corev1.Service
	slices map[string]*discoveryv1.EndpointSlice
}

func newWorld(n int) *world {
	w := &world{slices: map[string]*discoveryv1.EndpointSlice{}}
	for i := range n {
		opts := []svcOpt{}
		if i%2 == 0 {
			opts = append(opts, withNodePort(int32(30000+i)))
		}
		if i%3 == 0 {
			opts = append(opts, withAffinity)
		}
		svc := newService(fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.1.%d", i+1), 80, 8080, opts...)
		w.svcs = append(w.svcs, svc)
		w.slices[svc.Name] = newSlice(svc, 8080, ep{ip: fmt.Sprintf("10.244.%d.1", i)}, ep{ip: fmt.Sprintf("10.244.%d.2", i)})
	}
	return w
}

func (w *world) ruleset() *ruleset { return w.rulesetWith(testRulesConfig) }

func (w *world) rulesetWith(cfg rulesConfig) *ruleset {
	var slices []*discoveryv1.EndpointSlice
	for _, s := range w.slices {
		slices = append(slices, s)
	}
	return buildRuleset(cfg, servicePorts(w.svcs, slices, testNodeName))
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeSyncer(k *fakeKernel) (*syncer, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	s := newSyncer(k, slog.New(slog.DiscardHandler))
	s.now = clock.now
	return s, clock
}

func syncOK(t *testing.T, s *syncer, want *ruleset, full bool) syncStats {
	t.Helper()
	st, err := s.sync(want, full)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantTable checks that the fake table holds want, and nothing else but
// the stale chains s has yet to delete, empty.
func wantTable(t *testing.T, k *fakeKernel, s *syncer, want *ruleset) {
	t.Helper()
	if k.t == nil {
		t.Fatal("no table")
	}
	table := k.t.clone()
	for name := range s.stale {
		if len(table.chains[name]) > 0 {
			t.Errorf("stale chain %s has rules", name)
		}
		delete(table.chains, name)
	}
	if got, w := table.dump(), dumpWithoutComments(want); got != w {
		t.Errorf("the table differs from the ruleset:\n%s", lineDiff(got, w))
	}
	for _, bc := range baseChains {
		if !k.t.base[bc.name] {
			t.Errorf("base chain %s missing", bc.name)
		}
	}
}

func TestSyncIncremental(t *testing.T) {
	k := &fakeKernel{}
	s, _ := newFakeSyncer(k)
	w := newWorld(20)
	want := w.ruleset()
	st := syncOK(t, s, want, false)
	if !st.full {
		t.Error("the first sync was not full")
	}
	wantTable(t, k, s, want)

	// Nothing changed: nothing is sent.
	commits := k.commits
	st = syncOK(t, s, w.ruleset(), false)
	if k.commits != commits || st.chainsWritten != 0 || st.elementsAdded+st.elementsDeleted != 0 {
		t.Errorf("a sync without changes committed %d transactions: %s", k.commits-commits, st)
	}

	// One endpoint of s4 goes: its service chain is rewritten, the
	// endpoint's chain flushed; nothing of another service is touched.
	w.slices["s4"] = newSlice(w.svcs[4], 8080, ep{ip: "10.244.4.1"})
	want = w.ruleset()
	st = syncOK(t, s, want, false)
	wantTable(t, k, s, want)
	for _, op := range k.ops {
		if !strings.Contains(op, "default/s4/") {
			t.Errorf("the change to s4 touched %q", op)
		}
	}
	if st.chainsWritten != 1 || st.chainsRemoved != 1 {
		t.Errorf("changes: %s; want one chain written, one removed", st)
	}
	// The chain goes a second later, in a sync of its own.
	if len(s.stale) != 1 || s.nextStale().IsZero() {
		t.Fatalf("stale chains %v", s.stale)
	}

	// A new service: its chains and elements only.
	w.svcs = append(w.svcs, newService("fresh", "10.96.2.1", 81, 8080))
	w.slices["fresh"] = newSlice(w.svcs[len(w.svcs)-1], 8080, ep{ip: "10.244.99.1"})
	want = w.ruleset()
	st = syncOK(t, s, want, false)
	wantTable(t, k, s, want)
	if st.chainsWritten != 2 || st.elementsAdded != 2 || st.elementsDeleted != 0 {
		t.Errorf("changes: %s; want 2 chains and 2 elements (service-ips, cluster-ips)", st)
	}
}

// A Service goes: its ClusterIP leaves cluster-ips element by element,
// so that the service range's drop rule takes it; cluster-ips-check is
// written once and left alone.
func TestSyncServiceDeletedUnallocates(t *testing.T) {
	cfg := testRulesConfig
	cfg.serviceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}
	k := &fakeKernel{}
	s, _ := newFakeSyncer(k)
	w := newWorld(5)
	syncOK(t, s, w.rulesetWith(cfg), false)
	if got := chainText(k.t.chains[chainClusterIPsCheck]); !strings.Contains(got, "ip daddr 10.96.0.0/16 drop") {
		t.Fatalf("cluster-ips-check:\n%s", got)
	}

	gone := w.svcs[2] // 10.96.1.3
	w.svcs = append(w.svcs[:2:2], w.svcs[3:]...)
	delete(w.slices, gone.Name)
	want := w.rulesetWith(cfg)
	st := syncOK(t, s, want, false)
	wantTable(t, k, s, want)
	var setOps []string
	for _, op := range k.ops {
		if strings.Contains(op, chainClusterIPsCheck) || strings.HasPrefix(op, "flush set") {
			t.Errorf("deleting a Service rewrote more than its own: %q", op)
		}
		if strings.HasSuffix(op, " "+setClusterIPs+": [10.96.1.3]") {
			setOps = append(setOps, op)
		}
	}
	if len(setOps) != 1 || !strings.HasPrefix(setOps[0], "delete elements from") {
		t.Errorf("cluster-ips changes %q, want its address deleted; all: %q", setOps, k.ops)
	}
	if st.full || st.elementsAdded != 0 {
		t.Errorf("changes: %s", st)
	}
}

func TestSyncStaleChainsDeletedLater(t *testing.T) {
	k := &fakeKernel{}
	s, clock := newFakeSyncer(k)
	w := newWorld(4)
	syncOK(t, s, w.ruleset(), false)
	gone := w.svcs[0] // with affinity and a node port
	w.svcs = w.svcs[1:]
	delete(w.slices, gone.Name)
	want := w.ruleset()
	syncOK(t, s, want, false)
	var left []string
	for name, rules := range k.t.chains {
		if strings.Contains(name, "default/s0/") {
			left = append(left, name)
			if len(rules) > 0 {
				t.Errorf("chain %s of the deleted service still has rules", name)
			}
		}
	}
	if len(left) != 4 { // service, external and two endpoints
		t.Errorf("left chains %v, want the deleted service's 4, flushed", left)
	}
	for name := range k.t.sets {
		if strings.Contains(name, "default/s0/") {
			t.Errorf("set %s of the deleted service is left", name)
		}
	}
	// Too soon: nothing is deleted.
	clock.advance(staleChainDelay / 2)
	if st := syncOK(t, s, want, false); st.staleDeleted != 0 {
		t.Errorf("deleted %d chains after %s", st.staleDeleted, staleChainDelay/2)
	}
	clock.advance(staleChainDelay)
	if st := syncOK(t, s, want, false); st.staleDeleted != 4 {
		t.Errorf("deleted %d stale chains, want 4", st.staleDeleted)
	}
	wantTable(t, k, s, want)
	if !s.nextStale().IsZero() {
		t.Error("stale chains left to delete")
	}
}

func TestSyncTakesOverTable(t *testing.T) {
	// What an earlier proxier left: its table with another service,
	// stale chains, and an affinity set with clients in it.
	k := &fakeKernel{}
	old, _ := newFakeSyncer(k)
	w := newWorld(6)
	syncOK(t, old, w.ruleset(), false)
	var affinity string
	for name, set := range k.t.sets {
		if strings.Contains(name, "default/s0/") && strings.HasPrefix(name, prefixAffinity) {
			affinity = name
			set.elems[element{addr: testClientAddr}] = ""
		}
	}
	k.t.sets["someone-elses"] = &fakeSet{elems: map[element]string{}}
	k.t.chains["leftover/x"] = []rule{{verdictReturn}}

	// A new proxier, and the world changed meanwhile.
	w.svcs = w.svcs[:5]
	w.slices["s1"] = newSlice(w.svcs[1], 8080, ep{ip: "10.244.1.9"})
	want := w.ruleset()
	s, clock := newFakeSyncer(k)
	if st := syncOK(t, s, want, false); !st.full {
		t.Error("a new proxier's first sync was not full")
	}
	if _, ok := k.t.sets["someone-elses"]; ok {
		t.Error("a set the proxy does not know is left")
	}
	if set := k.t.sets[affinity]; set == nil || len(set.elems) != 1 {
		t.Errorf("the affinity set %s lost its clients: %+v", affinity, set)
	}
	clock.advance(2 * staleChainDelay)
	syncOK(t, s, want, false)
	wantTable(t, k, s, want)
}

var testClientAddr = netip4(10, 244, 50, 5)

func TestSyncAffinityTimeoutChange(t *testing.T) {
	k := &fakeKernel{}
	s, _ := newFakeSyncer(k)
	w := newWorld(3)
	syncOK(t, s, w.ruleset(), false)
	timeout := int32(60)
	w.svcs[0].Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	want := w.ruleset()
	st := syncOK(t, s, want, false)
	wantTable(t, k, s, want)
	if st.setsDeleted != 2 || st.setsAdded != 2 {
		t.Errorf("changes: %s; want both affinity sets of s0 made again", st)
	}
}

func TestSyncFailureMakesNextFull(t *testing.T) {
	k := &fakeKernel{}
	s, _ := newFakeSyncer(k)
	w := newWorld(3)
	syncOK(t, s, w.ruleset(), false)
	w.slices["s1"] = newSlice(w.svcs[1], 8080)
	k.failNext = errors.New("injected")
	if _, err := s.sync(w.ruleset(), false); err == nil {
		t.Fatal("no error")
	}
	want := w.ruleset()
	if st := syncOK(t, s, want, false); !st.full {
		t.Error("the sync after a failure was not full")
	}
	wantTable(t, k, s, want)
}

func netip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
