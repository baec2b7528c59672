package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The sync benchmarks, as in BENCHMARKS.md:
//
//	go test ./agent/proxy/ -run '^$' -bench . -benchtime 20x
//
// with 1,000 Services of 5 ready endpoints each (5,000 endpoints; every
// fifth Service a NodePort one, every tenth with ClientIP affinity), the
// goal being a full sync well under 1 s. Syncs go into a private table in
// a private network namespace (root needed).

const (
	benchServices  = 1000
	benchEndpoints = 5
)

// benchObjects makes the Services and EndpointSlices.
func benchObjects() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := range benchServices {
		ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		var opts []svcOpt
		if i%5 == 0 {
			opts = append(opts, withNodePort(int32(30000+i)))
		}
		if i%10 == 0 {
			opts = append(opts, withAffinity)
		}
		svc := newService(fmt.Sprintf("svc-%04d", i), ip, 80, 8080, opts...)
		svcs = append(svcs, svc)
		var eps []ep
		for j := range benchEndpoints {
			n := i*benchEndpoints + j
			e := ep{ip: fmt.Sprintf("10.244.%d.%d", n/250, n%250+1)}
			if j%2 == 1 {
				e.node = "node-b"
			}
			eps = append(eps, e)
		}
		slices = append(slices, newSlice(svc, 8080, eps...))
	}
	return svcs, slices
}

var benchRulesConfig = rulesConfig{
	nodePortIPs:  []netip.Addr{netip.MustParseAddr(testNodeIP)},
	clusterCIDR:  netip.MustParsePrefix(testClusterCIDR),
	serviceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")},
}

// BenchmarkComputeRules: Services and EndpointSlices to the table's
// contents, in memory.
func BenchmarkComputeRules(b *testing.B) {
	svcs, slices := benchObjects()
	b.ResetTimer()
	for range b.N {
		buildRuleset(benchRulesConfig, servicePorts(svcs, slices, testNodeName))
	}
}

// privateNetNS makes a network namespace that lives as long as the
// handle (closed when the benchmark ends).
func privateNetNS(b testing.TB) netns.NsHandle {
	requiresRoot(b)
	ch := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		ns, err := netns.New() // moves this thread into it
		if err != nil {
			errc <- err
			return
		}
		if err := netns.Set(orig); err != nil {
			errc <- err
			return // the thread stays locked and is thrown away
		}
		runtime.UnlockOSThread()
		ch <- ns
	}()
	select {
	case err := <-errc:
		b.Fatal(err)
	case ns := <-ch:
		b.Cleanup(func() { ns.Close() })
		return ns
	}
	return netns.None()
}

func benchKernel(b *testing.B) *nftKernel {
	k, err := openKernel("bench", privateNetNS(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.close() })
	return k
}

func benchRuleset() *ruleset {
	svcs, slices := benchObjects()
	return buildRuleset(benchRulesConfig, servicePorts(svcs, slices, testNodeName))
}

// BenchmarkSyncFull: the first sync, into an empty namespace.
func BenchmarkSyncFull(b *testing.B) {
	k := benchKernel(b)
	want := benchRuleset()
	log := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := k.deleteTable(); err != nil {
			b.Fatal(err)
		}
		s := newSyncer(k, log)
		b.StartTimer()
		if _, err := s.sync(want, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncResync: the periodic full resync, which rewrites every
// chain of a table that already holds them.
func BenchmarkSyncResync(b *testing.B) {
	k := benchKernel(b)
	want := benchRuleset()
	s := newSyncer(k, slog.New(slog.DiscardHandler))
	if _, err := s.sync(want, true); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.sync(want, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSyncOneEndpoint: an endpoint of one Service turns not ready
// (or ready again), everything computed and diffed as the proxier does.
func BenchmarkSyncOneEndpoint(b *testing.B) {
	k := benchKernel(b)
	svcs, slices := benchObjects()
	s := newSyncer(k, slog.New(slog.DiscardHandler))
	if _, err := s.sync(buildRuleset(benchRulesConfig, servicePorts(svcs, slices, testNodeName)), true); err != nil {
		b.Fatal(err)
	}
	cond := &slices[500].Endpoints[2].Conditions
	b.ResetTimer()
	for i := range b.N {
		ready := i%2 == 1
		cond.Ready = &ready
		st, err := s.sync(buildRuleset(benchRulesConfig, servicePorts(svcs, slices, testNodeName)), false)
		if err != nil {
			b.Fatal(err)
		}
		if st.chainsWritten > 2 {
			b.Fatalf("%d chains written, want the service's and its endpoint's at most (%s)", st.chainsWritten, st)
		}
	}
}
