package networking

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetupHost prepares the node for pods, and repairs what has drifted; it
// is idempotent and cheap, so the agent may call it at start and again
// from time to time:
//   - net.ipv4.ip_forward = 1 (these machines boot with 0);
//   - the bridge, up, with the pod CIDR's first address (the bridge
//     plugin would make it on the first pod; making it here lets the
//     netfilter setting below apply before any pod), and bridged traffic
//     through iptables/nftables on it (its bridge/nf_call_iptables, the
//     per-bridge form of net.bridge.bridge-nf-call-iptables), so that
//     Service rules see traffic between pods on this node;
//   - labctl's nftables table (inet <Table>), rebuilt atomically: accept
//     forwarded traffic from or to the cluster CIDR, and masquerade
//     traffic from the cluster CIDR to anywhere outside it.
func (n *Network) SetupHost() error {
	if !n.cfg.PodCIDR.IsValid() {
		return errors.New("networking: no pod CIDR configured")
	}
	if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("networking: enabling IP forwarding: %w", err)
	}
	if err := n.ensureBridge(); err != nil {
		return fmt.Errorf("networking: bridge %s: %w", n.cfg.BridgeName, err)
	}
	if err := writeSysctl(filepath.Join("/sys/class/net", n.cfg.BridgeName, "bridge/nf_call_iptables"), "1"); err != nil {
		return fmt.Errorf("networking: bridge netfilter on %s: %w", n.cfg.BridgeName, err)
	}
	if err := n.ensureTable(); err != nil {
		return fmt.Errorf("networking: nftables table inet %s: %w", n.cfg.Table, err)
	}
	return nil
}

// ensureHost runs SetupHost until it has succeeded once.
func (n *Network) ensureHost() error {
	n.hostMu.Lock()
	defer n.hostMu.Unlock()
	if n.hostDone {
		return nil
	}
	if err := n.SetupHost(); err != nil {
		return err
	}
	n.hostDone = true
	return nil
}

// writeSysctl writes value to a /proc/sys or /sys file unless it holds it.
func writeSysctl(path, value string) error {
	if b, err := os.ReadFile(path); err == nil && string(bytes.TrimSpace(b)) == value {
		return nil
	}
	return os.WriteFile(path, []byte(value+"\n"), 0o644)
}

func (n *Network) ensureBridge() error {
	name := n.cfg.BridgeName
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = name, n.cfg.MTU
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return err
		}
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is a %s, not a bridge", name, link.Type())
	}
	gw := netip.PrefixFrom(n.Gateway(), n.cfg.PodCIDR.Bits())
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		p, ok := addrPrefix(a.IPNet)
		if ok && p == gw {
			have = true
			continue
		}
		// An address from an earlier pod CIDR: the bridge plugin refuses
		// a bridge with another IPv4 address, and the old pods are gone.
		if err := netlink.AddrDel(link, &a); err != nil {
			return err
		}
	}
	if !have {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.Addr().AsSlice(), Mask: net.CIDRMask(gw.Bits(), 32)}}
		if err := netlink.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return netlink.LinkSetUp(link)
	}
	return nil
}

func addrPrefix(ipn *net.IPNet) (netip.Prefix, bool) {
	if ipn == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := ipn.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// The table SetupHost keeps, as `nft list table inet labctl` shows it:
//
//	table inet labctl {
//		chain forward {
//			type filter hook forward priority filter; policy accept;
//			ip saddr 10.42.0.0/16 counter accept
//			ip daddr 10.42.0.0/16 counter accept
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 ip daddr != 224.0.0.0/4 counter masquerade fully-random
//		}
//	}
//
// Masquerading is flannel's: multicast (the bridge's own IGMP reports,
// say) keeps its source, and fully random ports avoid SNAT port races.
// The forward chain accepts, and counts, the pod network's traffic; it
// cannot overrule another program's chain on the same hook that drops
// forwarded traffic (Docker's iptables FORWARD policy, say): nftables runs
// every base chain of a hook, and an accept ends only its own.

func (n *Network) ensureTable() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Name: n.cfg.Table, Family: nftables.TableFamilyINet}
	// Add, delete and add again in one transaction: the table is replaced
	// whole, whether it was there or not, and no packet sees half of it.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	cluster := n.cfg.ClusterCIDR
	rule := func(ch *nftables.Chain, e ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}
	accepted := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}
	rule(fwd, append(matchIPv4(ipSaddr, cluster, true), accepted...)...)
	rule(fwd, append(matchIPv4(ipDaddr, cluster, true), accepted...)...)
	// The later matches skip their nfproto test: the first one made it.
	masq := append(matchIPv4(ipSaddr, cluster, true), matchIPv4(ipDaddr, cluster, false)[2:]...)
	masq = append(masq, matchIPv4(ipDaddr, multicast, false)[2:]...)
	rule(post, append(masq, &expr.Counter{}, &expr.Masq{FullyRandom: true})...)
	return c.Flush()
}

var multicast = netip.MustParsePrefix("224.0.0.0/4")

// Offsets of the addresses in the IPv4 header.
const (
	ipSaddr = 12
	ipDaddr = 16
)

// matchIPv4 matches IPv4 packets whose address at offset is (in) or is
// not (!in) in p: meta nfproto ipv4, then the masked address compared.
// Its first two expressions are the nfproto match.
func matchIPv4(offset uint32, p netip.Prefix, in bool) []expr.Any {
	mask := net.CIDRMask(p.Bits(), 32)
	op := expr.CmpOpEq
	if !in {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// deleteTable removes labctl's nftables table if it is there.
func deleteTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
			return c.Flush()
		}
	}
	return nil
}
