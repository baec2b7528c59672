// Package preflight checks, item by item, whether a machine can run a labctl
// node: privileges, cgroups, kernel features, the container runtime and CNI
// plugins on disk, and free ports. Every check reads files (under a
// configurable root, so tests can fake /proc and /sys) or tries to listen on a
// port; nothing is changed on the machine and nothing is printed except to the
// writer a caller hands to Report.WriteTo.
//
// A check that fails or warns says how to fix it, naming the Debian/Ubuntu
// package to install where one helps.
package preflight

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"labctl/networking"
)

// Default values for Config's zero values.
var (
	// DefaultPorts are the TCP ports a server node needs: the API server's
	// HTTPS port and the kubelet's port.
	DefaultPorts = []int{6443, 10250}
	// DefaultCNIDirs are where Debian, Ubuntu and the upstream release
	// tarballs put the CNI plugins: where the pod network looks.
	DefaultCNIDirs = networking.DefaultPluginDirs
	// CNIPlugins are the machine's plugins a labctl node runs (bridge and
	// host-local are built in).
	CNIPlugins = networking.MachinePlugins
)

// Config says what machine to look at. Zero values mean the defaults.
type Config struct {
	// Root prefixes /proc and /sys when they are read (default "/"). Tests
	// point it at a fake tree; Path and CNIDirs are not prefixed.
	Root string
	// Path lists the directories searched for binaries (default: $PATH).
	Path []string
	// Ports lists the TCP ports that must be free (default DefaultPorts:
	// 6443 and 10250). A non-nil empty slice checks no port.
	Ports []int
	// CNIDirs lists the directories searched for CNI plugins (default
	// DefaultCNIDirs: /opt/cni/bin, /usr/lib/cni, /usr/libexec/cni).
	CNIDirs []string
	// Geteuid reports the effective user id to judge (default os.Geteuid).
	Geteuid func() int
}

func (c Config) withDefaults() Config {
	if c.Root == "" {
		c.Root = "/"
	}
	if c.Path == nil {
		c.Path = filepath.SplitList(os.Getenv("PATH"))
	}
	if c.Ports == nil {
		c.Ports = DefaultPorts
	}
	if c.CNIDirs == nil {
		c.CNIDirs = DefaultCNIDirs
	}
	if c.Geteuid == nil {
		c.Geteuid = os.Geteuid
	}
	return c
}

// path returns the absolute path p (such as "/proc/filesystems") under Root.
func (c Config) path(p string) string {
	return filepath.Join(c.Root, p)
}

// Status is the verdict on one item.
type Status int

const (
	// OK means the item is fine.
	OK Status = iota
	// Warn means the node can run but something should be looked at.
	Warn
	// Fail means the node cannot run until the item is fixed.
	Fail
)

// String returns "OK", "WARN" or "FAIL".
func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Warn:
		return "WARN"
	case Fail:
		return "FAIL"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is the verdict on one item.
type Result struct {
	// Name is the item, e.g. "cgroup" or "port 6443".
	Name string
	// Status is the verdict.
	Status Status
	// Detail says what was found.
	Detail string
	// Fix says how to fix the item; empty when there is nothing to fix.
	Fix string
}

// String formats the result as one report line, e.g.
// "[FAIL] runc: not found on PATH — install it: apt-get install runc".
func (r Result) String() string {
	tag := r.Status.String()
	if r.Status == OK {
		tag = " OK "
	}
	line := fmt.Sprintf("[%s] %s: %s", tag, r.Name, r.Detail)
	if r.Fix != "" {
		line += " — " + r.Fix
	}
	return line
}

// Report is the outcome of Run: one Result per item, in a fixed order.
type Report []Result

// Count returns how many results have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Failed reports whether any item failed.
func (r Report) Failed() bool { return r.Count(Fail) > 0 }

// Find returns the result named name, and whether there is one.
func (r Report) Find(name string) (Result, bool) {
	for _, res := range r {
		if res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// Summary is the closing line of a report, e.g.
// "12 checks: 10 ok, 1 warning, 1 failed".
func (r Report) Summary() string {
	warnings := "warnings"
	if r.Count(Warn) == 1 {
		warnings = "warning"
	}
	return fmt.Sprintf("%d checks: %d ok, %d %s, %d failed",
		len(r), r.Count(OK), r.Count(Warn), warnings, r.Count(Fail))
}

// WriteTo writes one line per result and the summary line to w.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, res := range r {
		b.WriteString(res.String())
		b.WriteByte('\n')
	}
	b.WriteString(r.Summary())
	b.WriteByte('\n')
	n, err := io.WriteString(w, b.String())
	if err != nil {
		return int64(n), fmt.Errorf("write preflight report: %w", err)
	}
	return int64(n), nil
}

// Run runs every check and returns their results in this order: root,
// cgroup, overlayfs, netfilter, bridge, br_netfilter, ip_forward,
// containerd, runc, cni plugins, then one "port N" item per port.
func Run(cfg Config) Report {
	cfg = cfg.withDefaults()
	r := Report{
		CheckRoot(cfg),
		CheckCgroups(cfg),
		CheckOverlay(cfg),
		CheckNetfilter(cfg),
		CheckBridge(cfg),
		CheckBrNetfilter(cfg),
		CheckIPForward(cfg),
		CheckBinary(cfg, "containerd", "containerd"),
		CheckBinary(cfg, "runc", "runc"),
		CheckCNIPlugins(cfg),
	}
	for _, port := range cfg.Ports {
		r = append(r, CheckPort(port))
	}
	return r
}
