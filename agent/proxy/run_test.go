package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeConntrack records the filters the proxier deletes entries with.
type fakeConntrack struct {
	mu      sync.Mutex
	filters []netlink.CustomConntrackFilter
}

func (c *fakeConntrack) ConntrackDeleteFilters(_ netlink.ConntrackTableType, _ netlink.InetFamily, fs ...netlink.CustomConntrackFilter) (uint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filters = append(c.filters, fs...)
	return 0, nil
}

func (c *fakeConntrack) calls() []netlink.CustomConntrackFilter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]netlink.CustomConntrackFilter(nil), c.filters...)
}

func udpFlow(dst string, dport uint16, replySrc string) *netlink.ConntrackFlow {
	f := &netlink.ConntrackFlow{FamilyType: unix.AF_INET}
	f.Forward = netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.ParseIP("10.244.0.12"), DstIP: net.ParseIP(dst), SrcPort: 40000, DstPort: dport}
	f.Reverse = netlink.IPTuple{Protocol: unix.IPPROTO_UDP, SrcIP: net.ParseIP(replySrc), DstIP: net.ParseIP("10.244.0.12"), SrcPort: 5353, DstPort: 40000}
	return f
}

// The run loop without root: informers on a fake clientset, the fake
// kernel, a fake conntrack table.
func TestRunLoop(t *testing.T) {
	svc := newService("dns", "10.96.0.53", 53, 5353, withUDP, withNodePort(30053))
	cs := newClient(svc)
	putSlice(t, cs, newSlice(svc, 5353, ep{ip: "10.244.0.10"}))
	p, err := New(Config{Client: cs, NodeName: testNodeName, NodeIPs: []netip.Addr{netip.MustParseAddr(testNodeIP)},
		ClusterCIDR: netip.MustParsePrefix(testClusterCIDR), MinSyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	k, ct := &fakeKernel{}, &fakeConntrack{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, k, ct) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// waitFor polls the table until check passes.
	waitFor := func(what string, check func(*fakeTable) error) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			tbl := k.snapshot()
			if tbl == nil {
				err = fmt.Errorf("no table")
				continue
			}
			if err = check(tbl); err == nil {
				return
			}
		}
		t.Fatalf("%s: %v", what, err)
	}
	dnat := func(ip string) func(*fakeTable) error {
		return func(tbl *fakeTable) error { return dnatTo(tbl, "udp", ip+":5353") }
	}
	waitFor("the first endpoint", dnat("10.244.0.10"))

	// The first sync cleans up after whatever ran before.
	if n := len(ct.calls()); n != 1 {
		t.Fatalf("%d conntrack cleanups after the first sync, want 1", n)
	}
	// The endpoint changes: the flows answered by the old one go.
	putSlice(t, cs, newSlice(svc, 5353, ep{ip: "10.244.0.11"}))
	waitFor("the new endpoint", dnat("10.244.0.11"))
	var calls []netlink.CustomConntrackFilter
	for deadline := time.Now().Add(5 * time.Second); len(calls) < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		calls = ct.calls()
	}
	if len(calls) != 2 {
		t.Fatalf("%d conntrack cleanups, want 2", len(calls))
	}
	f := calls[1]
	for _, c := range []struct {
		flow *netlink.ConntrackFlow
		del  bool
	}{
		{udpFlow("10.96.0.53", 53, "10.244.0.10"), true},    // to the gone endpoint
		{udpFlow("10.96.0.53", 53, "10.96.0.53"), true},     // never DNATed
		{udpFlow("10.96.0.53", 53, "10.244.0.11"), false},   // to the new one
		{udpFlow(testNodeIP, 30053, "10.244.0.10"), true},   // node port
		{udpFlow("192.0.2.1", 30053, "10.244.0.10"), false}, // not a node address
		{udpFlow("10.96.0.54", 53, "10.244.0.10"), false},   // another address
	} {
		if got := f.MatchConntrackFlow(c.flow); got != c.del {
			t.Errorf("flow to %s:%d answered by %s: deleted %t, want %t", c.flow.Forward.DstIP, c.flow.Forward.DstPort, c.flow.Reverse.SrcIP, got, c.del)
		}
	}
	// A TCP change cleans nothing.
	web := newService("web", "10.96.0.80", 80, 8080)
	if _, err := cs.CoreV1().Services("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	putSlice(t, cs, newSlice(web, 8080, ep{ip: "10.244.0.12"}))
	waitFor("the TCP service", func(tbl *fakeTable) error { return dnatTo(tbl, "tcp", "10.244.0.12:8080") })
	if n := len(ct.calls()); n != 2 {
		t.Errorf("%d conntrack cleanups after a TCP change, want still 2", n)
	}
}

// dnatTo checks that an endpoint chain DNATs to ap.
func dnatTo(tbl *fakeTable, proto, ap string) error {
	for _, rules := range tbl.chains {
		for _, r := range rules {
			if r.String() == "meta l4proto "+proto+" dnat to "+ap {
				return nil
			}
		}
	}
	return fmt.Errorf("no endpoint chain for %s", ap)
}
