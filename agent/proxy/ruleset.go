package proxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A ruleset is the proxy's table as it should be: what the rule
// computation (rules.go) produces from the Services and EndpointSlices,
// and what apply (apply.go) makes of the kernel's table. It holds the
// regular chains and the contents of the sets and maps; the base chains
// and the sets' definitions are fixed (baseChains, fixedSets).
//
// Rules are lists of terms, each one nft statement or match; a rule's
// text (String) is what `nft list` prints for it, near enough, and is how
// two rulesets are compared: a chain is rewritten when its text changes.
type ruleset struct {
	// chains: regular chain → its rules, in order.
	chains map[string][]rule
	// maps: verdict map → key → verdict.
	maps map[string]map[element]mapValue
	// sets: address set → its addresses.
	sets map[string]map[element]struct{}
	// affinity: the sessionAffinity sets (one per endpoint of a
	// ClientIP service) → their timeout.
	affinity map[string]time.Duration
}

func newRuleset() *ruleset {
	rs := &ruleset{
		chains:   map[string][]rule{},
		maps:     map[string]map[element]mapValue{},
		sets:     map[string]map[element]struct{}{},
		affinity: map[string]time.Duration{},
	}
	for _, s := range fixedSets {
		if s.isMap {
			rs.maps[s.name] = map[element]mapValue{}
		} else {
			rs.sets[s.name] = map[element]struct{}{}
		}
	}
	return rs
}

// chainText is the text a chain is compared by.
func chainText(rules []rule) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// dump prints the ruleset in nft's syntax, sorted: for tests and
// debugging.
func (rs *ruleset) dump() string {
	var b strings.Builder
	for _, name := range sortedKeys(rs.sets) {
		fmt.Fprintf(&b, "set %s {", name)
		for _, e := range sortedElements(rs.sets[name]) {
			fmt.Fprintf(&b, " %s", e)
		}
		b.WriteString(" }\n")
	}
	for _, name := range sortedKeys(rs.maps) {
		fmt.Fprintf(&b, "map %s {\n", name)
		m := rs.maps[name]
		for _, e := range sortedElements(m) {
			fmt.Fprintf(&b, "\t%s : %s\n", e, m[e].verdict)
		}
		b.WriteString("}\n")
	}
	for _, name := range sortedKeys(rs.affinity) {
		fmt.Fprintf(&b, "set %s { timeout %s }\n", name, rs.affinity[name])
	}
	for _, name := range sortedKeys(rs.chains) {
		fmt.Fprintf(&b, "chain %s {\n", name)
		for _, r := range rs.chains[name] {
			fmt.Fprintf(&b, "\t%s\n", r)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedElements[V any](m map[element]V) []element {
	es := make([]element, 0, len(m))
	for e := range m {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].less(es[j]) })
	return es
}

// An element is the key of a set or map element: an address (sets), an
// address, protocol and port (service-ips and no-endpoint-services), or a
// protocol and port (the node port maps).
type element struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

func (e element) String() string {
	var parts []string
	if e.addr.IsValid() {
		parts = append(parts, e.addr.String())
	}
	if e.proto != 0 {
		parts = append(parts, protoName(e.proto), strconv.Itoa(int(e.port)))
	}
	return strings.Join(parts, " . ")
}

func (e element) less(o element) bool {
	if c := e.addr.Compare(o.addr); c != 0 {
		return c < 0
	}
	if e.proto != o.proto {
		return e.proto < o.proto
	}
	return e.port < o.port
}

// key is the element's key as the kernel stores it: each part of a
// concatenation padded to four bytes, in network order.
func (e element) key() []byte {
	var b []byte
	if e.addr.IsValid() {
		b = append(b, e.addr.AsSlice()...)
	}
	if e.proto != 0 {
		b = append(b, e.proto, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, e.port)
		b = append(b, 0, 0)
	}
	return b
}

// A mapValue is what a verdict map element holds: the verdict, and a
// comment (the service port) that `nft list` shows.
type mapValue struct {
	verdict verdict
	comment string
}

// Protocols, as in the IP header.
const (
	protoTCP  = unix.IPPROTO_TCP
	protoUDP  = unix.IPPROTO_UDP
	protoSCTP = unix.IPPROTO_SCTP
)

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// A rule is a list of terms, matched left to right.
type rule []term

func (r rule) String() string {
	parts := make([]string, len(r))
	for i, t := range r {
		parts[i] = t.String()
	}
	return strings.Join(parts, " ")
}

// A term is one match or statement of a rule: its text as nft prints it,
// and its expressions for the kernel.
type term interface {
	String() string
	exprs() []expr.Any
}

// Registers: 0 is the verdict, 1 the first 16-byte data register; a
// concatenation is loaded as nft does, its first part into register 1
// and the next ones into the 4-byte registers that follow it, 9 and 10
// (NFT_REG32_01 and _02).
const (
	regVerdict = 0
	reg1       = 1
	reg9       = 9
	reg10      = 10
)

// Offsets in the IPv4 header.
const (
	offSaddr = 12
	offDaddr = 16
)

// masqMark is the packet mark bit that sends a connection through
// masquerading, kube-proxy's (its --masquerade-bit 14).
const masqMark uint32 = 0x4000

func native32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// ctNew: `ct state new`.
type ctNew struct{}

func (ctNew) String() string { return "ct state new" }
func (ctNew) exprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: native32(0)},
	}
}

// addrMatch: `ip saddr 10.0.0.1`, `ip saddr != 10.42.0.0/16`.
type addrMatch struct {
	daddr  bool
	prefix netip.Prefix
	not    bool
}

func (m addrMatch) String() string {
	s := "ip saddr "
	if m.daddr {
		s = "ip daddr "
	}
	if m.not {
		s += "!= "
	}
	if m.prefix.IsSingleIP() {
		return s + m.prefix.Addr().String()
	}
	return s + m.prefix.String()
}

func (m addrMatch) exprs() []expr.Any {
	off := uint32(offSaddr)
	if m.daddr {
		off = offDaddr
	}
	op := expr.CmpOpEq
	if m.not {
		op = expr.CmpOpNeq
	}
	es := []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}}
	if !m.prefix.IsSingleIP() {
		mask := ^uint32(0) << (32 - m.prefix.Bits())
		es = append(es, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binary.BigEndian.AppendUint32(nil, mask), Xor: make([]byte, 4)})
	}
	return append(es, &expr.Cmp{Op: op, Register: reg1, Data: m.prefix.Masked().Addr().AsSlice()})
}

func saddrIs(a netip.Addr) addrMatch   { return addrMatch{prefix: netip.PrefixFrom(a, 32)} }
func daddrIs(a netip.Addr) addrMatch   { return addrMatch{daddr: true, prefix: netip.PrefixFrom(a, 32)} }
func saddrIn(p netip.Prefix) addrMatch { return addrMatch{prefix: p} }
func daddrIn(p netip.Prefix) addrMatch { return addrMatch{daddr: true, prefix: p} }
func saddrNotIn(p netip.Prefix) addrMatch {
	return addrMatch{prefix: p, not: true}
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// l4proto: `meta l4proto tcp`.
type l4proto uint8

func (p l4proto) String() string { return "meta l4proto " + protoName(uint8(p)) }
func (p l4proto) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{uint8(p)}},
	}
}

// dport: `tcp dport 80`.
type dport struct {
	proto uint8
	port  uint16
}

func (d dport) String() string { return fmt.Sprintf("%s dport %d", protoName(d.proto), d.port) }
func (d dport) exprs() []expr.Any {
	return append(l4proto(d.proto).exprs(),
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binary.BigEndian.AppendUint16(nil, d.port)})
}

// inSet: `ip daddr @cluster-ips`, `ip saddr @affinity-...`.
type inSet struct {
	daddr bool
	set   string
}

func (s inSet) String() string {
	if s.daddr {
		return "ip daddr @" + s.set
	}
	return "ip saddr @" + s.set
}

func (s inSet) exprs() []expr.Any {
	off := uint32(offSaddr)
	if s.daddr {
		off = offDaddr
	}
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Lookup{SourceRegister: reg1, SetName: s.set},
	}
}

// fibLocal: `fib daddr type local`, `fib saddr type local`.
type fibLocal struct{ daddr bool }

func (f fibLocal) String() string {
	if f.daddr {
		return "fib daddr type local"
	}
	return "fib saddr type local"
}

func (f fibLocal) exprs() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, ResultADDRTYPE: true, FlagDADDR: f.daddr, FlagSADDR: !f.daddr},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: native32(unix.RTN_LOCAL)},
	}
}

// vmapAddrPort: `ip daddr . meta l4proto . th dport vmap @map`.
type vmapAddrPort struct{ mapName string }

func (v vmapAddrPort) String() string {
	return "ip daddr . meta l4proto . th dport vmap @" + v.mapName
}

func (v vmapAddrPort) exprs() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg9},
		&expr.Payload{DestRegister: reg10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: v.mapName, DestRegister: regVerdict, IsDestRegSet: true},
	}
}

// vmapPort: `meta l4proto . th dport vmap @map`.
type vmapPort struct{ mapName string }

func (v vmapPort) String() string { return "meta l4proto . th dport vmap @" + v.mapName }
func (v vmapPort) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
		&expr.Payload{DestRegister: reg9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg1, SetName: v.mapName, DestRegister: regVerdict, IsDestRegSet: true},
	}
}

// numgenZero: `numgen random mod 3 0`, true once in n times. A service
// port's rules pick an endpoint with a run of them, as iptables mode's
// statistic matches do: the first with one chance in n, the next in n-1,
// ..., the last for sure, so each endpoint gets 1/n of the connections.
// (kube-proxy's nftables mode uses one rule, `numgen random mod n vmap
// {...}`, but each such anonymous map costs the kernel a walk of the
// whole transaction when it is bound: with a thousand services a full sync
// took seconds.)
type numgenZero uint32

func (n numgenZero) String() string { return fmt.Sprintf("numgen random mod %d 0", uint32(n)) }
func (n numgenZero) exprs() []expr.Any {
	return []expr.Any{
		&expr.Numgen{Register: reg1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: native32(0)},
	}
}

// updateSaddr: `update @set { ip saddr }`, recording (or refreshing) the
// client in a sessionAffinity set.
type updateSaddr struct{ set string }

func (u updateSaddr) String() string { return "update @" + u.set + " { ip saddr }" }
func (u updateSaddr) exprs() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offSaddr, Len: 4},
		&expr.Dynset{SrcRegKey: reg1, SetName: u.set, Operation: unix.NFT_DYNSET_OP_UPDATE},
	}
}

// markMasq: `meta mark set meta mark | 0x00004000`.
type markMasq struct{}

func (markMasq) String() string { return fmt.Sprintf("meta mark set meta mark | 0x%08x", masqMark) }
func (markMasq) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(^masqMark), Xor: native32(masqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// markUnset: `meta mark & 0x00004000 == 0x00000000`.
type markUnset struct{}

func (markUnset) String() string {
	return fmt.Sprintf("meta mark & 0x%08x == 0x00000000", masqMark)
}
func (markUnset) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(masqMark), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: native32(0)},
	}
}

// markClear: `meta mark set meta mark ^ 0x00004000` (the bit is set when
// this runs).
type markClear struct{}

func (markClear) String() string { return fmt.Sprintf("meta mark set meta mark ^ 0x%08x", masqMark) }
func (markClear) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg1},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: native32(^uint32(0)), Xor: native32(masqMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	}
}

// masquerade: `masquerade fully-random`.
type masquerade struct{}

func (masquerade) String() string { return "masquerade fully-random" }
func (masquerade) exprs() []expr.Any {
	return []expr.Any{&expr.Masq{FullyRandom: true}}
}

// dnat: `dnat to 10.42.0.5:8080` (after an l4proto match).
type dnat struct {
	addr netip.Addr
	port uint16
}

func (d dnat) String() string { return "dnat to " + netip.AddrPortFrom(d.addr, d.port).String() }
func (d dnat) exprs() []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: d.addr.AsSlice()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, d.port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegAddrMax: 1, RegProtoMin: 2, RegProtoMax: 2, Specified: true},
	}
}

// reject: `reject with tcp reset` or `reject` (ICMP port unreachable).
type reject struct{ tcpReset bool }

func (r reject) String() string {
	if r.tcpReset {
		return "reject with tcp reset"
	}
	return "reject"
}

func (r reject) exprs() []expr.Any {
	if r.tcpReset {
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
	}
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: icmpPortUnreachable}}
}

// comment: `comment "text"`, which nft shows at the end of the rule. It
// is no expression: the rule carries it as its user data.
type comment string

func (c comment) String() string  { return "comment " + strconv.Quote(string(c)) }
func (comment) exprs() []expr.Any { return nil }

// verdict: `jump c`, `goto c`, `drop`, `return`, `accept`. It is also
// the value of a verdict map element.
type verdict struct {
	kind  expr.VerdictKind
	chain string
}

func jumpTo(c string) verdict { return verdict{kind: expr.VerdictJump, chain: c} }
func goTo(c string) verdict   { return verdict{kind: expr.VerdictGoto, chain: c} }

var (
	verdictDrop   = verdict{kind: expr.VerdictDrop}
	verdictReturn = verdict{kind: expr.VerdictReturn}
)

func (v verdict) String() string {
	switch v.kind {
	case expr.VerdictJump:
		return "jump " + v.chain
	case expr.VerdictGoto:
		return "goto " + v.chain
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictAccept:
		return "accept"
	}
	return fmt.Sprintf("verdict %d", v.kind)
}

func (v verdict) exprs() []expr.Any   { return []expr.Any{v.expr()} }
func (v verdict) expr() *expr.Verdict { return &expr.Verdict{Kind: v.kind, Chain: v.chain} }

// icmpPortUnreachable is ICMP destination unreachable's code 3.
const icmpPortUnreachable = 3
