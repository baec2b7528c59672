package coredns

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy/caddyfile"
	"github.com/coredns/coredns/core/dnsserver"
)

var testParams = corefileParams{
	listen: netip.MustParseAddr("192.168.5.10"), dnsPort: 53, healthPort: 40001, readyPort: 40002, metricsPort: 9153,
	domain: "cluster.local", kubeconfig: "/var/lib/labctl/server/addons.kubeconfig",
	upstreams:  []netip.Addr{netip.MustParseAddr("192.168.5.1"), netip.MustParseAddr("2001:db8::53")},
	clusterDNS: netip.MustParseAddr("10.43.0.10"),
}

// upstream's kubeadm Corefile, as tutorials show it.
const kubeadmCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

// lexerInputs are Corefiles whose tokens the lexer must read as caddy does.
var lexerInputs = []string{
	kubeadmCorefile,
	"\uFEFF.:53 {\n  forward . 1.1.1.1 # a comment { with a brace\n}\n",
	`example.org {
    template IN A example.org {
        answer "{{ .Name }} 60 IN A 192.0.2.1"
        match "^a\.example\.org\.$"
    }
    hosts {
        192.0.2.2 "quoted \"name\""
    }
    errors ab#cd ef
}`,
	"(snip) {\n  log\n}\n.:53 {\n  import snip\n  whoami\n}\n",
	"multi \"line\none\" two\n  three",
}

func TestLexMatchesCaddy(t *testing.T) {
	for _, src := range lexerInputs {
		var want []string
		d := caddyfile.NewDispenser("Corefile", strings.NewReader(src))
		for d.Next() {
			want = append(want, d.Val()+"@"+strconv.Itoa(d.Line()))
		}
		var got []string
		for _, tok := range lexCorefile(src) {
			got = append(got, tok.text+"@"+strconv.Itoa(tok.line))
			if raw := src[tok.start:tok.end]; !tok.quoted && raw != tok.text {
				t.Errorf("token %q spans %q in the source", tok.text, raw)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("tokens of\n%s\ngot  %q\nwant %q", src, got, want)
		}
	}
}

func TestAdaptCorefile(t *testing.T) {
	kc := `kubeconfig /var/lib/labctl/server/addons.kubeconfig`
	for _, tc := range []struct {
		name, in string
		// want holds substrings of the result, one line each; wantNot
		// substrings it must not hold.
		want, wantNot []string
		// sameLines: no line added, so CoreDNS's line numbers still
		// match the ConfigMap.
		sameLines bool
	}{{
		name: "kubeadm's Corefile",
		in:   kubeadmCorefile,
		want: []string{
			".:53 { bind 192.168.5.10",
			"kubernetes cluster.local in-addr.arpa ip6.arpa { " + kc,
			"forward . 192.168.5.1 2001:db8::53 {",
		},
		sameLines: true,
	}, {
		name:      "bind and kubeconfig kept",
		in:        ".:53 {\n  bind 127.0.0.1\n  kubernetes cluster.local {\n    kubeconfig /other.yaml ctx\n  }\n}\n",
		want:      []string{".:53 {\n", "kubeconfig /other.yaml ctx"},
		wantNot:   []string{"192.168.5.10", "addons.kubeconfig"},
		sameLines: true,
	}, {
		name:      "endpoint kept",
		in:        ".:53 {\n  kubernetes cluster.local {\n    endpoint https://10.0.0.1:6443\n  }\n}\n",
		wantNot:   []string{"addons.kubeconfig"},
		sameLines: true,
	}, {
		name: "kubernetes without a block",
		in:   ".:53 {\n  kubernetes cluster.local # the zone\n  forward . 9.9.9.9\n}\n",
		want: []string{"kubernetes cluster.local {\n" + kc + "\n} # the zone", "forward . 9.9.9.9"},
	}, {
		name:      "several server blocks, a snippet, quotes",
		in:        "(common) {\n  errors\n}\nexample.org:53 {\n  import common\n  hosts \"/etc/my hosts\" {\n    fallthrough\n  }\n}\n.:53 {\n  forward . dns://8.8.8.8:53\n}\n",
		want:      []string{"(common) {\n  errors", "example.org:53 { bind 192.168.5.10", ".:53 { bind 192.168.5.10", "forward . dns://8.8.8.8:53"},
		sameLines: true,
	}, {
		name: "one server block without braces",
		in:   ".:53\nerrors\nforward . /etc/resolv.conf\n",
		want: []string{".:53\nbind 192.168.5.10\nerrors", "forward . 192.168.5.1 2001:db8::53"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := adaptCorefile(tc.in, testParams)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("result lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("result has %q:\n%s", w, out)
				}
			}
			if tc.sameLines && strings.Count(out, "\n") != strings.Count(tc.in, "\n") {
				t.Errorf("lines added:\n%s", out)
			}
			// caddy reads the result, and every server block binds.
			blocks, err := caddyfile.Parse("Corefile", strings.NewReader(out), dnsserver.Directives)
			if err != nil {
				t.Fatalf("caddy cannot parse the result: %v\n%s", err, out)
			}
			for _, b := range blocks {
				if strings.HasPrefix(b.Keys[0], "(") {
					continue
				}
				if _, ok := b.Tokens["bind"]; !ok {
					t.Errorf("block %v does not bind:\n%s", b.Keys, out)
				}
				if k, ok := b.Tokens["kubernetes"]; ok && !slices.ContainsFunc(k, func(t caddyfile.Token) bool {
					return t.Text == "kubeconfig" || t.Text == "endpoint"
				}) {
					t.Errorf("kubernetes in %v does not say how to reach the API:\n%s", b.Keys, out)
				}
			}
		})
	}
}

func TestAdaptCorefileRefusesLoops(t *testing.T) {
	for _, fwd := range []string{"10.43.0.10", "10.43.0.10:53", "dns://10.43.0.10", "192.168.5.10", "192.168.5.10:53", "9.9.9.9 192.168.5.10"} {
		_, err := adaptCorefile(".:53 {\n  forward . "+fwd+"\n}\n", testParams)
		if err == nil || !strings.Contains(err.Error(), "Corefile line 2: forward to") {
			t.Errorf("forward . %s: got error %v, want a refusal naming line 2", fwd, err)
		}
	}
	for _, fwd := range []string{"192.168.5.10:5353", "10.43.0.11", "tls://10.43.0.10"} {
		if _, err := adaptCorefile(".:53 {\n  forward . "+fwd+"\n}\n", testParams); err != nil {
			t.Errorf("forward . %s: %v", fwd, err)
		}
	}
}

func TestAdaptCorefileUnclosed(t *testing.T) {
	if _, err := adaptCorefile(".:53 {\n  errors\n", testParams); err == nil {
		t.Error("no error for a block never closed")
	}
}

func TestDefaultCorefile(t *testing.T) {
	c := defaultCorefile(testParams)
	for _, w := range []string{
		".:53 {", "bind 192.168.5.10", "health 192.168.5.10:40001", "ready 192.168.5.10:40002",
		"kubernetes cluster.local in-addr.arpa ip6.arpa {", "kubeconfig /var/lib/labctl/server/addons.kubeconfig",
		"pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 30", "prometheus 192.168.5.10:9153",
		"forward . 192.168.5.1 2001:db8::53 {", "cache 30 {", "disable success cluster.local", "disable denial cluster.local",
		"loop", "reload", "errors", "loadbalance",
	} {
		if !strings.Contains(c, w) {
			t.Errorf("default Corefile lacks %q:\n%s", w, c)
		}
	}
	if _, err := caddyfile.Parse("Corefile", strings.NewReader(c), dnsserver.Directives); err != nil {
		t.Fatal(err)
	}
	// No upstream: no forward at all rather than a forward to nothing.
	p := testParams
	p.upstreams = nil
	if c := defaultCorefile(p); strings.Contains(c, "forward") {
		t.Errorf("forward without upstreams:\n%s", c)
	}
	p.kubeconfig = "/path with space/k"
	if c := defaultCorefile(p); !strings.Contains(c, `kubeconfig "/path with space/k"`) {
		t.Errorf("kubeconfig path not quoted:\n%s", c)
	}
}
