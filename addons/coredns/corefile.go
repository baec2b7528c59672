package coredns

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// corefileParams is what the default Corefile and the adaptation of a
// ConfigMap's Corefile are made from.
type corefileParams struct {
	listen                netip.Addr
	dnsPort               int
	healthPort, readyPort int
	metricsPort           int
	domain                string
	kubeconfig            string
	upstreams             []netip.Addr // where names outside the cluster go
	clusterDNS            netip.Addr
}

// defaultCorefile is upstream's Corefile (kubeadm's) as it runs
// inside labctl: on the node IP only, with the add-on's kubeconfig, health
// and readiness on their own ports, and the host's upstream resolvers.
func defaultCorefile(p corefileParams) string {
	hp := func(port int) string { return netip.AddrPortFrom(p.listen, uint16(port)).String() }
	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", p.dnsPort)
	fmt.Fprintf(&b, "    bind %s\n", p.listen)
	b.WriteString("    errors\n")
	fmt.Fprintf(&b, "    health %s\n", hp(p.healthPort))
	fmt.Fprintf(&b, "    ready %s\n", hp(p.readyPort))
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n", p.domain)
	fmt.Fprintf(&b, "        kubeconfig %s\n", quoteToken(p.kubeconfig))
	b.WriteString("        pods insecure\n")
	b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	b.WriteString("        ttl 30\n")
	b.WriteString("    }\n")
	fmt.Fprintf(&b, "    prometheus %s\n", hp(p.metricsPort))
	if len(p.upstreams) > 0 {
		fmt.Fprintf(&b, "    forward . %s {\n", joinAddrs(p.upstreams))
		b.WriteString("        max_concurrent 1000\n")
		b.WriteString("    }\n")
	}
	// Not the cluster's own answers: the kubernetes plugin answers from
	// memory, and a name asked for before its Service existed would
	// stay unknown for 30 s (kubeadm's Corefile does the same).
	fmt.Fprintf(&b, "    cache 30 {\n        disable success %s\n        disable denial %s\n    }\n", p.domain, p.domain)
	b.WriteString("    loop\n")
	b.WriteString("    reload\n")
	b.WriteString("    loadbalance\n")
	b.WriteString("}\n")
	return b.String()
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// quoteToken writes s so that caddy's lexer reads it back as one token.
func quoteToken(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\"#{}") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// adaptCorefile makes a Corefile written for a CoreDNS pod (upstream's,
// k3s's, a tutorial's) run inside labctl on the host, where three things
// differ from a pod, and changes nothing else:
//
//   - A server block without bind would listen on every address of the
//     host rather than of a pod: it gets `bind <node IP>`, the address the
//     kube-dns endpoints name.
//   - The kubernetes plugin finds no in-cluster service account: a block
//     with neither kubeconfig nor endpoint gets the add-on's kubeconfig.
//   - forward's /etc/resolv.conf means, in the pod, the node's upstream
//     resolvers (the kubelet's resolv.conf, never systemd-resolved's stub):
//     it becomes the same upstreams as the default Corefile's.
//
// The additions go on the line of the opening brace, so the line numbers
// in CoreDNS's messages still match the ConfigMap's text. It refuses a
// forward back to CoreDNS itself (ClusterDNS, or the node IP at its DNS
// port): CoreDNS's loop plugin would end the whole labctl process.
func adaptCorefile(src string, p corefileParams) (string, error) {
	toks := lexCorefile(src)
	var edits []edit
	i := 0
	for i < len(toks) {
		// A server block: keys up to "{", directives, the matching "}".
		start := i
		for i < len(toks) && !toks[i].is("{") {
			i++
		}
		keys := toks[start:i]
		if i == len(toks) {
			// caddy allows one server block without braces: its keys on
			// the first line, its directives on the following ones.
			body := toks[start:]
			n := 0
			for n < len(body) && body[n].line == body[0].line {
				n++
			}
			e, err := adaptBlock(body[:n], body[n:], nil, p)
			if err != nil {
				return "", err
			}
			edits = append(edits, e...)
			break
		}
		open := i
		close := matchingBrace(toks, open)
		if close < 0 {
			return "", fmt.Errorf("Corefile line %d: the block opened here is never closed", toks[open].line)
		}
		i = close + 1
		if len(keys) > 0 && strings.HasPrefix(keys[0].text, "(") && strings.HasSuffix(keys[len(keys)-1].text, ")") {
			continue // a snippet: left as written, like imported files
		}
		e, err := adaptBlock(keys, toks[open+1:close], &toks[open], p)
		if err != nil {
			return "", err
		}
		edits = append(edits, e...)
	}
	return applyEdits(src, edits), nil
}

// adaptBlock adapts one server block's directives (body); open is its "{"
// token, nil for a block without braces.
func adaptBlock(keys, body []token, open *token, p corefileParams) ([]edit, error) {
	var edits []edit
	hasBind := false
	dirs := splitDirectives(body)
	for _, d := range dirs {
		switch d[0].text {
		case "bind":
			hasBind = true
		case "kubernetes":
			edits = append(edits, kubeconfigEdit(d, p.kubeconfig)...)
		case "forward":
			e, err := forwardEdits(d, p)
			if err != nil {
				return nil, err
			}
			edits = append(edits, e...)
		}
	}
	if !hasBind && len(keys) > 0 {
		bind := "bind " + p.listen.String()
		switch {
		case open != nil:
			edits = append(edits, edit{at: open.end, text: " " + bind})
		case len(dirs) > 0:
			edits = append(edits, edit{at: dirs[0][0].start, text: bind + "\n"})
		default:
			edits = append(edits, edit{at: keys[len(keys)-1].end, text: "\n" + bind})
		}
	}
	return edits, nil
}

// kubeconfigEdit gives a kubernetes directive the add-on's kubeconfig
// unless it says how to reach the API itself.
func kubeconfigEdit(d []token, kubeconfig string) []edit {
	line := "kubeconfig " + quoteToken(kubeconfig)
	brace := -1
	for i, t := range d[1:] {
		if t.line != d[0].line {
			break
		}
		if t.is("{") {
			brace = i + 1
			break
		}
	}
	if brace < 0 {
		last := d[len(d)-1]
		return []edit{{at: last.end, text: " {\n" + line + "\n}"}}
	}
	inner := d[brace+1:]
	for _, sub := range splitDirectives(inner) {
		if sub[0].is("kubeconfig") || sub[0].is("endpoint") {
			return nil
		}
	}
	return []edit{{at: d[brace].end, text: " " + line}}
}

// forwardEdits replaces /etc/resolv.conf among forward's destinations by
// the upstreams, and refuses destinations that are CoreDNS itself.
func forwardEdits(d []token, p corefileParams) ([]edit, error) {
	var edits []edit
	for i, t := range d {
		if i < 2 {
			continue // "forward" and the zone it forwards
		}
		if t.line != d[0].line || t.is("{") {
			break
		}
		if t.text == "/etc/resolv.conf" && len(p.upstreams) > 0 {
			edits = append(edits, edit{at: t.start, del: t.end - t.start, text: joinAddrs(p.upstreams)})
			continue
		}
		if ap, ok := dnsDestination(t.text); ok {
			self := ap.Addr() == p.clusterDNS && ap.Port() == 53 ||
				ap.Addr() == p.listen && int(ap.Port()) == p.dnsPort
			if self {
				return nil, fmt.Errorf("Corefile line %d: forward to %s sends queries back to this CoreDNS, a loop that stops labctl (CoreDNS's loop plugin exits the process); forward to the host's resolvers instead, e.g. forward . /etc/resolv.conf", t.line, t.text)
			}
		}
	}
	return edits, nil
}

// dnsDestination reads a forward destination that is plain DNS: an
// address, with an optional port (default 53) and dns:// scheme.
func dnsDestination(s string) (netip.AddrPort, bool) {
	s = strings.TrimPrefix(s, "dns://")
	if strings.Contains(s, "://") {
		return netip.AddrPort{}, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53), true
	}
	return netip.AddrPort{}, false
}

// splitDirectives cuts a block's tokens into directives: each starts on
// a new line, outside any nested block.
func splitDirectives(body []token) [][]token {
	var out [][]token
	depth := 0
	for i, t := range body {
		if i == 0 || depth == 0 && t.line > body[i-1].endLine {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
		switch {
		case t.is("{"):
			depth++
		case t.is("}") && depth > 0:
			depth--
		}
	}
	return out
}

// matchingBrace returns the index of the "}" closing the "{" at open, or -1.
func matchingBrace(toks []token, open int) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		switch {
		case toks[i].is("{"):
			depth++
		case toks[i].is("}"):
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// An edit deletes del bytes at offset at and inserts text there.
type edit struct {
	at, del int
	text    string
}

func applyEdits(src string, edits []edit) string {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	var b strings.Builder
	pos := 0
	for _, e := range edits {
		b.WriteString(src[pos:e.at])
		b.WriteString(e.text)
		pos = e.at + e.del
	}
	b.WriteString(src[pos:])
	return b.String()
}

// A token is one word of a Corefile as caddy's lexer reads it, with where
// it is in the source.
type token struct {
	text          string
	line, endLine int // the lines it starts and ends on (a quoted token may span lines)
	start, end    int // its bytes in the source, quotes included
	quoted        bool
}

// is reports whether t is the word s. Quoted or not, as for caddy,
// whose tokens do not say.
func (t token) is(s string) bool { return t.text == s }

// lexCorefile splits a Corefile into tokens by the rules of caddy's lexer:
// words separated by white space; a word that starts with a double quote
// runs to the closing one (\" escapes a quote, nothing else is escaped);
// "#" starts a comment that ends with the line, or, inside a word, ends
// the word and what follows it up to the next space.
func lexCorefile(src string) []token {
	var toks []token
	line := 1
	i := 0
	if strings.HasPrefix(src, "\uFEFF") {
		i = len("\uFEFF")
	}
	for i < len(src) {
		r, size := utf8.DecodeRuneInString(src[i:])
		switch {
		case r == '\n':
			line++
			i += size
		case unicode.IsSpace(r):
			i += size
		case r == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case r == '"':
			t := token{line: line, start: i, quoted: true}
			i += size
			var b strings.Builder
			escaped := false
			for i < len(src) {
				r, size = utf8.DecodeRuneInString(src[i:])
				i += size
				if !escaped && r == '\\' {
					escaped = true
					continue
				}
				if !escaped && r == '"' {
					break
				}
				if r == '\n' {
					line++
				}
				if escaped && r != '"' {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
				escaped = false
			}
			t.text, t.end, t.endLine = b.String(), i, line
			toks = append(toks, t)
		default:
			t := token{line: line, endLine: line, start: i}
			for i < len(src) {
				r, size = utf8.DecodeRuneInString(src[i:])
				if unicode.IsSpace(r) || r == '#' {
					break
				}
				i += size
			}
			t.text, t.end = src[t.start:i], i
			toks = append(toks, t)
			// A "#" inside a word hides the rest of the word.
			for i < len(src) && src[i] == '#' {
				for i < len(src) {
					r, size = utf8.DecodeRuneInString(src[i:])
					if unicode.IsSpace(r) {
						break
					}
					i += size
				}
			}
		}
	}
	return toks
}
