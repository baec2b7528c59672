package networking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Cleanup removes the pod network of the node that cfg describes, as
// `labctl killall` does once the pods are stopped: it tears down every pod
// libcni's cache still records (their interfaces, host ports and
// addresses), then removes labctl's nftables table, its routes, the
// bridge, every network namespace under RunDir/netns and that directory,
// and the IPAM and cache directories under DataDir. It goes on past
// failures and returns them all; a second call finds nothing to do.
//
// portmap also adds chains to the nat table once per machine
// (CNI-HOSTPORT-DNAT, -SETMARK, -MASQ, with jumps from the nat table's
// base chains) that any CNI user on the machine shares: Cleanup removes
// them when no pod has a host port left in them (portmap makes them again
// on its next use), and the nat table too if nothing is left in it. It
// leaves net.ipv4.ip_forward as it is.
func Cleanup(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return err
	}
	var errs []error
	n := newNetwork(cfg)
	if findPlugins(cfg.PluginDirs, cfg.plugins()) == nil {
		atts, err := n.cni.GetCachedAttachments("")
		if err != nil {
			errs = append(errs, fmt.Errorf("networking: reading libcni's cache: %w", err))
		}
		for _, a := range atts {
			if a.Network != NetworkName {
				continue
			}
			if err := n.Teardown(ctx, a.ContainerID, a.NetNS); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := removeIdlePortmapChains(); err != nil {
		errs = append(errs, fmt.Errorf("networking: removing portmap's chains: %w", err))
	}
	if err := deleteTable(cfg.Table); err != nil {
		errs = append(errs, fmt.Errorf("networking: removing the nftables table inet %s: %w", cfg.Table, err))
	}
	if err := n.SyncRoutes(nil); err != nil {
		errs = append(errs, err)
	}
	if link, err := netlink.LinkByName(cfg.BridgeName); err == nil {
		if _, ok := link.(*netlink.Bridge); ok {
			if err := netlink.LinkDel(link); err != nil {
				errs = append(errs, fmt.Errorf("networking: removing the bridge %s: %w", cfg.BridgeName, err))
			}
		}
	}
	if entries, err := os.ReadDir(n.netnsDir()); err == nil {
		for _, e := range entries {
			if err := RemoveNetNS(filepath.Join(n.netnsDir(), e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, dir := range []string{n.netnsDir(), n.ipamDir(), n.cacheDir()} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("networking: %w", err))
		}
	}
	// DataDir itself goes if nothing else is in it.
	if err := os.Remove(cfg.DataDir); err != nil && !errors.Is(err, os.ErrNotExist) && !isNotEmpty(err) {
		errs = append(errs, fmt.Errorf("networking: %w", err))
	}
	return errors.Join(errs...)
}

func isNotEmpty(err error) bool { return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) }

// Cleanup is Cleanup(ctx, n.Config()); a later Setup sets the host up
// again.
func (n *Network) Cleanup(ctx context.Context) error {
	n.hostMu.Lock()
	n.hostDone = false
	n.hostMu.Unlock()
	return Cleanup(ctx, n.cfg)
}

// removeIdlePortmapChains removes portmap's shared chains from the ip and
// ip6 nat tables (where iptables-nft keeps them) when CNI-HOSTPORT-DNAT
// holds no pod's rules, and then the nat table if it holds no rule at all.
func removeIdlePortmapChains() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	var errs []error
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		tables, err := c.ListTablesOfFamily(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var nat *nftables.Table
		for _, t := range tables {
			if t.Name == "nat" {
				nat = t
			}
		}
		if nat == nil {
			continue
		}
		chains, err := c.ListChainsOfTableFamily(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules := map[*nftables.Chain][]*nftables.Rule{}
		var portmap []*nftables.Chain
		inUse := false
		for _, ch := range chains {
			if ch.Table.Name != "nat" {
				continue
			}
			rs, err := c.GetRules(nat, ch)
			if err != nil {
				errs = append(errs, err)
				inUse = true // unsure: keep everything
				continue
			}
			rules[ch] = rs
			if strings.HasPrefix(ch.Name, "CNI-HOSTPORT-") {
				portmap = append(portmap, ch)
				inUse = inUse || (ch.Name == "CNI-HOSTPORT-DNAT" && len(rs) > 0)
			}
		}
		if inUse {
			continue
		}
		left := 0
		for ch, rs := range rules {
			if strings.HasPrefix(ch.Name, "CNI-HOSTPORT-") {
				continue
			}
			for _, r := range rs {
				if jumpsToPortmap(r) {
					if err := c.DelRule(r); err != nil {
						errs = append(errs, err)
					}
				} else {
					left++
				}
			}
		}
		for _, ch := range portmap {
			c.FlushChain(ch)
			c.DelChain(ch)
		}
		if left == 0 && (len(portmap) > 0 || len(rules) == 0) {
			c.DelTable(nat)
		}
		if err := c.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s nat: %w", familyName(fam), err))
		}
	}
	return errors.Join(errs...)
}

func jumpsToPortmap(r *nftables.Rule) bool {
	for _, e := range r.Exprs {
		if v, ok := e.(*expr.Verdict); ok && (v.Kind == expr.VerdictJump || v.Kind == expr.VerdictGoto) &&
			strings.HasPrefix(v.Chain, "CNI-HOSTPORT-") {
			return true
		}
	}
	return false
}

func familyName(f nftables.TableFamily) string {
	if f == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}
