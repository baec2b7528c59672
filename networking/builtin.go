package networking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	"github.com/vishvananda/netlink"
)

// The built-in bridge (builtin.go). On these machines every process a pod
// start runs costs 20-30 ms of CPU just to start (BENCHMARKS.md, "The
// node"), and the machine's bridge plugin runs host-local as a second one:
// together a sixth of the CPU a pod start takes. So, unless
// Config.MachineBridge, the bridge plugin with host-local IPAM runs inside
// labctl: libcni still drives the chain (the same configuration, its
// cache, the results, portmap after it as the machine's binary), but its
// plugin executor (pluginExec) answers for "bridge" itself, with the
// standard plugins' own library packages: host-local's allocator and disk
// store (the same reservation files under DataDir/ipam), and pkg/ip,
// pkg/ipam and pkg/ns for the veth pair, the pod's address and its routes.
// It does what the bridge plugin does for the configuration confList
// writes, and refuses the options it does not implement:
//
//   - ADD: a veth pair, eth0 in the pod's namespace and veth<random> in the
//     node's, attached to the bridge with hairpin mode; an address from
//     host-local's allocator on eth0 with the configured routes through the
//     gateway; it waits, as the plugin does, until the bridge port is up.
//     The bridge, its gateway address and forwarding are SetupHost's (made
//     again if the bridge has gone).
//   - DEL: eth0 deleted in the namespace (gone already is fine), the
//     address released.
//
// Other commands (CHECK, GC, STATUS, VERSION), which labctl does not use,
// are refused.

// builtinBridgePath is what pluginExec.FindInPath answers for the bridge
// plugin: the marker ExecPlugin runs in-process.
const builtinBridgePath = "labctl:builtin/bridge"

// pluginExec is libcni's plugin executor: the bridge plugin runs in-process
// (builtinBridge), the others as the machine's binaries.
type pluginExec struct {
	*invoke.RawExec
	version.PluginDecoder
	n *Network
}

func newPluginExec(n *Network) *pluginExec {
	return &pluginExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, n: n}
}

func (e *pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	if plugin == "bridge" {
		return builtinBridgePath, nil
	}
	return e.RawExec.FindInPath(plugin, paths)
}

func (e *pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	if path != builtinBridgePath {
		return e.RawExec.ExecPlugin(ctx, path, stdin, environ)
	}
	args := cniArgs(environ)
	out, err := e.n.builtinBridge(ctx, args, stdin)
	if err != nil {
		// What a plugin prints on failure, as libcni reads it back.
		var te *types.Error
		if !errors.As(err, &te) {
			te = types.NewError(types.ErrInternal, err.Error(), "")
		}
		return nil, te
	}
	return out, nil
}

// bridgeArgs are the CNI_* variables of one call.
type bridgeArgs struct {
	Command, ContainerID, NetNS, IfName, Args string
}

// cniArgs reads the CNI_* variables from environ (the last of a name
// counts, as for a process).
func cniArgs(environ []string) bridgeArgs {
	var a bridgeArgs
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "CNI_COMMAND":
			a.Command = v
		case "CNI_CONTAINERID":
			a.ContainerID = v
		case "CNI_NETNS":
			a.NetNS = v
		case "CNI_IFNAME":
			a.IfName = v
		case "CNI_ARGS":
			a.Args = v
		}
	}
	return a
}

// bridgeConf is the part of the bridge plugin's configuration the built-in
// bridge reads; any other option of the plugin is refused.
type bridgeConf struct {
	types.NetConf
	BrName      string `json:"bridge"`
	IsGW        bool   `json:"isGateway"`
	IPMasq      bool   `json:"ipMasq"`
	HairpinMode bool   `json:"hairpinMode"`
	MTU         int    `json:"mtu"`
}

// builtinBridgeKeys are the configuration keys builtinBridge understands.
var builtinBridgeKeys = map[string]bool{
	"cniVersion": true, "name": true, "type": true, "ipam": true, "dns": true,
	"bridge": true, "isGateway": true, "ipMasq": true, "hairpinMode": true, "mtu": true,
	// What libcni adds: the capabilities asked for and the chain's
	// previous result (none: the bridge comes first).
	"runtimeConfig": true, "prevResult": true, "capabilities": true,
}

func loadBridgeConf(stdin []byte) (*bridgeConf, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(stdin, &keys); err != nil {
		return nil, fmt.Errorf("the bridge's configuration: %w", err)
	}
	for k := range keys {
		if !builtinBridgeKeys[k] {
			return nil, fmt.Errorf("the built-in bridge does not implement the option %q (set MachineBridge to run the machine's bridge plugin)", k)
		}
	}
	c := &bridgeConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, fmt.Errorf("the bridge's configuration: %w", err)
	}
	if c.IPAM.Type != "host-local" {
		return nil, fmt.Errorf("the built-in bridge runs host-local IPAM only, not %q", c.IPAM.Type)
	}
	if c.IPMasq {
		return nil, errors.New("the built-in bridge does not masquerade (ipMasq): SetupHost's rule does")
	}
	if !c.IsGW {
		return nil, errors.New("the built-in bridge always has the bridge as the pods' gateway (isGateway): SetupHost gives it the address")
	}
	if c.BrName == "" {
		c.BrName = DefaultBridgeName
	}
	return c, nil
}

// builtinBridge runs one call of the bridge plugin in-process and returns
// what the plugin would print.
func (n *Network) builtinBridge(ctx context.Context, a bridgeArgs, stdin []byte) ([]byte, error) {
	if a.Command != "ADD" && a.Command != "DEL" {
		return nil, fmt.Errorf("the built-in bridge does not implement CNI_COMMAND %q", a.Command)
	}
	conf, err := loadBridgeConf(stdin)
	if err != nil {
		return nil, err
	}
	ipamConf, _, err := allocator.LoadIPAMConfig(stdin, a.Args)
	if err != nil {
		return nil, err
	}
	if len(ipamConf.IPArgs) > 0 {
		return nil, errors.New("the built-in bridge does not take requested addresses (CNI_ARGS IP=)")
	}
	switch a.Command {
	case "ADD":
		res, err := n.bridgeAdd(ctx, a, conf, ipamConf)
		if err != nil {
			return nil, err
		}
		out, err := res.GetAsVersion(conf.CNIVersion)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	default:
		return nil, bridgeDel(a, ipamConf)
	}
}

// releaseAll gives back every address a's pod holds in ipamConf's ranges.
func releaseAll(a bridgeArgs, ipamConf *allocator.IPAMConfig) error {
	store, err := disk.New(ipamConf.Name, ipamConf.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for i := range ipamConf.Ranges {
		if err := allocator.NewIPAllocator(&ipamConf.Ranges[i], store, i).Release(a.ContainerID, a.IfName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *Network) bridgeAdd(ctx context.Context, a bridgeArgs, conf *bridgeConf, ipamConf *allocator.IPAMConfig) (_ *current.Result, err error) {
	br, err := n.bridgeLink(conf.BrName)
	if err != nil {
		return nil, err
	}
	netns, err := ns.GetNS(a.NetNS)
	if err != nil {
		return nil, fmt.Errorf("opening the network namespace %q: %w", a.NetNS, err)
	}
	defer netns.Close()

	// The veth pair: made in the pod's namespace, its peer moved out.
	var host, cont net.Interface
	err = netns.Do(func(hostNS ns.NetNS) error {
		var err error
		host, cont, err = ip.SetupVeth(a.IfName, conf.MTU, "", hostNS)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = netns.Do(func(ns.NetNS) error { return ip.DelLinkByName(a.IfName) })
		}
	}()
	hostVeth, err := netlink.LinkByName(host.Name)
	if err != nil {
		return nil, fmt.Errorf("finding %q: %w", host.Name, err)
	}
	if err := netlink.LinkSetMaster(hostVeth, br); err != nil {
		return nil, fmt.Errorf("attaching %q to the bridge %s: %w", host.Name, conf.BrName, err)
	}
	if err := netlink.LinkSetHairpin(hostVeth, conf.HairpinMode); err != nil {
		return nil, fmt.Errorf("hairpin mode on %q: %w", host.Name, err)
	}

	// The address, from host-local's allocator and store.
	store, err := disk.New(ipamConf.Name, ipamConf.DataDir)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	contIdx := 2
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: br.Attrs().Name, Mac: br.Attrs().HardwareAddr.String()},
			{Name: host.Name, Mac: host.HardwareAddr.String()},
			{Name: cont.Name, Mac: cont.HardwareAddr.String(), Sandbox: a.NetNS},
		},
		Routes: ipamConf.Routes,
		DNS:    conf.DNS,
	}
	defer func() {
		if err != nil {
			_ = releaseAll(a, ipamConf)
		}
	}()
	for i := range ipamConf.Ranges {
		ipc, err := allocator.NewIPAllocator(&ipamConf.Ranges[i], store, i).Get(a.ContainerID, a.IfName, nil)
		if err != nil {
			return nil, fmt.Errorf("allocating an address in range %d: %w", i, err)
		}
		ipc.Interface = &contIdx
		res.IPs = append(res.IPs, ipc)
	}
	err = netns.Do(func(ns.NetNS) error {
		// As the bridge plugin: tell the neighbours the new address's MAC.
		_ = writeSysctl("/proc/sys/net/ipv4/conf/"+a.IfName+"/arp_notify", "1")
		return ipam.ConfigureIface(a.IfName, res)
	})
	if err != nil {
		return nil, err
	}

	// The bridge port comes up as the veth's both ends are; the plugin
	// waits for it, up to 2.5 s.
	for _, wait := range []time.Duration{0, 10, 50, 200, 500, 1000, 1000} {
		if err := sleepCtx(ctx, wait*time.Millisecond); err != nil {
			return nil, err
		}
		if hostVeth, err = netlink.LinkByName(host.Name); err != nil {
			return nil, err
		}
		if hostVeth.Attrs().OperState == netlink.OperUp {
			break
		}
	}
	if st := hostVeth.Attrs().OperState; st != netlink.OperUp {
		return nil, fmt.Errorf("the bridge port %s is %s, not up", host.Name, st)
	}
	// The MACs as they are now: the bridge takes one of its ports' when
	// its first port comes.
	res.Interfaces[1].Mac = hostVeth.Attrs().HardwareAddr.String()
	if brNow, brErr := netlink.LinkByName(conf.BrName); brErr == nil {
		res.Interfaces[0].Mac = brNow.Attrs().HardwareAddr.String()
	}
	return res, nil
}

// bridgeLink is the node's bridge, made again by SetupHost if it has gone.
func (n *Network) bridgeLink(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	if err != nil && name == n.cfg.BridgeName {
		if err := n.SetupHost(); err != nil {
			return nil, err
		}
		link, err = netlink.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("the bridge %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("%s is a %s, not a bridge", name, link.Type())
	}
	return link, nil
}

func bridgeDel(a bridgeArgs, ipamConf *allocator.IPAMConfig) error {
	if a.NetNS != "" {
		err := ns.WithNetNSPath(a.NetNS, func(ns.NetNS) error {
			if err := ip.DelLinkByName(a.IfName); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
				return err
			}
			return nil
		})
		var gone ns.NSPathNotExistErr
		if err != nil && !errors.As(err, &gone) {
			return err
		}
	}
	return releaseAll(a, ipamConf)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
