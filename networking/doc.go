// Package networking is the pod network of one node (the course's
// "network add-on", chapter 14): the CNI bridge, the pods' network
// namespaces, the packet-filter rules the pod network needs and the routes
// to the other nodes' pods. The server hands each Node a /24 of
// --cluster-cidr as spec.podCIDR (server/controllers/nodeipam.go); the
// agent's kubelet builds a Network on that range and calls it for every
// pod sandbox.
//
// # The CNI plugins
//
// The pod network is a chain of the standard CNI plugins driven by libcni,
// with a network configuration built in code rather than read from
// /etc/cni/net.d:
//
//	bridge      the node's bridge (cni0), its first address the pods' gateway
//	            (isGateway), hairpin mode on, no ipMasq (SetupHost masquerades)
//	  host-local  addresses from the node's pod CIDR, reserved under
//	            <DataDir>/ipam (not /var/lib/cni)
//	portmap     hostPort (the portMappings capability); left out of the chain
//	            for pods without host ports
//
// bridge and host-local run inside labctl (builtin.go): libcni's plugin
// executor answers for them with the standard plugins' own packages
// (host-local's allocator and store, pkg/ip, pkg/ipam), which leaves the
// same interfaces, routes and reservation files as the plugins' binaries
// without starting two processes for every pod, 20-30 ms of CPU each on
// these machines (BENCHMARKS.md, "The node"). Config.MachineBridge runs
// the machine's binaries instead. portmap is always the machine's binary
// (Debian's and Ubuntu's containernetworking-plugins put the plugins in
// /usr/lib/cni, the upstream tarballs in /opt/cni/bin; Config.PluginDirs,
// default DefaultPluginDirs).
//
// The pod's lo is set up by NewNetNS itself, through netlink, as the
// loopback plugin would, for the same reason.
//
// libcni's cache, which records what each pod was given so that Teardown
// can undo it exactly, is under <DataDir>/cache too. The agent passes
// <data-dir>/agent/cni as DataDir.
//
// # The caller: the kubelet
//
//	net, err := networking.New(networking.Config{PodCIDR: node.spec.podCIDR,
//		ClusterCIDR: clusterCIDR, DataDir: dataDir + "/agent/cni"})
//	err = net.SetupHost()                            // at start (Setup does it once too)
//	path, err := net.NewNetNS(sandboxID)             // /run/labctl/netns/<sandboxID>
//	pod, err := net.Setup(ctx, sandboxID, path, ports) // pod.IPv4 is status.podIP
//	... the sandbox's containers join the namespace at path ...
//	pod, ok := net.Status(sandboxID)                 // after a restart: the address again
//	err = net.Teardown(ctx, sandboxID, path)         // on StopPodSandbox; again is harmless
//	err = net.RemoveNetNS(sandboxID)                 // on RemovePodSandbox; again is harmless
//	err = net.SyncRoutes(peers)                      // whenever the Nodes change
//	err = networking.Cleanup(ctx, cfg)               // labctl killall
//
// Network namespaces are bind-mounted files, RunDir/netns/<id> (RunDir is
// /run/labctl by default), as `ip netns` keeps them in /run/netns:
// NewNetNS, RemoveNetNS (safe to repeat), IsNetNS, OpenNetNS and InNetNS
// (run a function inside one, on a locked OS thread).
//
// Setup and Teardown are idempotent: Setup of a pod already set up in the
// same namespace returns its address from the cache, and Teardown of a
// pod not set up does nothing. Teardown works with the namespace already
// gone (the plugins then release what is outside it: the address and the
// host-port rules). Calls for different pods may run at once.
//
// # The host
//
// SetupHost turns on net.ipv4.ip_forward (these machines boot with 0),
// makes the bridge with the gateway address and turns on bridge netfilter
// on it (its nf_call_iptables, so Service rules see traffic between pods
// on one bridge; br_netfilter is built into these kernels), and keeps
// labctl's nftables table, inet labctl, through netlink (no iptables
// process per rule): forwarded traffic from or to the cluster CIDR is
// accepted, and traffic from the cluster CIDR to outside it masqueraded.
// `nft list table inet labctl` shows it with counters.
//
// # Between nodes
//
// SyncRoutes keeps one route per other node, to its pod CIDR via its
// node IP (the nodes share a link, as flannel's host-gw backend assumes),
// marked with routing protocol 108 (`ip route show proto 108`) so that it
// removes stale routes of its own and never touches any other.
//
// IPv4 only, for now.
package networking
