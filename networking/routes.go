package networking

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Peer is another node of the cluster: its pods' range and the address
// this node reaches it at (its InternalIP).
type Peer struct {
	PodCIDR netip.Prefix
	NodeIP  netip.Addr
}

// SyncRoutes makes the main routing table hold one route per peer, to its
// pod CIDR via its node IP (the "host-gw" way: the nodes share a link,
// so no encapsulation), and no other route of labctl's. labctl's routes
// carry RouteProtocol (`ip route show proto 108`); routes of any other
// protocol are never changed or removed. Peers that are invalid, not
// IPv4, or overlap this node's own pod CIDR are skipped. It goes on past
// a failing route and returns every failure.
func (n *Network) SyncRoutes(peers []Peer) error {
	want := map[netip.Prefix]netip.Addr{}
	var errs []error
	for _, p := range peers {
		cidr := p.PodCIDR.Masked()
		switch {
		case !cidr.IsValid() || !cidr.Addr().Is4() || !p.NodeIP.Unmap().Is4():
			errs = append(errs, fmt.Errorf("networking: route to %s via %s: not IPv4", p.PodCIDR, p.NodeIP))
			continue
		case n.cfg.PodCIDR.IsValid() && cidr.Overlaps(n.cfg.PodCIDR):
			continue
		}
		want[cidr] = p.NodeIP.Unmap()
	}
	have, err := n.ownRoutes()
	if err != nil {
		return fmt.Errorf("networking: listing routes: %w", err)
	}
	for _, r := range have {
		dst, _ := addrPrefix(r.Dst)
		gw, _ := netip.AddrFromSlice(r.Gw)
		if w, ok := want[dst]; ok {
			if w == gw.Unmap() {
				delete(want, dst) // already right
			}
			continue // else replaced below
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("networking: removing the route to %s: %w", dst, err))
		}
	}
	for dst, gw := range want {
		r := &netlink.Route{
			Dst:      &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)},
			Gw:       gw.AsSlice(),
			Protocol: netlink.RouteProtocol(n.cfg.RouteProtocol),
			Table:    unix.RT_TABLE_MAIN,
		}
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("networking: route to %s via %s: %w", dst, gw, err))
		}
	}
	return errors.Join(errs...)
}

// ownRoutes lists the IPv4 routes in the main table with labctl's
// protocol.
func (n *Network) ownRoutes() ([]netlink.Route, error) {
	return netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: netlink.RouteProtocol(n.cfg.RouteProtocol), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
}
