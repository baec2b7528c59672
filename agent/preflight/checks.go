package preflight

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// CheckRoot passes when the effective user is root: a node mounts
// filesystems, changes sysctls and programs the firewall.
func CheckRoot(cfg Config) Result {
	cfg = cfg.withDefaults()
	uid := cfg.Geteuid()
	if uid == 0 {
		return Result{Name: "root", Status: OK, Detail: "running as root"}
	}
	return Result{
		Name:   "root",
		Status: Fail,
		Detail: fmt.Sprintf("running as uid %d, not root", uid),
		Fix:    "run labctl as root, e.g. with sudo",
	}
}

// CheckOverlay passes when the kernel lists the overlay filesystem, which
// containerd's default snapshotter needs.
func CheckOverlay(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "overlayfs"}
	file := cfg.path("/proc/filesystems")
	data, err := os.ReadFile(file)
	if err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("cannot read %s: %v", file, err)
		res.Fix = "run on a Linux machine with /proc mounted"
		return res
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// Lines are "nodev\toverlay" or "\text4": the name is the last field.
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[len(f)-1] == "overlay" {
			res.Status = OK
			res.Detail = "supported (overlay is in /proc/filesystems)"
			return res
		}
	}
	res.Status = Fail
	res.Detail = "overlay is not in /proc/filesystems"
	res.Fix = "load it: modprobe overlay (and list overlay in /etc/modules-load.d/labctl.conf), " +
		"or use a kernel built with CONFIG_OVERLAY_FS"
	return res
}

// CheckNetfilter looks for the tools that program packet filtering (the
// iptables and nft binaries) and for signs of kernel support. The CNI
// plugins portmap and bridge (for masquerading) run iptables, so it fails
// without any tool and warns when only nft is there.
func CheckNetfilter(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "netfilter"}

	var tools []string
	iptables, hasIptables := lookPath(cfg.Path, "iptables")
	if hasIptables {
		tools = append(tools, fmt.Sprintf("iptables (%s) at %s", iptablesVariant(iptables), iptables))
	}
	nft, hasNft := lookPath(cfg.Path, "nft")
	if hasNft {
		tools = append(tools, "nft at "+nft)
	}

	kernel := kernelNetfilter(cfg)
	kernelText := "kernel: " + strings.Join(kernel, ", ")
	if len(kernel) == 0 {
		kernelText = "kernel: no nf_tables in /proc/modules or /sys/module, no /proc/net/netfilter"
	}

	switch {
	case !hasIptables && !hasNft:
		res.Status = Fail
		res.Detail = "neither iptables nor nft found on PATH; " + kernelText
		res.Fix = "install them: apt-get install iptables nftables"
	case !hasIptables:
		res.Status = Warn
		res.Detail = strings.Join(tools, ", ") + "; no iptables on PATH; " + kernelText
		res.Fix = "install it: apt-get install iptables (the CNI plugins portmap and bridge run it)"
	case len(kernel) == 0:
		res.Status = Warn
		res.Detail = strings.Join(tools, ", ") + "; " + kernelText
		res.Fix = "load nf_tables: modprobe nf_tables (and list it in /etc/modules-load.d/labctl.conf)"
	default:
		res.Status = OK
		res.Detail = strings.Join(tools, ", ") + "; " + kernelText
	}
	return res
}

// iptablesVariant tells Debian's two iptables apart by where the binary's
// symlinks lead: xtables-nft-multi (nf_tables) or xtables-legacy-multi.
func iptablesVariant(bin string) string {
	target, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "unknown variant"
	}
	switch base := filepath.Base(target); {
	case strings.Contains(base, "nft"):
		return "nf_tables"
	case strings.Contains(base, "legacy"):
		return "legacy"
	}
	return "unknown variant"
}

// kernelNetfilter lists the signs of netfilter support that can be read
// without modprobe: the nf_tables module (loaded or built in with an entry
// in /sys/module), the legacy ip_tables interface and /proc/net/netfilter.
func kernelNetfilter(cfg Config) []string {
	var found []string
	if moduleLoaded(cfg, "nf_tables") {
		found = append(found, "nf_tables")
	}
	if exists(cfg.path("/proc/net/ip_tables_names")) {
		found = append(found, "ip_tables")
	}
	if exists(cfg.path("/proc/net/netfilter")) {
		found = append(found, "netfilter (/proc/net/netfilter)")
	}
	return found
}

// moduleLoaded reports whether the kernel module name is in /proc/modules
// or has a /sys/module entry (built-in modules often only have the latter).
func moduleLoaded(cfg Config, name string) bool {
	if exists(cfg.path("/sys/module/" + name)) {
		return true
	}
	data, err := os.ReadFile(cfg.path("/proc/modules"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// CheckBridge passes when the kernel has Linux bridge support, which the
// bridge CNI plugin needs.
func CheckBridge(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "bridge"}
	switch {
	case moduleLoaded(cfg, "bridge"):
		res.Detail = "bridge module present"
	case exists(cfg.path("/proc/sys/net/bridge")):
		res.Detail = "bridge support present (/proc/sys/net/bridge)"
	default:
		if dev := anyBridgeDevice(cfg); dev != "" {
			res.Detail = "bridge device " + dev + " exists"
			break
		}
		res.Status = Fail
		res.Detail = "no bridge module in /sys/module or /proc/modules and no bridge device"
		res.Fix = "load it: modprobe bridge (and list bridge in /etc/modules-load.d/labctl.conf)"
	}
	return res
}

// anyBridgeDevice returns the name of a network device that is a bridge, or
// "".
func anyBridgeDevice(cfg Config) string {
	dir := cfg.path("/sys/class/net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if exists(filepath.Join(dir, e.Name(), "bridge")) {
			return e.Name()
		}
	}
	return ""
}

// CheckBrNetfilter passes when br_netfilter is there (so bridged pod
// traffic goes through iptables) and bridge-nf-call-iptables is 1; it warns
// when the setting is 0.
func CheckBrNetfilter(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "br_netfilter"}
	file := cfg.path("/proc/sys/net/bridge/bridge-nf-call-iptables")
	val, err := readTrimmed(file)
	if err != nil {
		res.Status = Fail
		res.Detail = "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist"
		res.Fix = "load it: modprobe br_netfilter (and list br_netfilter in /etc/modules-load.d/labctl.conf)"
		return res
	}
	res.Detail = "net.bridge.bridge-nf-call-iptables = " + val
	if val != "1" {
		res.Status = Warn
		res.Fix = "labctl sets it to 1 at start, or run: sysctl -w net.bridge.bridge-nf-call-iptables=1"
	}
	return res
}

// CheckIPForward passes when net.ipv4.ip_forward is 1 and warns when it is
// 0: labctl turns it on when it starts.
func CheckIPForward(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "ip_forward"}
	val, err := readTrimmed(cfg.path("/proc/sys/net/ipv4/ip_forward"))
	if err != nil {
		res.Status = Warn
		res.Detail = fmt.Sprintf("cannot read net.ipv4.ip_forward: %v", err)
		res.Fix = "labctl sets it to 1 at start, or run: sysctl -w net.ipv4.ip_forward=1"
		return res
	}
	res.Detail = "net.ipv4.ip_forward = " + val
	if val != "1" {
		res.Status = Warn
		res.Fix = "labctl sets it to 1 at start, or run: sysctl -w net.ipv4.ip_forward=1"
	}
	return res
}

// CheckBinary passes when the executable name is in one of cfg.Path's
// directories; when it is not, the fix installs the Debian package pkg.
func CheckBinary(cfg Config, name, pkg string) Result {
	cfg = cfg.withDefaults()
	if p, ok := lookPath(cfg.Path, name); ok {
		return Result{Name: name, Status: OK, Detail: p}
	}
	return Result{
		Name:   name,
		Status: Fail,
		Detail: "not found on PATH",
		Fix:    "install it: apt-get install " + pkg,
	}
}

// CheckCNIPlugins passes when every plugin in CNIPlugins is in one of
// cfg.CNIDirs.
func CheckCNIPlugins(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "cni plugins"}
	var missing []string
	dirs := map[string]bool{}
	var dirOrder []string
	for _, plugin := range CNIPlugins {
		p, ok := lookPath(cfg.CNIDirs, plugin)
		if !ok {
			missing = append(missing, plugin)
			continue
		}
		if d := filepath.Dir(p); !dirs[d] {
			dirs[d] = true
			dirOrder = append(dirOrder, d)
		}
	}
	if len(missing) > 0 {
		res.Status = Fail
		res.Detail = fmt.Sprintf("missing %s (looked in %s)",
			strings.Join(missing, " "), strings.Join(cfg.CNIDirs, ", "))
		res.Fix = "install them: apt-get install containernetworking-plugins"
		return res
	}
	res.Detail = fmt.Sprintf("%s in %s", strings.Join(CNIPlugins, " "), strings.Join(dirOrder, ", "))
	return res
}

// CheckPort passes when a TCP listener can be opened on port on every
// address, as the server will.
func CheckPort(port int) Result {
	res := Result{Name: fmt.Sprintf("port %d", port)}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err == nil {
		if err := ln.Close(); err != nil {
			res.Status = Warn
			res.Detail = fmt.Sprintf("free, but closing the test listener failed: %v", err)
			return res
		}
		res.Detail = "free"
		return res
	}
	res.Status = Fail
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		res.Detail = "in use"
		res.Fix = fmt.Sprintf("stop the program listening on it (find it with: ss -ltnp 'sport = :%d')", port)
	case errors.Is(err, syscall.EACCES):
		res.Detail = "permission denied"
		res.Fix = "run labctl as root"
	default:
		res.Detail = fmt.Sprintf("cannot listen: %v", err)
		res.Fix = "check the port number and the machine's network setup"
	}
	return res
}

// lookPath returns the first regular, executable file called name in dirs.
func lookPath(dirs []string, name string) (string, bool) {
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// exists reports whether path exists and can be looked at (following
// symlinks).
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readTrimmed returns the contents of a one-value file such as a sysctl.
func readTrimmed(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(data)), nil
}
