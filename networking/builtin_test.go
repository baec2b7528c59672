package networking_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"

	"labctl/networking"
)

// podView is what a pod's setup left on the machine, as a student would
// look at it: the pod's interface, addresses and routes, its host side on
// the bridge, and host-local's reservation file.
type podView struct {
	Addrs, Routes []string
	MTU           int
	OperUp        bool
	HostMaster    string
	HostHairpin   bool
	HostUp        bool
	Reservation   string
}

func viewPod(t *testing.T, cfg networking.Config, nsPath string, pn networking.PodNetwork) podView {
	t.Helper()
	var v podView
	var peer int
	if err := networking.InNetNS(nsPath, func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		v.MTU = link.Attrs().MTU
		v.OperUp = link.Attrs().OperState == netlink.OperUp
		if link.Attrs().HardwareAddr.String() != pn.MAC {
			t.Errorf("eth0's MAC %s, the result says %s", link.Attrs().HardwareAddr, pn.MAC)
		}
		peer = link.Attrs().ParentIndex
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			v.Addrs = append(v.Addrs, a.IPNet.String())
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			s := "default"
			if r.Dst != nil {
				s = r.Dst.String()
			}
			v.Routes = append(v.Routes, s+" via "+r.Gw.String())
		}
		sort.Strings(v.Routes)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	host, err := netlink.LinkByIndex(peer)
	if err != nil {
		t.Fatalf("the pod's host side (index %d): %v", peer, err)
	}
	if br, err := netlink.LinkByIndex(host.Attrs().MasterIndex); err == nil {
		v.HostMaster = br.Attrs().Name
	}
	v.HostUp = host.Attrs().OperState == netlink.OperUp
	if pi := host.Attrs().Protinfo; pi != nil {
		v.HostHairpin = pi.Hairpin
	} else if pi, err := netlink.LinkGetProtinfo(host); err == nil {
		v.HostHairpin = pi.Hairpin
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "ipam", networking.NetworkName, pn.IPv4.String()))
	if err != nil {
		t.Fatal(err)
	}
	v.Reservation = string(b)
	return v
}

// TestBuiltinBridgeMatchesPlugin sets up one pod with the built-in bridge
// and one with the machine's bridge and host-local plugins, on the same
// bridge and IPAM directory, and checks that both leave the same things
// (but for the address and the names), then tears each down with the
// other.
func TestBuiltinBridgeMatchesPlugin(t *testing.T) {
	ctx := context.Background()
	cfg, builtin := newTestNetwork(t)
	machineCfg := cfg
	machineCfg.MachineBridge = true
	machine, err := networking.New(machineCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := builtin.SetupHost(); err != nil {
		t.Fatal(err)
	}
	vethsBefore := veths(t)

	suffix := randName("")
	ids := map[string]*networking.Network{"m" + suffix: machine, "b" + suffix: builtin}
	views := map[string]podView{}
	nets := map[string]networking.PodNetwork{}
	for id, n := range ids {
		path, err := n.NewNetNS(id)
		if err != nil {
			t.Fatal(err)
		}
		pn, err := n.Setup(ctx, id, path, nil)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		nets[id] = pn
		v := viewPod(t, cfg, path, pn)
		t.Logf("%s: %+v %+v", id, pn, v)
		// Normalise what differs by nature: the address and the ID.
		v.Addrs = []string{strings.Replace(strings.Join(v.Addrs, ","), pn.IPv4.String(), "ADDR", 1)}
		v.Reservation = strings.Replace(v.Reservation, id, "ID", 1)
		views[id] = v
	}
	m, b := views["m"+suffix], views["b"+suffix]
	if !equalViews(m, b) {
		t.Errorf("the machine's plugin left\n%+v\nthe built-in bridge\n%+v", m, b)
	}
	if !m.HostHairpin || m.HostMaster != cfg.BridgeName || !m.OperUp || !m.HostUp || m.Addrs[0] != "ADDR/24" {
		t.Errorf("unexpected setup: %+v", m)
	}
	for id, pn := range nets {
		if pn.Gateway != builtin.Gateway() || pn.Interface != "eth0" || pn.Prefix.Bits() != 24 {
			t.Errorf("%s: %+v", id, pn)
		}
	}
	// The two pods reach each other through the bridge.
	mAddr := nets["m"+suffix].IPv4
	servePod(t, machine.NetNSPath("m"+suffix), "M")
	if err := networking.InNetNS(builtin.NetNSPath("b"+suffix), func() error {
		got, err := hello(netip.AddrPortFrom(mAddr, 8080).String())
		if err == nil && got != "hello from M" {
			t.Errorf("got %q", got)
		}
		return err
	}); err != nil {
		t.Fatalf("built-in pod to the machine-plugin pod: %v", err)
	}

	// Each torn down by the other: same cache, same reservations.
	for id, n := range ids {
		other := builtin
		if n == builtin {
			other = machine
		}
		if err := other.Teardown(ctx, id, other.NetNSPath(id)); err != nil {
			t.Fatalf("tearing down %s: %v", id, err)
		}
		if err := networking.InNetNS(other.NetNSPath(id), func() error {
			if _, err := netlink.LinkByName("eth0"); err == nil {
				t.Errorf("%s: eth0 is still there", id)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	checkNothingLeft(t, cfg, vethsBefore)
}

func equalViews(a, b podView) bool {
	return strings.Join(a.Addrs, ",") == strings.Join(b.Addrs, ",") &&
		strings.Join(a.Routes, ",") == strings.Join(b.Routes, ",") &&
		a.MTU == b.MTU && a.OperUp == b.OperUp && a.HostMaster == b.HostMaster &&
		a.HostHairpin == b.HostHairpin && a.HostUp == b.HostUp && a.Reservation == b.Reservation
}

// TestBuiltinBridgeRefuses: options the built-in bridge does not implement
// are an error that says so, not a silent difference.
func TestBuiltinBridgeRefuses(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{"cniVersion":"1.0.0","name":"x","type":"bridge","isGateway":true,"ipam":{"type":"host-local"},"vlan":3}`, `option "vlan"`},
		{`{"cniVersion":"1.0.0","name":"x","type":"bridge","isGateway":true,"ipam":{"type":"dhcp"}}`, `not "dhcp"`},
		{`{"cniVersion":"1.0.0","name":"x","type":"bridge","isGateway":true,"ipam":{"type":"host-local"},"ipMasq":true}`, `ipMasq`},
		{`{"cniVersion":"1.0.0","name":"x","type":"bridge","ipam":{"type":"host-local"}}`, `isGateway`},
		{`{"cniVersion":`, `configuration`},
	} {
		_, err := networking.LoadBridgeConf([]byte(tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.conf, err, tc.want)
		}
	}
	if _, err := networking.LoadBridgeConf([]byte(`{"cniVersion":"1.0.0","name":"x","type":"bridge","bridge":"cni0","isGateway":true,"hairpinMode":true,"ipam":{"type":"host-local"}}`)); err != nil {
		t.Errorf("labctl's own configuration: %v", err)
	}
}

// TestBuiltinBridgeFull: a pod the range has no address for gets host-local's
// error through libcni, and leaves no interface behind.
func TestBuiltinBridgeFull(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.PodCIDR = netip.PrefixFrom(cfg.PodCIDR.Addr(), 30) // the gateway and one pod
	n, err := networking.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	vethsBefore := veths(t)
	suffix := randName("")
	first, err := n.NewNetNS("a" + suffix)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Setup(ctx, "a"+suffix, first, nil); err != nil {
		t.Fatal(err)
	}
	second, err := n.NewNetNS("b" + suffix)
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Setup(ctx, "b"+suffix, second, nil)
	if err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Fatalf("a pod past the range's end: %v, want host-local's error", err)
	}
	t.Log(err)
	if err := networking.InNetNS(second, func() error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			t.Error("the failed pod kept its eth0")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Status("b" + suffix); ok {
		t.Error("the failed pod has a status")
	}
	if err := n.Teardown(ctx, "a"+suffix, first); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, cfg, vethsBefore)
}

// TestBuiltinBridgeConcurrent: pods set up and torn down at once, as the
// kubelet does, get distinct addresses and leave nothing behind (the
// in-process host-local allocators share the reservations through the
// store's file lock, as the plugin's processes do).
func TestBuiltinBridgeConcurrent(t *testing.T) {
	ctx := context.Background()
	cfg, n := newTestNetwork(t)
	vethsBefore := veths(t)
	suffix := randName("")
	const pods = 20
	var wg sync.WaitGroup
	addrs := make([]netip.Addr, pods)
	errs := make([]error, pods)
	for i := range pods {
		wg.Go(func() {
			id := fmt.Sprintf("p%d%s", i, suffix)
			path, err := n.NewNetNS(id)
			if err == nil {
				var pn networking.PodNetwork
				pn, err = n.Setup(ctx, id, path, nil)
				addrs[i] = pn.IPv4
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[netip.Addr]bool{}
	for i, a := range addrs {
		if errs[i] != nil {
			t.Fatalf("pod %d: %v", i, errs[i])
		}
		if seen[a] || !cfg.PodCIDR.Contains(a) {
			t.Errorf("pod %d has %s (taken twice, or outside %s)", i, a, cfg.PodCIDR)
		}
		seen[a] = true
	}
	if got := len(reservedIPs(t, cfg)); got != pods {
		t.Errorf("%d addresses reserved, want %d", got, pods)
	}
	for i := range pods {
		wg.Go(func() {
			id := fmt.Sprintf("p%d%s", i, suffix)
			errs[i] = n.Teardown(ctx, id, n.NetNSPath(id))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("tearing down pod %d: %v", i, err)
		}
	}
	checkNothingLeft(t, cfg, vethsBefore)
}

// BenchmarkSetupTeardown: one pod's network set up and torn down, with the
// built-in bridge and with the machine's bridge and host-local plugins.
func BenchmarkSetupTeardown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for _, machine := range []bool{false, true} {
		name := "builtin"
		if machine {
			name = "machine"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			cfg := testConfig(b)
			cfg.MachineBridge = machine
			n, err := networking.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			id := "bench" + randName("")
			path, err := n.NewNetNS(id)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := n.Setup(ctx, id, path, nil); err != nil {
					b.Fatal(err)
				}
				if err := n.Teardown(ctx, id, path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
