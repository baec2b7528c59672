package networking

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
)

// Defaults for Config's zero values.
const (
	DefaultBridgeName    = "cni0"
	DefaultClusterCIDR   = "10.42.0.0/16"
	DefaultDataDir       = "/var/lib/labctl/agent/cni"
	DefaultRunDir        = "/run/labctl"
	DefaultTable         = "labctl"
	DefaultRouteProtocol = 108
)

// DefaultPluginDirs are where the upstream release tarballs, Debian and
// Ubuntu (containernetworking-plugins: /usr/lib/cni) and Fedora put the
// standard CNI plugins.
var DefaultPluginDirs = []string{"/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni"}

// Plugins are the CNI plugins the pod network runs. Unless
// Config.MachineBridge, bridge and host-local run inside labctl
// (builtin.go) and only MachinePlugins must be in PluginDirs.
var Plugins = []string{"bridge", "host-local", "portmap"}

// MachinePlugins are the plugins the built-in bridge leaves to the
// machine's binaries.
var MachinePlugins = []string{"portmap"}

const (
	// NetworkName names the CNI network (in libcni's cache and IPAM).
	NetworkName = "labctl"
	// PodInterface is the pod's side of its veth pair.
	PodInterface = "eth0"
	cniVersion   = "1.0.0"
)

// Config describes one node's pod network. Zero values mean the defaults.
type Config struct {
	// PodCIDR is this node's range of pod addresses (its Node's
	// spec.podCIDR, an IPv4 prefix): the bridge takes the first address,
	// the pods the others. SetupHost and Setup need it; Cleanup does not.
	PodCIDR netip.Prefix
	// ClusterCIDR holds every node's PodCIDR (the server's
	// --cluster-cidr, default 10.42.0.0/16): what leaves it is
	// masqueraded, what stays in it is forwarded as it is.
	ClusterCIDR netip.Prefix
	// DataDir keeps the state that outlives a restart of labctl: the IPAM
	// reservations (DataDir/ipam) and libcni's cache of what each pod was
	// given (DataDir/cache). Default /var/lib/labctl/agent/cni.
	DataDir string
	// RunDir holds the pods' network namespaces, RunDir/netns/<id>
	// (default /run/labctl).
	RunDir string
	// BridgeName is the node's bridge (default cni0).
	BridgeName string
	// PluginDirs are searched, in order, for the CNI plugins (default
	// DefaultPluginDirs).
	PluginDirs []string
	// MachineBridge runs the machine's bridge and host-local plugins
	// instead of the built-in bridge (builtin.go), which does the same
	// without two processes for every pod.
	MachineBridge bool
	// MTU of the bridge and the pods' interfaces (0: the kernel's, 1500).
	MTU int
	// Table names labctl's nftables table, of family inet (default labctl).
	Table string
	// RouteProtocol is the routing protocol number that marks the routes
	// SyncRoutes owns (default 108; must not be one another program uses).
	RouteProtocol int
}

func (c Config) withDefaults() Config {
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = netip.MustParsePrefix(DefaultClusterCIDR)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir
	}
	if c.BridgeName == "" {
		c.BridgeName = DefaultBridgeName
	}
	if len(c.PluginDirs) == 0 {
		c.PluginDirs = DefaultPluginDirs
	}
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if c.RouteProtocol == 0 {
		c.RouteProtocol = DefaultRouteProtocol
	}
	c.ClusterCIDR = c.ClusterCIDR.Masked()
	c.PodCIDR = c.PodCIDR.Masked()
	return c
}

func (c Config) check() error {
	if !c.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("networking: the cluster CIDR %s is not an IPv4 range", c.ClusterCIDR)
	}
	if c.PodCIDR.IsValid() {
		if !c.PodCIDR.Addr().Is4() || c.PodCIDR.Bits() > 30 {
			return fmt.Errorf("networking: the pod CIDR %s is not an IPv4 range of 4 addresses or more", c.PodCIDR)
		}
		if !c.ClusterCIDR.Contains(c.PodCIDR.Addr()) || c.PodCIDR.Bits() < c.ClusterCIDR.Bits() {
			return fmt.Errorf("networking: the pod CIDR %s is not inside the cluster CIDR %s", c.PodCIDR, c.ClusterCIDR)
		}
	}
	if len(c.BridgeName) > 15 || strings.ContainsAny(c.BridgeName, "/ \x00") {
		return fmt.Errorf("networking: %q is not a valid interface name", c.BridgeName)
	}
	if c.RouteProtocol < 0 || c.RouteProtocol > 255 {
		return fmt.Errorf("networking: route protocol %d is not 0-255", c.RouteProtocol)
	}
	if c.MTU < 0 {
		return fmt.Errorf("networking: MTU %d", c.MTU)
	}
	return nil
}

// Network is one node's pod network. Its methods may be called from
// several goroutines at once, for different pods.
type Network struct {
	cfg Config
	cni *libcni.CNIConfig
	// full runs every plugin; noPorts leaves portmap out for pods without
	// host ports (portmap would run iptables for nothing).
	full, noPorts *libcni.NetworkConfigList

	hostMu   sync.Mutex
	hostDone bool
}

// New checks cfg and finds the CNI plugins; it changes nothing on the
// machine.
func New(cfg Config) (*Network, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := findPlugins(cfg.PluginDirs, cfg.plugins()); err != nil {
		return nil, err
	}
	n := newNetwork(cfg)
	if cfg.PodCIDR.IsValid() {
		var err error
		if n.full, err = n.confList(true); err != nil {
			return nil, err
		}
		if n.noPorts, err = n.confList(false); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Config returns the configuration in use, defaults filled in.
func (n *Network) Config() Config { return n.cfg }

func (n *Network) ipamDir() string  { return filepath.Join(n.cfg.DataDir, "ipam") }
func (n *Network) cacheDir() string { return filepath.Join(n.cfg.DataDir, "cache") }

// newNetwork makes the Network of cfg (defaults filled in) with its libcni
// client.
func newNetwork(cfg Config) *Network {
	n := &Network{cfg: cfg}
	var exec invoke.Exec // nil: libcni's own, which runs every plugin's binary
	if !cfg.MachineBridge {
		exec = newPluginExec(n)
	}
	n.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, n.cacheDir(), exec)
	return n
}

// plugins are the plugins that must be in PluginDirs.
func (c Config) plugins() []string {
	if c.MachineBridge {
		return Plugins
	}
	return MachinePlugins
}

// findPlugins reports the plugins that none of dirs has.
func findPlugins(dirs, plugins []string) error {
	var missing []string
	for _, p := range plugins {
		found := false
		for _, d := range dirs {
			if st, err := os.Stat(filepath.Join(d, p)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("networking: the CNI plugins %s are in none of %s (install containernetworking-plugins)",
			strings.Join(missing, ", "), strings.Join(dirs, ", "))
	}
	return nil
}

// Gateway is the bridge's address in the pod CIDR, the pods' default
// gateway: the first address of the range.
func (n *Network) Gateway() netip.Addr {
	if !n.cfg.PodCIDR.IsValid() {
		return netip.Addr{}
	}
	return n.cfg.PodCIDR.Addr().Next()
}

// confList builds the CNI network configuration: bridge (with host-local
// IPAM), then portmap when withPorts. The pod's lo is set up by NewNetNS,
// not by the loopback plugin: one process fewer for every pod.
func (n *Network) confList(withPorts bool) (*libcni.NetworkConfigList, error) {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      n.cfg.BridgeName,
		"isGateway":   true,
		"ipMasq":      false, // SetupHost's nftables rule masquerades
		"hairpinMode": true,
		"ipam": map[string]any{
			"type": "host-local",
			"ranges": [][]map[string]string{{{
				"subnet":  n.cfg.PodCIDR.String(),
				"gateway": n.Gateway().String(),
			}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": n.ipamDir(),
		},
	}
	if n.cfg.MTU > 0 {
		bridge["mtu"] = n.cfg.MTU
	}
	plugins := []any{bridge}
	if withPorts {
		plugins = append(plugins, map[string]any{
			"type":         "portmap",
			"capabilities": map[string]bool{"portMappings": true},
			"snat":         true,
		})
	}
	b, err := json.Marshal(map[string]any{"cniVersion": cniVersion, "name": NetworkName, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromBytes(b)
}

// PortMapping is one hostPort of a pod, as portmap takes it.
type PortMapping struct {
	HostPort      int32 `json:"hostPort"`
	ContainerPort int32 `json:"containerPort"`
	// Protocol is tcp (the default), udp or sctp, in either case.
	Protocol string `json:"protocol"`
	// HostIP limits the mapping to one of the host's addresses (empty:
	// all of them).
	HostIP string `json:"hostIP,omitempty"`
}

// PodNetwork is what Setup gave a pod.
type PodNetwork struct {
	// IPv4 is the pod's address (its status.podIP).
	IPv4 netip.Addr
	// Prefix is IPv4 with the pod CIDR's length, as the interface has it.
	Prefix netip.Prefix
	// Gateway is the bridge's address, the pod's default route.
	Gateway netip.Addr
	// Interface and MAC are the pod's side of the veth pair.
	Interface string
	MAC       string
}

func (n *Network) runtimeConf(podID, netnsPath string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: podID, NetNS: netnsPath, IfName: PodInterface}
}

// Setup attaches the network namespace at netnsPath (from NewNetNS) to
// the pod network for pod sandbox podID, with ports as its host ports,
// and returns the pod's address. The first call also runs SetupHost. A
// pod already set up in the same namespace gets its address again without
// change, so that a caller may retry and may ask again after a restart;
// in another namespace it is torn down first.
func (n *Network) Setup(ctx context.Context, podID, netnsPath string, ports []PortMapping) (PodNetwork, error) {
	if err := checkID(podID); err != nil {
		return PodNetwork{}, err
	}
	if n.full == nil {
		return PodNetwork{}, errors.New("networking: no pod CIDR configured")
	}
	if !IsNetNS(netnsPath) {
		return PodNetwork{}, fmt.Errorf("networking: %s is not a network namespace", netnsPath)
	}
	if err := n.ensureHost(); err != nil {
		return PodNetwork{}, err
	}
	if att := n.attachment(podID); att != nil {
		if att.NetNS == netnsPath {
			if pn, err := n.cachedResult(podID, netnsPath); err == nil {
				return pn, nil
			}
		}
		if err := n.Teardown(ctx, podID, att.NetNS); err != nil {
			return PodNetwork{}, err
		}
	}
	list := n.noPorts
	rt := n.runtimeConf(podID, netnsPath)
	var pms []PortMapping
	for _, p := range ports {
		if p.HostPort <= 0 {
			continue
		}
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		pms = append(pms, p)
	}
	if len(pms) > 0 {
		list = n.full
		rt.CapabilityArgs = map[string]any{"portMappings": pms}
	}
	res, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		// Give back what the plugins that ran took (the address).
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return PodNetwork{}, fmt.Errorf("networking: setting up pod %s: %w", podID, err)
	}
	pn, err := podNetwork(res)
	if err != nil {
		_ = n.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt)
		return PodNetwork{}, fmt.Errorf("networking: setting up pod %s: %w", podID, err)
	}
	return pn, nil
}

// Status returns the address Setup gave pod sandbox podID, from libcni's
// cache (no plugin runs), and whether it has one.
func (n *Network) Status(podID string) (PodNetwork, bool) {
	att := n.attachment(podID)
	if att == nil {
		return PodNetwork{}, false
	}
	pn, err := n.cachedResult(podID, att.NetNS)
	return pn, err == nil
}

// attachment is libcni's cached record of podID on this network, or nil.
func (n *Network) attachment(podID string) *libcni.NetworkAttachment {
	atts, err := n.cni.GetCachedAttachments(podID)
	if err != nil {
		return nil
	}
	for _, a := range atts {
		if a.Network == NetworkName && a.IfName == PodInterface {
			return a
		}
	}
	return nil
}

// cachedResult is the cached result of podID's setup, once the pod's
// interface is confirmed to still be in netnsPath.
func (n *Network) cachedResult(podID, netnsPath string) (PodNetwork, error) {
	list := n.full
	if list == nil {
		list = &libcni.NetworkConfigList{Name: NetworkName, CNIVersion: cniVersion}
	}
	res, err := n.cni.GetNetworkListCachedResult(list, n.runtimeConf(podID, netnsPath))
	if err != nil || res == nil {
		return PodNetwork{}, fmt.Errorf("no cached result: %v", err)
	}
	pn, err := podNetwork(res)
	if err != nil {
		return PodNetwork{}, err
	}
	err = InNetNS(netnsPath, func() error {
		link, err := netlink.LinkByName(PodInterface)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == pn.IPv4 {
				return nil
			}
		}
		return fmt.Errorf("%s has lost %s", PodInterface, pn.IPv4)
	})
	return pn, err
}

func podNetwork(res types.Result) (PodNetwork, error) {
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return PodNetwork{}, err
	}
	for _, ipc := range cur.IPs {
		ip, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		ip = ip.Unmap()
		ones, _ := ipc.Address.Mask.Size()
		pn := PodNetwork{IPv4: ip, Prefix: netip.PrefixFrom(ip, ones)}
		if gw, ok := netip.AddrFromSlice(ipc.Gateway); ok {
			pn.Gateway = gw.Unmap()
		}
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(cur.Interfaces) {
			pn.Interface = cur.Interfaces[*ipc.Interface].Name
			pn.MAC = cur.Interfaces[*ipc.Interface].Mac
		}
		return pn, nil
	}
	return PodNetwork{}, errors.New("the plugins gave the pod no IPv4 address")
}

// Teardown detaches pod sandbox podID from the pod network: its
// interface, its host ports and its address go. It runs the plugins as
// Setup ran them (from libcni's cache); netnsPath may be empty or gone
// already. Tearing down a pod that is not set up does nothing.
func (n *Network) Teardown(ctx context.Context, podID, netnsPath string) error {
	if err := checkID(podID); err != nil {
		return err
	}
	var list *libcni.NetworkConfigList
	rt := n.runtimeConf(podID, netnsPath)
	if att := n.attachment(podID); att != nil {
		if l, err := libcni.ConfListFromBytes(att.Config); err == nil {
			list = l
			rt.CapabilityArgs = att.CapabilityArgs
		}
		if rt.NetNS == "" {
			rt.NetNS = att.NetNS
		}
	} else if !n.reserved(podID) {
		return nil // nothing of it is left
	}
	if list == nil {
		// No record of how it was set up: every plugin cleans up what it
		// finds by the pod's ID.
		if n.full == nil {
			return fmt.Errorf("networking: pod %s has an address but no record of its setup, and no pod CIDR is configured", podID)
		}
		list = n.full
	}
	if rt.NetNS != "" && !IsNetNS(rt.NetNS) {
		rt.NetNS = "" // gone: the plugins only release what is outside it
	}
	if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("networking: tearing down pod %s: %w", podID, err)
	}
	return nil
}

// reserved tells whether host-local holds an address for podID.
func (n *Network) reserved(podID string) bool {
	dir := filepath.Join(n.ipamDir(), NetworkName)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue // lock, last_reserved_ip.0
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		s := bufio.NewScanner(f)
		if s.Scan() && strings.TrimSpace(s.Text()) == podID {
			f.Close()
			return true
		}
		f.Close()
	}
	return false
}
