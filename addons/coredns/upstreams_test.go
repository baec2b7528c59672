package coredns

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadUpstreams(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resolved := write("resolved.conf", "# systemd-resolved's upstreams\nnameserver 192.168.1.1\nnameserver fe80::1%eth0\nsearch lan\n")
	emptyResolved := write("empty.conf", "search lan\n")
	self := []netip.Addr{netip.MustParseAddr("10.43.0.10"), netip.MustParseAddr("192.168.1.20")}
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	for _, tc := range []struct {
		name, conf, systemd string
		want                []netip.Addr
		wantFrom            string // "resolved", else the file itself
		wantDropped         []netip.Addr
	}{
		{name: "plain", conf: "nameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:2\n", systemd: resolved, want: addrs("1.1.1.1", "8.8.8.8")},
		{name: "systemd-resolved stub", conf: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", systemd: resolved,
			want: addrs("192.168.1.1", "fe80::1%eth0"), wantFrom: "resolved"},
		{name: "both stubs", conf: "nameserver 127.0.0.53\nnameserver 127.0.0.54\n", systemd: resolved, want: addrs("192.168.1.1", "fe80::1%eth0"), wantFrom: "resolved"},
		{name: "stub and another server", conf: "nameserver 127.0.0.53\nnameserver 9.9.9.9\n", systemd: resolved, want: addrs("127.0.0.53", "9.9.9.9")},
		{name: "stub, systemd's file missing", conf: "nameserver 127.0.0.53\n", systemd: filepath.Join(dir, "none"), want: addrs("127.0.0.53")},
		{name: "stub, systemd's file empty", conf: "nameserver 127.0.0.53\n", systemd: emptyResolved, want: addrs("127.0.0.53")},
		{name: "other loopback resolver kept", conf: "nameserver 127.0.0.1\n", systemd: resolved, want: addrs("127.0.0.1")},
		{name: "itself left out", conf: "nameserver 10.43.0.10\nnameserver 192.168.1.20\nnameserver 1.1.1.1\n", systemd: resolved,
			want: addrs("1.1.1.1"), wantDropped: addrs("10.43.0.10", "192.168.1.20")},
		{name: "garbage", conf: "nameserver\nnameserver not-an-ip\n; comment\nnameserver 1.1.1.1 extra\nnameserver 1.1.1.1\n", systemd: resolved, want: addrs("1.1.1.1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := write(strings.ReplaceAll(tc.name, " ", "-"), tc.conf)
			got, err := readUpstreams(conf, tc.systemd, self)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.servers, tc.want) {
				t.Errorf("servers %v, want %v", got.servers, tc.want)
			}
			wantFrom := conf
			if tc.wantFrom == "resolved" {
				wantFrom = tc.systemd
			}
			if got.from != wantFrom {
				t.Errorf("read from %s, want %s", got.from, wantFrom)
			}
			if !slices.Equal(got.dropped, tc.wantDropped) {
				t.Errorf("left out %v, want %v", got.dropped, tc.wantDropped)
			}
		})
	}
	if _, err := readUpstreams(filepath.Join(dir, "missing"), resolved, self); err == nil {
		t.Error("no error for a missing resolv.conf")
	}
}

func TestLogWriter(t *testing.T) {
	var buf bytes.Buffer
	w := logWriter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))}
	_, _ = w.Write([]byte("[WARNING] plugin/kubernetes: starting server with unsynced Kubernetes API\n[ERROR] Restart failed: boom\nplain line\n"))
	want := `level=WARN msg="starting server with unsynced Kubernetes API" plugin=kubernetes
level=ERROR msg="Restart failed: boom"
level=INFO msg="plain line"
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
