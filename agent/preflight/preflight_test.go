package preflight_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"labctl/agent/preflight"
)

// hybridMountinfo is the cgroup part of a Debian 12 machine booted with
// cgroup v1 and systemd's hybrid layout.
const hybridMountinfo = `22 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// unifiedMountinfo is a machine with only cgroup v2, as systemd sets up by
// default since Debian 11 and Ubuntu 21.10.
const unifiedMountinfo = `22 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
29 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

// legacyMountinfo has only v1 hierarchies, some of them co-mounted.
const legacyMountinfo = `30 22 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
32 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
33 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
34 30 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
35 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
`

// tree writes files (path relative to root: contents) under root.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dirs makes empty directories under root.
func dirs(t *testing.T, root string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// executables makes executable files called names in dir and returns dir.
func executables(t *testing.T, dir string, names ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// freePort returns a TCP port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestCheckCgroups(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  preflight.Result
	}{{
		name: "v1 hybrid",
		files: map[string]string{
			"proc/self/mountinfo":                      hybridMountinfo,
			"sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.OK,
			Detail: "v1 (hybrid) controllers: cpu cpuacct cpuset memory pids devices freezer blkio"},
	}, {
		name: "v2 unified",
		files: map[string]string{
			"proc/self/mountinfo":              unifiedMountinfo,
			"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.OK,
			Detail: "v2 (unified) controllers: cpu cpuset memory pids io hugetlb misc rdma"},
	}, {
		name: "v1 legacy with co-mounted controllers",
		files: map[string]string{
			"proc/self/mountinfo": legacyMountinfo,
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.OK,
			Detail: "v1 (legacy) controllers: cpu cpuacct memory pids net_cls net_prio"},
	}, {
		name: "v2 read from /proc/mounts when there is no mountinfo",
		files: map[string]string{
			"proc/mounts":                      "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n",
			"sys/fs/cgroup/cgroup.controllers": "cpu memory pids",
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.OK,
			Detail: "v2 (unified) controllers: cpu memory pids"},
	}, {
		name: "v2 without the memory controller",
		files: map[string]string{
			"proc/self/mountinfo":              unifiedMountinfo,
			"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io pids\n",
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.Fail,
			Detail: "v2 (unified) controllers: cpu cpuset pids io (missing: memory)",
			Fix:    "enable the missing controllers on the kernel command line (e.g. cgroup_enable=memory cgroup_memory=1, and no cgroup_disable=) and reboot"},
	}, {
		name: "no cgroup mounted",
		files: map[string]string{
			"proc/self/mountinfo": "22 1 0:20 / /proc rw - proc proc rw\n",
		},
		want: preflight.Result{Name: "cgroup", Status: preflight.Fail,
			Detail: "no cgroup or cgroup2 filesystem is mounted (read {root}/proc/self/mountinfo)",
			Fix:    "mount cgroup2 at /sys/fs/cgroup: mount -t cgroup2 none /sys/fs/cgroup"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tt.files)
			got := preflight.CheckCgroups(preflight.Config{Root: root})
			tt.want.Detail = strings.ReplaceAll(tt.want.Detail, "{root}", root)
			if got != tt.want {
				t.Errorf("CheckCgroups:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestCheckCgroupsWithoutProc(t *testing.T) {
	got := preflight.CheckCgroups(preflight.Config{Root: t.TempDir()})
	if got.Status != preflight.Fail || !strings.Contains(got.Detail, "cannot read the mount table") {
		t.Errorf("CheckCgroups on an empty root = %v, want a failure to read the mount table", got)
	}
}

func TestCheckBinary(t *testing.T) {
	bin := executables(t, filepath.Join(t.TempDir(), "bin"), "containerd", "runc")
	notExec := t.TempDir()
	tree(t, notExec, map[string]string{"runc": "not executable"})
	if err := os.Chmod(filepath.Join(notExec, "runc"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirNamedLikeBinary := t.TempDir()
	dirs(t, dirNamedLikeBinary, "containerd")

	tests := []struct {
		name string
		path []string
		bin  string
		pkg  string
		want preflight.Result
	}{{
		name: "missing containerd",
		path: []string{t.TempDir()},
		bin:  "containerd", pkg: "containerd",
		want: preflight.Result{Name: "containerd", Status: preflight.Fail,
			Detail: "not found on PATH", Fix: "install it: apt-get install containerd"},
	}, {
		name: "missing runc, empty PATH",
		path: []string{},
		bin:  "runc", pkg: "runc",
		want: preflight.Result{Name: "runc", Status: preflight.Fail,
			Detail: "not found on PATH", Fix: "install it: apt-get install runc"},
	}, {
		name: "found in the second directory",
		path: []string{"", t.TempDir(), bin},
		bin:  "containerd", pkg: "containerd",
		want: preflight.Result{Name: "containerd", Status: preflight.OK,
			Detail: filepath.Join(bin, "containerd")},
	}, {
		name: "a file that is not executable does not count",
		path: []string{notExec},
		bin:  "runc", pkg: "runc",
		want: preflight.Result{Name: "runc", Status: preflight.Fail,
			Detail: "not found on PATH", Fix: "install it: apt-get install runc"},
	}, {
		name: "a directory does not count",
		path: []string{dirNamedLikeBinary},
		bin:  "containerd", pkg: "containerd",
		want: preflight.Result{Name: "containerd", Status: preflight.Fail,
			Detail: "not found on PATH", Fix: "install it: apt-get install containerd"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := preflight.CheckBinary(preflight.Config{Path: tt.path}, tt.bin, tt.pkg)
			if got != tt.want {
				t.Errorf("CheckBinary:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestSysctlChecks(t *testing.T) {
	const (
		ipForward = "proc/sys/net/ipv4/ip_forward"
		brNf      = "proc/sys/net/bridge/bridge-nf-call-iptables"
	)
	tests := []struct {
		name  string
		check func(preflight.Config) preflight.Result
		files map[string]string
		want  preflight.Result
	}{{
		name: "ip_forward 0 warns", check: preflight.CheckIPForward,
		files: map[string]string{ipForward: "0\n"},
		want: preflight.Result{Name: "ip_forward", Status: preflight.Warn,
			Detail: "net.ipv4.ip_forward = 0",
			Fix:    "labctl sets it to 1 at start, or run: sysctl -w net.ipv4.ip_forward=1"},
	}, {
		name: "ip_forward 1", check: preflight.CheckIPForward,
		files: map[string]string{ipForward: "1\n"},
		want:  preflight.Result{Name: "ip_forward", Status: preflight.OK, Detail: "net.ipv4.ip_forward = 1"},
	}, {
		name: "bridge-nf-call-iptables 1", check: preflight.CheckBrNetfilter,
		files: map[string]string{brNf: "1\n"},
		want: preflight.Result{Name: "br_netfilter", Status: preflight.OK,
			Detail: "net.bridge.bridge-nf-call-iptables = 1"},
	}, {
		name: "bridge-nf-call-iptables 0 warns", check: preflight.CheckBrNetfilter,
		files: map[string]string{brNf: "0\n"},
		want: preflight.Result{Name: "br_netfilter", Status: preflight.Warn,
			Detail: "net.bridge.bridge-nf-call-iptables = 0",
			Fix:    "labctl sets it to 1 at start, or run: sysctl -w net.bridge.bridge-nf-call-iptables=1"},
	}, {
		name: "no br_netfilter", check: preflight.CheckBrNetfilter,
		files: map[string]string{ipForward: "1\n"},
		want: preflight.Result{Name: "br_netfilter", Status: preflight.Fail,
			Detail: "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist",
			Fix:    "load it: modprobe br_netfilter (and list br_netfilter in /etc/modules-load.d/labctl.conf)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tt.files)
			if got := tt.check(preflight.Config{Root: root}); got != tt.want {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestCheckBridge(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		dirs   []string
		status preflight.Status
		detail string
	}{
		{"module", nil, []string{"sys/module/bridge"}, preflight.OK, "bridge module present"},
		{"in /proc/modules", map[string]string{"proc/modules": "bridge 311296 1 br_netfilter, Live 0x0\n"}, nil, preflight.OK, "bridge module present"},
		{"sysctl dir", nil, []string{"proc/sys/net/bridge"}, preflight.OK, "bridge support present (/proc/sys/net/bridge)"},
		{"bridge device", nil, []string{"sys/class/net/lo", "sys/class/net/cni0/bridge"}, preflight.OK, "bridge device cni0 exists"},
		{"none", map[string]string{"proc/modules": "overlay 1 0 - Live 0x0\n"}, []string{"sys/class/net/lo"}, preflight.Fail,
			"no bridge module in /sys/module or /proc/modules and no bridge device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tt.files)
			dirs(t, root, tt.dirs...)
			got := preflight.CheckBridge(preflight.Config{Root: root})
			if got.Status != tt.status || got.Detail != tt.detail {
				t.Errorf("CheckBridge = %v, want [%v] %s", got, tt.status, tt.detail)
			}
			if (got.Status == preflight.Fail) != (got.Fix != "") {
				t.Errorf("CheckBridge = %v: a fix must come with a failure, and only then", got)
			}
		})
	}
}

func TestCheckOverlay(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"proc/filesystems": "nodev\tsysfs\nnodev\tcgroup2\n\text4\nnodev\toverlay\n"})
	if got := preflight.CheckOverlay(preflight.Config{Root: root}); got.Status != preflight.OK {
		t.Errorf("CheckOverlay with overlay listed = %v, want OK", got)
	}

	root = t.TempDir()
	tree(t, root, map[string]string{"proc/filesystems": "nodev\tsysfs\n\text4\nnodev\toverlayfs-not-this\n"})
	want := preflight.Result{Name: "overlayfs", Status: preflight.Fail,
		Detail: "overlay is not in /proc/filesystems",
		Fix:    "load it: modprobe overlay (and list overlay in /etc/modules-load.d/labctl.conf), or use a kernel built with CONFIG_OVERLAY_FS"}
	if got := preflight.CheckOverlay(preflight.Config{Root: root}); got != want {
		t.Errorf("CheckOverlay without overlay:\n got %#v\nwant %#v", got, want)
	}
}

func TestCheckNetfilter(t *testing.T) {
	// nftBin looks like Debian's iptables package: iptables is a symlink
	// chain ending at xtables-nft-multi.
	nftBin := executables(t, filepath.Join(t.TempDir(), "sbin"), "xtables-nft-multi", "nft")
	if err := os.Symlink("xtables-nft-multi", filepath.Join(nftBin, "iptables-nft")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(nftBin, "iptables-nft"), filepath.Join(nftBin, "iptables")); err != nil {
		t.Fatal(err)
	}
	legacyBin := executables(t, filepath.Join(t.TempDir(), "sbin"), "xtables-legacy-multi")
	if err := os.Symlink("xtables-legacy-multi", filepath.Join(legacyBin, "iptables")); err != nil {
		t.Fatal(err)
	}
	onlyNft := executables(t, filepath.Join(t.TempDir(), "sbin"), "nft")

	tests := []struct {
		name   string
		path   []string
		files  map[string]string
		dirs   []string
		status preflight.Status
		detail string
		fix    string
	}{{
		name: "iptables-nft and nft, kernel netfilter visible",
		path: []string{nftBin},
		dirs: []string{"proc/net/netfilter"},
		files: map[string]string{
			"proc/net/ip_tables_names": "",
		},
		status: preflight.OK,
		detail: "iptables (nf_tables) at " + filepath.Join(nftBin, "iptables") + ", nft at " + filepath.Join(nftBin, "nft") +
			"; kernel: ip_tables, netfilter (/proc/net/netfilter)",
	}, {
		name:   "legacy iptables, nf_tables module loaded",
		path:   []string{legacyBin},
		files:  map[string]string{"proc/modules": "nf_tables 339968 0 - Live 0x0\n"},
		status: preflight.OK,
		detail: "iptables (legacy) at " + filepath.Join(legacyBin, "iptables") + "; kernel: nf_tables",
	}, {
		name:   "only nft",
		path:   []string{onlyNft},
		dirs:   []string{"sys/module/nf_tables"},
		status: preflight.Warn,
		detail: "nft at " + filepath.Join(onlyNft, "nft") + "; no iptables on PATH; kernel: nf_tables",
		fix:    "install it: apt-get install iptables (the CNI plugins portmap and bridge run it)",
	}, {
		name:   "iptables but no sign of kernel support",
		path:   []string{legacyBin},
		status: preflight.Warn,
		detail: "iptables (legacy) at " + filepath.Join(legacyBin, "iptables") +
			"; kernel: no nf_tables in /proc/modules or /sys/module, no /proc/net/netfilter",
		fix: "load nf_tables: modprobe nf_tables (and list it in /etc/modules-load.d/labctl.conf)",
	}, {
		name:   "no tools",
		path:   []string{t.TempDir()},
		dirs:   []string{"proc/net/netfilter"},
		status: preflight.Fail,
		detail: "neither iptables nor nft found on PATH; kernel: netfilter (/proc/net/netfilter)",
		fix:    "install them: apt-get install iptables nftables",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tree(t, root, tt.files)
			dirs(t, root, tt.dirs...)
			got := preflight.CheckNetfilter(preflight.Config{Root: root, Path: tt.path})
			want := preflight.Result{Name: "netfilter", Status: tt.status, Detail: tt.detail, Fix: tt.fix}
			if got != want {
				t.Errorf("CheckNetfilter:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestCheckCNIPlugins(t *testing.T) {
	empty := t.TempDir()
	full := executables(t, filepath.Join(t.TempDir(), "cni"), "bridge", "host-local", "portmap", "loopback", "firewall")
	partial := executables(t, filepath.Join(t.TempDir(), "cni"), "bridge", "loopback")

	got := preflight.CheckCNIPlugins(preflight.Config{CNIDirs: []string{empty, full}})
	want := preflight.Result{Name: "cni plugins", Status: preflight.OK,
		Detail: "portmap in " + full}
	if got != want {
		t.Errorf("all plugins:\n got %#v\nwant %#v", got, want)
	}

	got = preflight.CheckCNIPlugins(preflight.Config{CNIDirs: []string{empty, partial}})
	want = preflight.Result{Name: "cni plugins", Status: preflight.Fail,
		Detail: "missing portmap (looked in " + empty + ", " + partial + ")",
		Fix:    "install them: apt-get install containernetworking-plugins"}
	if got != want {
		t.Errorf("missing plugins:\n got %#v\nwant %#v", got, want)
	}
}

func TestCheckPort(t *testing.T) {
	port := freePort(t)
	if got := preflight.CheckPort(port); got.Status != preflight.OK || got.Detail != "free" {
		t.Errorf("CheckPort(free port %d) = %v, want OK free", port, got)
	}

	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	got := preflight.CheckPort(busy)
	if got.Status != preflight.Fail || got.Detail != "in use" || !strings.Contains(got.Fix, "ss -ltnp") {
		t.Errorf("CheckPort(busy port %d) = %v, want FAIL in use with a fix", busy, got)
	}
}

func TestCheckRoot(t *testing.T) {
	root := preflight.CheckRoot(preflight.Config{Geteuid: func() int { return 0 }})
	if want := (preflight.Result{Name: "root", Status: preflight.OK, Detail: "running as root"}); root != want {
		t.Errorf("as root: got %#v, want %#v", root, want)
	}
	user := preflight.CheckRoot(preflight.Config{Geteuid: func() int { return 1000 }})
	want := preflight.Result{Name: "root", Status: preflight.Fail,
		Detail: "running as uid 1000, not root", Fix: "run labctl as root, e.g. with sudo"}
	if user != want {
		t.Errorf("as uid 1000: got %#v, want %#v", user, want)
	}
}

// TestRunReport runs every check on a fake machine like the course's
// (Debian 12, cgroup v1 hybrid, ip_forward 0) that has runc, iptables and
// the CNI plugins but no containerd, and checks the report word for word.
func TestRunReport(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"proc/self/mountinfo":                         hybridMountinfo,
		"proc/filesystems":                            "nodev\tcgroup\nnodev\tcgroup2\nnodev\toverlay\n",
		"proc/sys/net/ipv4/ip_forward":                "0\n",
		"proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
	})
	dirs(t, root, "proc/net/netfilter", "sys/module/bridge", "sys/class/net/eth0")
	bin := executables(t, filepath.Join(t.TempDir(), "bin"), "runc", "xtables-nft-multi")
	if err := os.Symlink("xtables-nft-multi", filepath.Join(bin, "iptables")); err != nil {
		t.Fatal(err)
	}
	cni := executables(t, filepath.Join(t.TempDir(), "cni"), "bridge", "host-local", "portmap", "loopback")
	port := freePort(t)

	report := preflight.Run(preflight.Config{
		Root:    root,
		Path:    []string{bin},
		Ports:   []int{port},
		CNIDirs: []string{cni},
		Geteuid: func() int { return 0 },
	})

	var out strings.Builder
	if _, err := report.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"[ OK ] root: running as root",
		"[ OK ] cgroup: v1 (hybrid) controllers: cpu cpuacct cpuset memory pids devices freezer blkio",
		"[ OK ] overlayfs: supported (overlay is in /proc/filesystems)",
		"[ OK ] netfilter: iptables (nf_tables) at " + bin + "/iptables; kernel: netfilter (/proc/net/netfilter)",
		"[ OK ] bridge: bridge module present",
		"[ OK ] br_netfilter: net.bridge.bridge-nf-call-iptables = 1",
		"[WARN] ip_forward: net.ipv4.ip_forward = 0 — labctl sets it to 1 at start, or run: sysctl -w net.ipv4.ip_forward=1",
		"[FAIL] containerd: not found on PATH — install it: apt-get install containerd",
		"[ OK ] runc: " + bin + "/runc",
		"[ OK ] cni plugins: portmap in " + cni,
		"[ OK ] port " + strconv.Itoa(port) + ": free",
		"11 checks: 9 ok, 1 warning, 1 failed",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", out.String(), want)
	}
	if !report.Failed() {
		t.Error("Failed() = false, want true: containerd is missing")
	}
	if r, ok := report.Find("ip_forward"); !ok || r.Status != preflight.Warn {
		t.Errorf("Find(ip_forward) = %v, %v; want a warning", r, ok)
	}
}

func TestRunDefaultPorts(t *testing.T) {
	report := preflight.Run(preflight.Config{Root: t.TempDir(), Path: []string{}, CNIDirs: []string{}})
	for _, name := range []string{"port 6443", "port 10250"} {
		if _, ok := report.Find(name); !ok {
			t.Errorf("report has no %q item with the default ports:\n%v", name, report)
		}
	}
	report = preflight.Run(preflight.Config{Root: t.TempDir(), Ports: []int{}})
	for _, r := range report {
		if strings.HasPrefix(r.Name, "port ") {
			t.Errorf("report has %q with Ports set to an empty list", r.Name)
		}
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[preflight.Status]string{preflight.OK: "OK", preflight.Warn: "WARN", preflight.Fail: "FAIL", 7: "Status(7)"} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}
