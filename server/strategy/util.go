package strategy

import (
	"net"
	"sort"
	"strings"

	netutils "k8s.io/utils/net"
)

// parseIPSloppy parses an IP address, accepting leading zeros as upstream does.
var parseIPSloppy = netutils.ParseIPSloppy

// sortedKeys returns the keys of m in order, for errors in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// isIPv6String tells whether s is an IPv6 address.
func isIPv6String(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() == nil && strings.Contains(s, ":")
}
