package proxy

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Stale UDP conntrack entries. A UDP "connection" to a service lives in
// conntrack as long as packets keep coming, DNATed to the endpoint chosen
// for its first packet; when that endpoint goes, the client's packets
// keep going to it (a DNS client with a fixed source port: forever).
// Packets that arrived before the service had endpoints leave an entry
// that was never DNATed, with the same effect. So after each sync, for
// the UDP service ports whose serving endpoints changed, the proxy
// deletes the entries to the service's addresses and node port whose
// reply does not come from one of its serving endpoints, as kube-proxy's
// conntrack.CleanStaleEntries does. TCP needs none of this: a connection
// to a gone endpoint fails and the client reconnects.

// conntrackTable deletes conntrack entries; netlink's Handle is one.
type conntrackTable interface {
	ConntrackDeleteFilters(table netlink.ConntrackTableType, family netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (uint, error)
}

// udpService is what a UDP service port's stale entries are told by.
type udpService struct {
	dests    []netip.AddrPort // the ClusterIP, external and LoadBalancer IPs at the port
	nodePort uint16
	serving  map[netip.Addr]bool // the endpoints that may answer
}

// udpServices collects the UDP service ports, by name.
func udpServices(ports []*servicePort) map[string]*udpService {
	out := map[string]*udpService{}
	for _, sp := range ports {
		if sp.proto != protoUDP {
			continue
		}
		u := &udpService{nodePort: sp.nodePort, serving: map[netip.Addr]bool{}}
		u.dests = append(u.dests, netip.AddrPortFrom(sp.clusterIP, sp.port))
		for _, a := range sp.externalAddrs() {
			u.dests = append(u.dests, netip.AddrPortFrom(a, sp.port))
		}
		for _, ep := range sp.endpoints {
			// Traffic policies and topology do not matter: a flow to an
			// endpoint that still serves goes on, as a TCP one would.
			if ep.serving {
				u.serving[ep.addr] = true
			}
		}
		out[sp.name] = u
	}
	return out
}

func sameServing(a, b *udpService) bool {
	if len(a.serving) != len(b.serving) || a.nodePort != b.nodePort || len(a.dests) != len(b.dests) {
		return false
	}
	for ip := range a.serving {
		if !b.serving[ip] {
			return false
		}
	}
	for i := range a.dests {
		if a.dests[i] != b.dests[i] {
			return false
		}
	}
	return true
}

// staleFlows matches the UDP entries to delete.
type staleFlows struct {
	byDest     map[netip.AddrPort]*udpService
	byNodePort map[uint16]*udpService
	nodeIPs    map[netip.Addr]bool // nil: any local address
}

// newStaleFlows returns the filter for the service ports of now that
// changed since before (all of them when before is nil), or nil when
// none did.
func newStaleFlows(before, now map[string]*udpService, nodeIPs []netip.Addr) *staleFlows {
	f := &staleFlows{byDest: map[netip.AddrPort]*udpService{}, byNodePort: map[uint16]*udpService{}}
	for name, u := range now {
		if old, ok := before[name]; ok && sameServing(old, u) {
			continue
		}
		for _, d := range u.dests {
			f.byDest[d] = u
		}
		if u.nodePort != 0 {
			f.byNodePort[u.nodePort] = u
		}
	}
	if len(f.byDest) == 0 && len(f.byNodePort) == 0 {
		return nil
	}
	if len(nodeIPs) > 0 {
		f.nodeIPs = map[netip.Addr]bool{}
		for _, ip := range nodeIPs {
			f.nodeIPs[ip] = true
		}
	}
	return f
}

// MatchConntrackFlow implements netlink.CustomConntrackFilter.
func (f *staleFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, ok := netip.AddrFromSlice(flow.Forward.DstIP)
	if !ok {
		return false
	}
	dst = dst.Unmap()
	replySrc, ok := netip.AddrFromSlice(flow.Reverse.SrcIP)
	if !ok {
		return false
	}
	replySrc = replySrc.Unmap()
	if u, ok := f.byDest[netip.AddrPortFrom(dst, flow.Forward.DstPort)]; ok {
		return !u.serving[replySrc]
	}
	if u, ok := f.byNodePort[flow.Forward.DstPort]; ok && (f.nodeIPs == nil || f.nodeIPs[dst]) {
		return !u.serving[replySrc]
	}
	return false
}
