package networking_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"labctl/networking"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// randName is prefix and random hex digits, 11 characters in all (interface
// names may have 15).
func randName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	s := prefix + hex.EncodeToString(b)
	return s[:min(len(s), 11)]
}

// freeTestRange finds a 10.N.0.0/16 that no route and no address on the
// machine overlaps.
func freeTestRange(t testing.TB) netip.Prefix {
	t.Helper()
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var taken []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue // default route
		}
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 {
			taken = append(taken, p)
		}
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			taken = append(taken, p)
		}
	}
	b := make([]byte, 1)
	rand.Read(b)
	for i := range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + (int(b[0])+i)%50), 0, 0}), 16)
		free := true
		for _, q := range taken {
			if q.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p
		}
	}
	t.Skip("no free 10.200-249.0.0/16 on this machine")
	return netip.Prefix{}
}

func prefixOf(ipn *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := ipn.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

// keepIPForward puts net.ipv4.ip_forward back as it was when the test ends.
func keepIPForward(t testing.TB) {
	const path = "/proc/sys/net/ipv4/ip_forward"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(path, old, 0o644) })
}

// testConfig is a pod network of its own: a test bridge, a test table, a
// free range, fresh directories. Whatever the test leaves, the cleanup
// removes.
func testConfig(t testing.TB) networking.Config {
	t.Helper()
	base := freeTestRange(t)
	cfg := networking.Config{
		ClusterCIDR: base,
		PodCIDR:     netip.PrefixFrom(base.Addr(), 24),
		DataDir:     filepath.Join(t.TempDir(), "cni"),
		RunDir:      t.TempDir(),
		BridgeName:  randName("lbt"),
		Table:       randName("lbt"),
	}
	keepIPForward(t)
	t.Cleanup(func() {
		// Cleanup is under test; this makes sure nothing leaks either way.
		if err := networking.Cleanup(context.Background(), cfg); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if l, err := netlink.LinkByName(cfg.BridgeName); err == nil {
			netlink.LinkDel(l)
		}
		if c, err := nftables.New(); err == nil {
			c.DelTable(&nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet})
			c.Flush()
		}
		entries, _ := os.ReadDir(filepath.Join(cfg.RunDir, "netns"))
		for _, e := range entries {
			unix.Unmount(filepath.Join(cfg.RunDir, "netns", e.Name()), unix.MNT_DETACH)
		}
	})
	return cfg
}

func TestNetNS(t *testing.T) {
	requireRoot(t)
	n, err := networking.New(networking.Config{RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if _, err := n.NewNetNS(bad); err == nil {
			t.Errorf("NewNetNS(%q) worked", bad)
		}
	}
	path, err := n.NewNetNS("sandbox1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.RemoveNetNS("sandbox1") })
	if path != n.NetNSPath("sandbox1") || !networking.IsNetNS(path) {
		t.Fatalf("%s is not a network namespace", path)
	}
	if again, err := n.NewNetNS("sandbox1"); err != nil || again != path {
		t.Fatalf("NewNetNS again: %s %v", again, err)
	}
	if networking.IsNetNS("/proc/self/ns/mnt") || networking.IsNetNS(t.TempDir()) {
		t.Error("IsNetNS says yes to what is not a network namespace")
	}
	h, err := networking.OpenNetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := networking.OpenNetNS("/proc/self/ns/net")
	if h.Equal(self) {
		t.Error("the new namespace is this process's")
	}
	h.Close()
	self.Close()
	// Inside: only a loopback device, up (the CNI loopback plugin's job,
	// which the chain leaves out).
	var names []string
	var loUp bool
	if err := networking.InNetNS(path, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
			loUp = loUp || l.Attrs().Name == "lo" && l.Attrs().Flags&net.FlagUp != 0
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Errorf("links in the new namespace: %v", names)
	}
	if !loUp {
		t.Error("lo is down in the new namespace")
	}
	for range 2 {
		if err := n.RemoveNetNS("sandbox1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there: %v", path, err)
	}
	if _, err := networking.OpenNetNS(path); err == nil {
		t.Error("OpenNetNS of a removed namespace worked")
	}
}

// serve answers every connection on ln with "hello from <name>".
func serve(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "hello from %s\n", name)
		c.Close()
	}
}

func hello(addr string) (string, error) {
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func freePort(t *testing.T) int32 {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

func TestPodNetwork(t *testing.T) {
	ctx := context.Background()
	cfg, n := newTestNetwork(t)
	for range 2 {
		if err := n.SetupHost(); err != nil {
			t.Fatal(err)
		}
	}
	checkHost(t, cfg, n.Gateway())
	vethsBefore := veths(t)
	portmapBefore := portmapChains(t)

	suffix := randName("")
	idA, idB := "a"+suffix, "b"+suffix
	nsA, err := n.NewNetNS(idA)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := n.NewNetNS(idB)
	if err != nil {
		t.Fatal(err)
	}
	hostPort := freePort(t)
	podA, err := n.Setup(ctx, idA, nsA, []networking.PortMapping{{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP"}})
	if err != nil {
		t.Fatal(err)
	}
	podB, err := n.Setup(ctx, idB, nsB, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod A %+v, pod B %+v", podA, podB)
	for _, p := range []networking.PodNetwork{podA, podB} {
		if !cfg.PodCIDR.Contains(p.IPv4) || p.IPv4 == n.Gateway() || p.Gateway != n.Gateway() ||
			p.Prefix != netip.PrefixFrom(p.IPv4, 24) || p.Interface != "eth0" || p.MAC == "" {
			t.Errorf("pod network %+v in %s", p, cfg.PodCIDR)
		}
	}
	if podA.IPv4 == podB.IPv4 {
		t.Fatalf("both pods have %s", podA.IPv4)
	}
	// Again: the same address, nothing run twice.
	if again, err := n.Setup(ctx, idA, nsA, []networking.PortMapping{{HostPort: hostPort, ContainerPort: 8080}}); err != nil || again != podA {
		t.Fatalf("Setup again: %+v %v", again, err)
	}
	if st, ok := n.Status(idA); !ok || st != podA {
		t.Fatalf("Status: %+v %v", st, ok)
	}

	// A server in pod A, on its address and its loopback.
	servePod(t, nsA, "A")
	var fromB, fromALoopback string
	if err := networking.InNetNS(nsB, func() (err error) {
		fromB, err = hello(netip.AddrPortFrom(podA.IPv4, 8080).String())
		return err
	}); err != nil {
		t.Fatalf("pod B to pod A: %v", err)
	}
	if err := networking.InNetNS(nsA, func() (err error) {
		fromALoopback, err = hello("127.0.0.1:8080")
		return err
	}); err != nil {
		t.Fatalf("pod A to its loopback: %v", err)
	}
	// The host port answers on the host's address on the bridge.
	fromHost, err := hello(netip.AddrPortFrom(n.Gateway(), uint16(hostPort)).String())
	if err != nil {
		t.Fatalf("host port %d: %v", hostPort, err)
	}
	for what, got := range map[string]string{"B": fromB, "A's loopback": fromALoopback, "the host port": fromHost} {
		if got != "hello from A" {
			t.Errorf("through %s: %q", what, got)
		}
	}
	// The pods' default route is the bridge.
	if err := networking.InNetNS(nsB, func() error {
		routes, err := netlink.RouteGet(net.ParseIP("192.0.2.200"))
		if err == nil && (len(routes) == 0 || !net.IP(n.Gateway().AsSlice()).Equal(routes[0].Gw)) {
			err = fmt.Errorf("route out of the pod: %+v", routes)
		}
		return err
	}); err != nil {
		t.Error(err)
	}

	// Teardown, twice; the addresses go back.
	for range 2 {
		for _, id := range []string{idA, idB} {
			if err := n.Teardown(ctx, id, n.NetNSPath(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, ok := n.Status(idA); ok {
		t.Error("pod A still has a status")
	}
	if ips := reservedIPs(t, cfg); len(ips) != 0 {
		t.Errorf("addresses still reserved after teardown: %v", ips)
	}
	if err := networking.InNetNS(nsA, func() error {
		if _, err := netlink.LinkByName("eth0"); err == nil {
			return errors.New("eth0 is still in pod A")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if _, err := hello(netip.AddrPortFrom(n.Gateway(), uint16(hostPort)).String()); err == nil {
		t.Error("the host port still answers after teardown")
	}
	if ports := bridgePorts(t, cfg.BridgeName); len(ports) != 0 {
		t.Errorf("ports left on the bridge: %v", ports)
	}

	// A pod whose namespace is gone before its teardown gives its address back.
	idC := "c" + suffix
	nsC, err := n.NewNetNS(idC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Setup(ctx, idC, nsC, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.RemoveNetNS(idC); err != nil {
		t.Fatal(err)
	}
	if err := n.Teardown(ctx, idC, nsC); err != nil {
		t.Fatal(err)
	}
	if ips := reservedIPs(t, cfg); len(ips) != 0 {
		t.Errorf("addresses still reserved after a teardown without namespace: %v", ips)
	}

	// Cleanup takes down a pod still set up, and everything else.
	idD := "d" + suffix
	nsD, err := n.NewNetNS(idD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Setup(ctx, idD, nsD, []networking.PortMapping{{HostPort: hostPort, ContainerPort: 80}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := networking.Cleanup(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := netlink.LinkByName(cfg.BridgeName); err == nil {
		t.Error("the bridge is still there")
	}
	if tableExists(t, cfg.Table) {
		t.Error("the nftables table is still there")
	}
	for _, dir := range []string{filepath.Join(cfg.RunDir, "netns"), cfg.DataDir} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", dir, err)
		}
	}
	if networking.IsNetNS(nsA) || networking.IsNetNS(nsD) {
		t.Error("a network namespace is still mounted")
	}
	if after := portmapChains(t); len(after) != 0 && len(portmapBefore) == 0 {
		t.Errorf("portmap's chains are left: %v", after)
	}
	for v := range veths(t) {
		if !vethsBefore[v] {
			t.Errorf("veth %s is left", v)
		}
	}
}

// checkHost checks what SetupHost made.
func checkHost(t *testing.T, cfg networking.Config, gw netip.Addr) {
	t.Helper()
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward is %q", b)
	}
	br, err := netlink.LinkByName(cfg.BridgeName)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := br.(*netlink.Bridge); !ok || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s: %T, flags %v", cfg.BridgeName, br, br.Attrs().Flags)
	}
	addrs, _ := netlink.AddrList(br, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(gw, 24).String() {
		t.Errorf("bridge addresses %v, want %s/24", addrs, gw)
	}
	if b, _ := os.ReadFile(filepath.Join("/sys/class/net", cfg.BridgeName, "bridge/nf_call_iptables")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("nf_call_iptables is %q", b)
	}
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for _, ch := range chains {
		if ch.Table.Name != cfg.Table {
			continue
		}
		rs, err := c.GetRules(table, ch)
		if err != nil {
			t.Fatal(err)
		}
		rules[ch.Name] = len(rs)
	}
	if rules["forward"] != 2 || rules["postrouting"] != 1 || len(rules) != 2 {
		t.Errorf("chains and their rule counts in inet %s: %v", cfg.Table, rules)
	}
}

func tableExists(t *testing.T, name string) bool {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

// reservedIPs lists host-local's reservations under cfg.DataDir.
func reservedIPs(t *testing.T, cfg networking.Config) []string {
	entries, err := os.ReadDir(filepath.Join(cfg.DataDir, "ipam", networking.NetworkName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

func bridgePorts(t *testing.T, bridge string) []string {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports
}

// portmapChains lists the CNI-HOSTPORT-* chains in the ip nat table.
func portmapChains(t *testing.T) []string {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == "nat" && strings.HasPrefix(ch.Name, "CNI-HOSTPORT-") {
			out = append(out, ch.Name)
		}
	}
	return out
}

// servePod serves "hello from <name>" on port 8080 in the network
// namespace at nsPath until the test ends.
func servePod(t *testing.T, nsPath, name string) {
	t.Helper()
	var ln net.Listener
	if err := networking.InNetNS(nsPath, func() (err error) {
		ln, err = net.Listen("tcp4", ":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serve(ln, name)
}

// newTestNetwork is a root-only test's pod network (testConfig) and its
// Network.
func newTestNetwork(t *testing.T) (networking.Config, *networking.Network) {
	t.Helper()
	requireRoot(t)
	cfg := testConfig(t)
	n, err := networking.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, n
}

// checkNothingLeft fails t if host-local still holds an address under
// cfg.DataDir or a veth is on the host that vethsBefore (veths at the
// start) did not have.
func checkNothingLeft(t *testing.T, cfg networking.Config, vethsBefore map[string]bool) {
	t.Helper()
	if ips := reservedIPs(t, cfg); len(ips) != 0 {
		t.Errorf("addresses still reserved: %v", ips)
	}
	for v := range veths(t) {
		if !vethsBefore[v] {
			t.Errorf("veth %s is left", v)
		}
	}
}

// veths lists the host's veth interfaces.
func veths(t *testing.T) map[string]bool {
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range links {
		if _, ok := l.(*netlink.Veth); ok {
			out[l.Attrs().Name] = true
		}
	}
	return out
}

func TestSyncRoutes(t *testing.T) {
	requireRoot(t)
	base := freeTestRange(t)
	b := base.Addr().As4()
	at := func(c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{b[0], b[1], c, d}) }
	const proto = 201
	if rs, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE); len(rs) > 0 {
		t.Skipf("routes of protocol %d exist on this machine: %v", proto, rs)
	}
	// A dummy link stands for the nodes' shared network, at <base>.200.0/24
	// (a bridge where the kernel has no dummy driver).
	attrs := netlink.NewLinkAttrs()
	attrs.Name = randName("lbtd")
	var dummy netlink.Link = &netlink.Dummy{LinkAttrs: attrs}
	err := netlink.LinkAdd(dummy)
	if errors.Is(err, unix.EOPNOTSUPP) {
		dummy = &netlink.Bridge{LinkAttrs: attrs}
		err = netlink.LinkAdd(dummy)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(dummy) })
	if err := netlink.AddrAdd(dummy, &netlink.Addr{IPNet: &net.IPNet{IP: at(200, 1).AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(dummy); err != nil {
		t.Fatal(err)
	}
	// Someone else's route, which must stay.
	foreign := &netlink.Route{Dst: &net.IPNet{IP: at(201, 0).AsSlice(), Mask: net.CIDRMask(24, 32)},
		Gw: at(200, 9).AsSlice(), Protocol: unix.RTPROT_STATIC}
	if err := netlink.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.RouteDel(foreign) })

	own := netip.PrefixFrom(at(0, 0), 24)
	n, err := networking.New(networking.Config{ClusterCIDR: netip.PrefixFrom(at(0, 0), 17), PodCIDR: own,
		RouteProtocol: proto, DataDir: t.TempDir(), RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.SyncRoutes(nil) })
	cidr1, cidr2 := netip.PrefixFrom(at(1, 0), 24), netip.PrefixFrom(at(2, 0), 24)
	check := func(want map[netip.Prefix]netip.Addr) {
		t.Helper()
		rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: proto, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		got := map[netip.Prefix]netip.Addr{}
		for _, r := range rs {
			p, _ := prefixOf(r.Dst)
			gw, _ := netip.AddrFromSlice(r.Gw)
			got[p] = gw
			if r.LinkIndex != dummy.Attrs().Index {
				t.Errorf("route %v is not on the dummy link", r)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("labctl's routes: %v, want %v", got, want)
		}
		if rs, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: foreign.Dst, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE); err != nil || len(rs) != 1 || rs[0].Protocol != unix.RTPROT_STATIC {
			t.Errorf("the foreign route: %v %v", rs, err)
		}
	}

	peers := []networking.Peer{
		{PodCIDR: cidr1, NodeIP: at(200, 2)},
		{PodCIDR: cidr2, NodeIP: at(200, 3)},
		{PodCIDR: own, NodeIP: at(200, 1)}, // this node's own range: no route
	}
	for range 2 {
		if err := n.SyncRoutes(peers); err != nil {
			t.Fatal(err)
		}
		check(map[netip.Prefix]netip.Addr{cidr1: at(200, 2), cidr2: at(200, 3)})
	}
	// Node 1 moved, node 2 left.
	if err := n.SyncRoutes([]networking.Peer{{PodCIDR: cidr1, NodeIP: at(200, 4)}}); err != nil {
		t.Fatal(err)
	}
	check(map[netip.Prefix]netip.Addr{cidr1: at(200, 4)})
	// A peer that cannot be reached is an error; the others still go in.
	err = n.SyncRoutes([]networking.Peer{{PodCIDR: cidr1, NodeIP: at(200, 4)}, {PodCIDR: cidr2, NodeIP: netip.MustParseAddr("203.0.113.7")}})
	if err == nil {
		t.Error("a route via an unreachable node IP worked")
	}
	check(map[netip.Prefix]netip.Addr{cidr1: at(200, 4)})
	if err := n.SyncRoutes(nil); err != nil {
		t.Fatal(err)
	}
	check(map[netip.Prefix]netip.Addr{})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  networking.Config
		want string
	}{
		{networking.Config{PodCIDR: netip.MustParsePrefix("10.1.0.0/24")}, "not inside the cluster CIDR"},
		{networking.Config{ClusterCIDR: netip.MustParsePrefix("fd00::/48")}, "not an IPv4 range"},
		{networking.Config{PodCIDR: netip.MustParsePrefix("10.42.0.0/31")}, "4 addresses or more"},
		{networking.Config{BridgeName: "a-name-that-is-too-long"}, "not a valid interface name"},
		{networking.Config{RouteProtocol: 300}, "route protocol"},
		{networking.Config{PluginDirs: []string{t.TempDir()}}, "the CNI plugins portmap are in none of"},
		{networking.Config{PluginDirs: []string{t.TempDir()}, MachineBridge: true}, "the CNI plugins bridge, host-local, portmap are in none of"},
	} {
		_, err := networking.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
