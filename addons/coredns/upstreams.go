package coredns

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// resolvedResolvConf is where systemd-resolved lists the servers it
// forwards to.
const resolvedResolvConf = "/run/systemd/resolve/resolv.conf"

// resolvedStubs are systemd-resolved's stub resolvers, which
// /etc/resolv.conf names when the host resolves through it.
var resolvedStubs = []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("127.0.0.54")}

// upstreamSet is where CoreDNS forwards names outside the cluster.
type upstreamSet struct {
	servers []netip.Addr // in resolv.conf order
	from    string       // the file they were read from
	dropped []netip.Addr // servers left out: CoreDNS itself
}

// readUpstreams reads the nameservers of resolvConf. When it names only
// systemd-resolved's stub, the servers in systemdConf replace it (when
// that file exists and names others), as the kubelet and k3s do for a
// CoreDNS pod, whose 127.0.0.53 would be the pod itself. Servers in self
// (the cluster DNS address and the node IP CoreDNS listens on) are left
// out: forwarding to them would be a loop.
func readUpstreams(resolvConf, systemdConf string, self []netip.Addr) (upstreamSet, error) {
	servers, err := nameservers(resolvConf)
	if err != nil {
		return upstreamSet{}, err
	}
	set := upstreamSet{servers: servers, from: resolvConf}
	if len(servers) > 0 && !slices.ContainsFunc(servers, func(a netip.Addr) bool { return !slices.Contains(resolvedStubs, a) }) {
		if alt, err := nameservers(systemdConf); err == nil && len(alt) > 0 {
			set = upstreamSet{servers: alt, from: systemdConf}
		}
	}
	set.servers = slices.DeleteFunc(set.servers, func(a netip.Addr) bool {
		if slices.Contains(self, a.WithZone("")) {
			set.dropped = append(set.dropped, a)
			return true
		}
		return false
	})
	return set, nil
}

// nameservers lists the nameserver addresses of a resolv.conf file, in
// order, skipping what is not an address.
func nameservers(path string) ([]netip.Addr, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the upstream resolvers: %w", err)
	}
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out, sc.Err()
}
