package coredns

import "net/netip"

// WithPorts sets Run's ports (tests listen on loopback, where 53 and 9153
// may be taken); 0 keeps the default.
func WithPorts(c Config, dnsPort, healthPort, readyPort, metricsPort int) Config {
	c.dnsPort, c.healthPort, c.readyPort, c.metricsPort = dnsPort, healthPort, readyPort, metricsPort
	return c
}

// WithResolvedConf has Run read systemd-resolved's servers from path.
func WithResolvedConf(c Config, path string) Config {
	c.resolvedConf = path
	return c
}

// WithEndpointIP has the kube-dns endpoints name ip rather than the
// loopback address tests listen on, which the API refuses there.
func WithEndpointIP(c Config, ip netip.Addr) Config {
	c.endpointIP = ip
	return c
}
