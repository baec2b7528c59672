// Command nodebench measures labctl's node the way BENCHMARKS.md reports
// it. It runs two groups of steps (-steps, both by default), each on a
// node of its own: `labctl server` with its node started on a fresh data
// directory, with the busybox test image (internal/testimage) in the
// images folder, and CoreDNS's upstream resolver a DNS server of
// nodebench's own on a loopback address (so that nothing asks the
// machine's resolvers).
//
// The node steps (-steps node) measure
//
//  1. launch to /readyz and launch to the Node's Ready condition (both
//     polled every 20 ms);
//  2. pod start latency: pods created one after another, each timed from
//     the Create call to status.phase Running as a watch delivers it;
//  3. a Deployment of 100 replicas, from its creation to readyReplicas
//     100;
//  4. memory (RSS, and PSS from /proc/<pid>/smaps_rollup) of labctl, its
//     containerd and the containerd-shim-runc-v2 processes of namespace
//     labctl, idle and with the 100 pods running;
//  5. CPU (utime+stime from /proc/<pid>/stat) of the same processes over
//     30 s, idle and with the 100 pods.
//
// For steps 2 and 3 it also counts the CPU time the node's processes
// used (labctl, the CNI plugins it runs, containerd, the shims, runc, the
// containers) and how busy the machine's cores were: on a 2-core machine
// shared with others, that is what the latencies mostly depend on.
//
// The services steps (-steps services, services.go) measure Services and
// cluster DNS from pods: launch to the first cluster name resolving in a
// pod, Service creation to the first answered request, an endpoint
// becoming Ready to the first answered request, and DNS queries/s and
// latency from a pod to the in-process CoreDNS.
//
// After each group it deletes every pod, stops the server and removes
// what the node left on the machine (the pod network, the proxy's table,
// the /labctl cgroups), as the e2e tests' cleanup does.
//
// It needs root. The node owns machine-wide things (the cni0 bridge, port
// 10250, /run/labctl/containerd, the nftables tables labctl and
// labctl-proxy), so only one labctl node may run on a machine: nodebench
// holds an exclusive flock on /tmp/labctl-node.lock for the whole run, as
// the e2e node tests do, and waits for any other labctl node it sees to
// end.
//
//	go run ./scripts/nodebench                      # builds labctl into a temp dir
//	scripts/build.sh /tmp/labctl && go run ./scripts/nodebench -labctl /tmp/labctl
//	go run ./scripts/nodebench -labctl /tmp/labctl -steps services
//	go run ./scripts/nodebench -labctl /tmp/labctl -json > node.json
//	go run ./scripts/nodebench -labctl /tmp/labctl -cpuprofile /tmp/prof -logs /tmp/logs
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"labctl/agent/proxy"
	"labctl/internal/testimage"
	"labctl/networking"
)

const (
	// nodeName is the node the benchmark's server registers.
	nodeName = "bench"
	// image is the tag the test image is imported under; pods name it
	// "busybox:bench".
	image = "docker.io/library/busybox:bench"
	// lockPath is the machine-wide lock of labctl nodes (e2e/node_test.go
	// takes it too).
	lockPath = "/tmp/labctl-node.lock"
	// pollEvery is how often launch to /readyz and to node Ready are
	// polled.
	pollEvery = 20 * time.Millisecond
	// settle is how long the node is left alone before memory is read.
	settle = 20 * time.Second
	// cpuWindow is how long CPU time is counted.
	cpuWindow = 30 * time.Second
	// ticksPerSecond is USER_HZ on Linux, the unit of /proc/<pid>/stat.
	ticksPerSecond = 100
)

// options are the command's flags.
type options struct {
	labctl         string
	json           bool
	steps          map[string]bool
	pods           int
	replicas       int
	services       int
	dnsSeconds     float64
	cpuProfile     string
	profileSeconds int
	logs           string
}

// Step groups (-steps): each runs on a node of its own, launched on a
// fresh data directory, so that neither's figures carry the other's
// pods.
const (
	stepsNode     = "node"     // launch to Ready, pod starts, the Deployment, memory and CPU (main.go)
	stepsServices = "services" // Services and cluster DNS measured from pods (services.go)
)

// parseSteps reads -steps: a comma-separated list of step groups.
func parseSteps(list string) (map[string]bool, error) {
	steps := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		switch s = strings.TrimSpace(s); s {
		case stepsNode, stepsServices:
			steps[s] = true
		case "":
		default:
			return nil, fmt.Errorf("-steps: unknown step group %q (want %s, %s or both)", s, stepsNode, stepsServices)
		}
	}
	if len(steps) == 0 {
		return nil, errors.New("-steps: no step group")
	}
	return steps, nil
}

func main() {
	var o options
	flag.StringVar(&o.labctl, "labctl", "", "the labctl binary to start (default: build labctl into a temp dir with scripts/build.sh)")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	steps := flag.String("steps", stepsNode+","+stepsServices, "the step groups to run, comma-separated: "+
		stepsNode+" (launch, pod starts, the Deployment, memory, CPU) and "+stepsServices+" (Services and cluster DNS from pods)")
	flag.IntVar(&o.pods, "pods", 30, "pods started one after another for the pod start latency")
	flag.IntVar(&o.replicas, "replicas", 100, "replicas of the Deployment")
	flag.IntVar(&o.services, "services", 10, "Services created one after another, and pods made Ready one after another, in the services steps")
	flag.Float64Var(&o.dnsSeconds, "dns-seconds", 5, "seconds of DNS load from a pod, for each number of clients")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the server's CPU profiles of the pod start and Deployment steps into this directory")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 20, "with -cpuprofile: length of each profile, from the start of its step")
	flag.StringVar(&o.logs, "logs", "", "keep the server's and its containerd's logs in this directory, in a folder per step group")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "nodebench: the node needs root: run it as root (sudo -E go run ./scripts/nodebench)")
		os.Exit(2)
	}
	if o.pods < 1 || o.replicas < 1 || o.services < 1 || o.services > 200 || o.dnsSeconds <= 0 {
		fmt.Fprintln(os.Stderr, "nodebench: -pods and -replicas must be at least 1, -services 1 to 200, -dns-seconds above 0")
		os.Exit(2)
	}
	var err error
	if o.steps, err = parseSteps(*steps); err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodebench:", err)
		os.Exit(1)
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return
	}
	r.print(os.Stdout)
}

// progress prints a progress line on stderr, with the time since start.
var started = time.Now()

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

// report is everything nodebench measures; durations are in seconds.
type report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Labctl  string   `json:"labctl"`
	Steps   []string `json:"steps"`

	LaunchToReadyz    float64 `json:"launch_to_readyz_s"`
	LaunchToNodeReady float64 `json:"launch_to_node_ready_s"`

	PodStart podStart `json:"pod_start"`
	Deploy   deploy   `json:"deployment"`

	MemoryIdle   memSample `json:"memory_idle"`
	MemoryLoaded memSample `json:"memory_with_pods"`
	CPUIdle      cpuSample `json:"cpu_idle"`
	CPULoaded    cpuSample `json:"cpu_with_pods"`

	// LoadAverage is the machine's 1-minute load average at the start;
	// the steps' MachineBusy fields say how busy all its cores were
	// (this benchmark included), in percent.
	LoadAverage float64  `json:"load_average"`
	Profiles    []string `json:"profiles,omitempty"`

	// Services is the services steps' (services.go).
	Services *servicesReport `json:"services,omitempty"`
}

// podStart is step 2: pods started one at a time.
type podStart struct {
	Pods int `json:"pods"`
	// Create call to phase Running, as the watch delivers it.
	P50 float64 `json:"p50_s"`
	P90 float64 `json:"p90_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
	// The two parts: Create call to the pod bound to the node (the
	// scheduler), and bound to Running (the kubelet, containerd, runc,
	// CNI and the status write).
	BoundP50   float64 `json:"create_to_bound_p50_s"`
	BoundMax   float64 `json:"create_to_bound_max_s"`
	RunningP50 float64 `json:"bound_to_running_p50_s"`
	RunningMax float64 `json:"bound_to_running_max_s"`
	// Delete calls to every pod gone from the API and from the node.
	DeleteAll float64 `json:"delete_to_gone_s"`
	// NodeCPU is the CPU time the node's processes (labctl, containerd,
	// the shims and what they ran, the containers) used for the starts.
	NodeCPU     cpuTime `json:"node_cpu"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

// deploy is step 3: a Deployment of many replicas.
type deploy struct {
	Replicas int `json:"replicas"`
	// From the Create call: all pods created, all bound, all Running
	// (as the pod watch shows them), the Deployment's readyReplicas at
	// Replicas.
	AllCreated   float64 `json:"all_created_s"`
	AllBound     float64 `json:"all_bound_s"`
	FirstRunning float64 `json:"first_running_s"`
	AllRunning   float64 `json:"all_running_s"`
	// AllPodsReady: every pod's Ready condition True, as the watch
	// shows; AllReady: the Deployment's status.readyReplicas.
	AllPodsReady float64 `json:"all_pods_ready_s"`
	AllReady     float64 `json:"all_ready_s"`
	// NodeCPU is the CPU time the node's processes used meanwhile, as
	// PodStart's.
	NodeCPU     cpuTime `json:"node_cpu"`
	MachineBusy float64 `json:"machine_busy_pct"`
}

// cpuTime is CPU time used by the node's processes, in seconds; each
// "Children" is what the processes' children used that they waited for:
// the CNI plugins for labctl, `containerd-shim-runc-v2 start` for
// containerd, runc for the shims.
type cpuTime struct {
	Total              float64 `json:"total_s"`
	Labctl             float64 `json:"labctl_s"`
	LabctlChildren     float64 `json:"labctl_children_s"`
	Containerd         float64 `json:"containerd_s"`
	ContainerdChildren float64 `json:"containerd_children_s"`
	Shims              float64 `json:"shims_s"`
	ShimsChildren      float64 `json:"shims_children_s"`
	Containers         float64 `json:"containers_s"`
}

func (c cpuTime) String() string {
	return fmt.Sprintf("labctl %.2f + its children (CNI plugins) %.2f, containerd %.2f + its children %.2f, shims %.2f + runc %.2f, containers %.2f",
		c.Labctl, c.LabctlChildren, c.Containerd, c.ContainerdChildren, c.Shims, c.ShimsChildren, c.Containers)
}

// procMem is the memory of a group of processes, in bytes.
type procMem struct {
	Count int   `json:"count"`
	RSS   int64 `json:"rss_bytes"`
	PSS   int64 `json:"pss_bytes"`
	// RSS split into anonymous memory (the heap, stacks) and file-backed
	// pages (mostly the binary's), from /proc/<pid>/status.
	Anon int64 `json:"rss_anon_bytes"`
	File int64 `json:"rss_file_bytes"`
}

func (m *procMem) add(o procMem) {
	m.Count += o.Count
	m.RSS += o.RSS
	m.PSS += o.PSS
	m.Anon += o.Anon
	m.File += o.File
}

// memSample is step 4 at one moment.
type memSample struct {
	Labctl     procMem `json:"labctl"`
	Containerd procMem `json:"containerd"`
	Shims      procMem `json:"shims"`
	// Pause is always empty: labctl runs no pause containers (a pod's
	// sandbox is its namespaces, pinned by bind mounts).
	Pause procMem `json:"pause"`
	// Other is any other process under labctl (runc, CNI plugins caught
	// while they run).
	Other procMem `json:"other"`
	// Total is labctl, containerd, the shims and Other: the node's own
	// processes.
	Total procMem `json:"total"`
	// Containers are the pods' own processes (sleep 3600), outside Total.
	Containers procMem `json:"containers"`
	Pods       int     `json:"pods"`
}

// cpuSample is step 5: shares of one core, in percent, over Window
// seconds. "Children" is the CPU time of children the process waited
// for in the window (cutime+cstime): CNI plugins for labctl, nothing
// much for containerd (the shims are not its children once started).
type cpuSample struct {
	Window             float64 `json:"window_s"`
	Pods               int     `json:"pods"`
	ShimCount          int     `json:"shims"`
	Labctl             float64 `json:"labctl_pct"`
	LabctlChildren     float64 `json:"labctl_children_pct"`
	Containerd         float64 `json:"containerd_pct"`
	ContainerdChildren float64 `json:"containerd_children_pct"`
	Shims              float64 `json:"shims_pct"`
	MachineBusy        float64 `json:"machine_busy_pct"`
}

// node is the running server with its node.
type node struct {
	dir, dataDir, kubeconfig string
	cmd                      *exec.Cmd
	log                      *os.File
	exited                   chan struct{}
	cs                       *kubernetes.Clientset
	cfg                      *rest.Config
	// foreign are the shims of namespace labctl that ran before the
	// server started: not the node's.
	foreign map[int]bool
	// resolvConf is the server's --resolv-conf: nodebench's upstream
	// resolver on loopback, so that CoreDNS never asks the machine's.
	resolvConf string
}

func run(ctx context.Context, o options) (_ *report, err error) {
	r := &report{Date: time.Now().Format("2006-01-02"), Machine: machine(), LoadAverage: loadAverage()}
	for _, s := range []string{stepsNode, stepsServices} {
		if o.steps[s] {
			r.Steps = append(r.Steps, s)
		}
	}

	dir, err := os.MkdirTemp("", "nodebench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	labctl := o.labctl
	if labctl == "" {
		labctl = filepath.Join(dir, "labctl")
		progress("building labctl into %s", labctl)
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			return nil, fmt.Errorf("go env GOMOD: %w", err)
		}
		build := exec.CommandContext(ctx, "bash", filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), "scripts", "build.sh"), labctl)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("go build labctl (run nodebench inside the labctl module, or pass -labctl): %w", err)
		}
	}
	if v, err := exec.Command(labctl, "version").Output(); err == nil {
		r.Labctl = strings.TrimSpace(string(v))
	}

	progress("waiting for %s", lockPath)
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	// A blocking flock, in a goroutine so that Ctrl-C still ends the wait.
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(lock.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", lockPath, err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	progress("holding %s", lockPath)
	if err := waitOtherNodes(ctx); err != nil {
		return nil, err
	}
	// CoreDNS runs in the server: its upstream is a resolver of
	// nodebench's own on loopback, never the machine's.
	resolvConf, stopUpstream, err := startUpstream(dir)
	if err != nil {
		return nil, err
	}
	defer stopUpstream()

	if o.steps[stepsNode] {
		if err := runNodeSteps(ctx, o, labctl, filepath.Join(dir, stepsNode), resolvConf, r); err != nil {
			return nil, err
		}
	}
	if o.steps[stepsServices] {
		if r.Services, err = runServiceSteps(ctx, o, labctl, filepath.Join(dir, stepsServices), resolvConf); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// startUpstream runs the DNS resolver that the server's CoreDNS forwards
// names outside the cluster to, on a loopback address at port 53
// (resolv.conf has no ports), and writes a resolv.conf naming it into
// dir. It answers every name with NXDOMAIN: the pods ask only for cluster
// names, and CoreDNS's loop check asks for a random one. The function it
// returns stops it.
func startUpstream(dir string) (resolvConf string, stop func(), err error) {
	var pc net.PacketConn
	var addr string
	for i := 0; i < 20 && pc == nil; i++ {
		addr = fmt.Sprintf("127.%d.%d.%d", 1+mrand.IntN(250), 1+mrand.IntN(250), 1+mrand.IntN(250))
		pc, err = net.ListenPacket("udp4", net.JoinHostPort(addr, "53"))
	}
	if pc == nil {
		return "", nil, fmt.Errorf("no loopback address for the upstream resolver: %w", err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	resolvConf = filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+addr+"\n"), 0o644); err != nil {
		srv.Shutdown()
		return "", nil, err
	}
	progress("CoreDNS's upstream resolver: %s:53 (%s)", addr, resolvConf)
	return resolvConf, func() { srv.Shutdown() }, nil
}

// newNode prepares a node in dir (made if missing): its data directory
// with the test image in the images folder.
func newNode(dir, resolvConf string) (*node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := &node{dir: dir, dataDir: filepath.Join(dir, "data"), kubeconfig: filepath.Join(dir, "kubeconfig"), resolvConf: resolvConf}
	return n, n.writeImage()
}

// finish ends a node's steps: the end of the server's log when they
// failed (*err), the cleanup, and with -logs the logs, kept in
// <logs>/<group>.
func (n *node) finish(o options, group string, err *error) {
	if *err != nil {
		fmt.Fprintf(os.Stderr, "the server's log, last lines:\n%s", n.logTail(40))
	}
	if cerr := n.cleanup(); cerr != nil {
		*err = errors.Join(*err, cerr)
	}
	if o.logs != "" {
		if lerr := n.keepLogs(filepath.Join(o.logs, group)); lerr != nil {
			*err = errors.Join(*err, lerr)
		}
	}
}

// runNodeSteps runs the node's steps 1 to 5 (see the package comment) on
// a node of their own in dir.
func runNodeSteps(ctx context.Context, o options, labctl, dir, resolvConf string, r *report) (err error) {
	n, err := newNode(dir, resolvConf)
	if err != nil {
		return err
	}
	launched, err := n.start(labctl)
	if err != nil {
		return err
	}
	defer n.finish(o, stepsNode, &err)

	// 1. Launch to /readyz and to node Ready.
	if r.LaunchToReadyz, r.LaunchToNodeReady, err = n.waitReady(ctx, launched); err != nil {
		return err
	}
	pid := n.procs()

	// 4 and 5, idle.
	progress("idle: settling for %v", settle)
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	if r.MemoryIdle, err = memory(pid); err != nil {
		return err
	}
	progress("idle memory: total PSS %s (labctl PSS %s, RSS %s; containerd PSS %s)", mib(r.MemoryIdle.Total.PSS),
		mib(r.MemoryIdle.Labctl.PSS), mib(r.MemoryIdle.Labctl.RSS), mib(r.MemoryIdle.Containerd.PSS))
	progress("idle CPU: counting for %v", cpuWindow)
	if r.CPUIdle, err = cpuShare(ctx, pid, cpuWindow); err != nil {
		return err
	}
	progress("idle CPU: labctl %.2f%%, containerd %.2f%% of a core", r.CPUIdle.Labctl+r.CPUIdle.LabctlChildren,
		r.CPUIdle.Containerd+r.CPUIdle.ContainerdChildren)

	// 2. Pod start latency.
	stopProfile := n.profile(ctx, o, "pods", r)
	busy := machineBusy()
	if r.PodStart, err = n.podStartLatency(ctx, o.pods, busy); err != nil {
		return err
	}
	stopProfile()

	// 3. The Deployment.
	stopProfile = n.profile(ctx, o, "deployment", r)
	busy = machineBusy()
	nodeCPU := nodeCPUTime(pid)
	if r.Deploy, err = n.deployment(ctx, o.replicas); err != nil {
		return err
	}
	r.Deploy.MachineBusy, r.Deploy.NodeCPU = busy(), nodeCPU()
	stopProfile()

	// 4 and 5, with the pods.
	progress("with %d pods: settling for %v", o.replicas, settle)
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	if r.MemoryLoaded, err = memory(pid); err != nil {
		return err
	}
	progress("memory with %d pods: total PSS %s (labctl %s, containerd %s, %d shims %s)", r.MemoryLoaded.Pods,
		mib(r.MemoryLoaded.Total.PSS), mib(r.MemoryLoaded.Labctl.PSS), mib(r.MemoryLoaded.Containerd.PSS),
		r.MemoryLoaded.Shims.Count, mib(r.MemoryLoaded.Shims.PSS))
	progress("CPU with %d pods: counting for %v", o.replicas, cpuWindow)
	if r.CPULoaded, err = cpuShare(ctx, pid, cpuWindow); err != nil {
		return err
	}
	progress("CPU with %d pods: labctl %.2f%%, containerd %.2f%%, shims %.2f%% of a core", r.CPULoaded.Pods,
		r.CPULoaded.Labctl+r.CPULoaded.LabctlChildren, r.CPULoaded.Containerd+r.CPULoaded.ContainerdChildren, r.CPULoaded.Shims)
	return nil
}

// waitOtherNodes waits while another labctl node runs on the machine
// (one that does not take the lock, such as an older e2e test binary).
func waitOtherNodes(ctx context.Context) error {
	said := 0
	for {
		pids := otherNodes()
		if len(pids) == 0 {
			return nil
		}
		if said != pids[0] {
			progress("waiting: another labctl node runs (pid %d); only one may run on a machine", pids[0])
			said = pids[0]
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}

// otherNodes lists the labctl processes that run a node: `labctl agent`,
// or `labctl server` without --disable-agent.
func otherNodes() []int {
	var out []int
	for _, p := range processes() {
		if p.comm != "labctl" || p.pid == os.Getpid() || len(p.args) < 2 {
			continue
		}
		switch {
		case p.args[1] == "agent":
		case p.args[1] == "server" && !containsArg(p.args, "--disable-agent"):
		default:
			continue
		}
		out = append(out, p.pid)
	}
	sort.Ints(out)
	return out
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a || strings.HasPrefix(x, a+"=") {
			return true
		}
	}
	return false
}

// writeImage writes the busybox test image, tagged image, as a tarball
// into <data-dir>/agent/images, which the node imports before any pod
// starts.
func (n *node) writeImage() error {
	img, err := testimage.Busybox("")
	if err != nil {
		return err
	}
	images := filepath.Join(n.dataDir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		return err
	}
	tag, err := name.NewTag(image)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(filepath.Join(images, "busybox.tar"), tag, img)
}

// start launches `labctl server` with its node, on a free port, and
// returns the moment it did.
func (n *node) start(labctl string) (time.Time, error) {
	port, err := freePort()
	if err != nil {
		return time.Time{}, err
	}
	config := filepath.Join(n.dir, "config.yaml")
	if err := os.WriteFile(config, []byte("\n"), 0o644); err != nil {
		return time.Time{}, err
	}
	n.log, err = os.Create(filepath.Join(n.dir, "server.log"))
	if err != nil {
		return time.Time{}, err
	}
	n.cmd = exec.Command(labctl, "server", "--data-dir", n.dataDir, "--write-kubeconfig", n.kubeconfig,
		"--node-name", nodeName, "--config", config, "--https-listen-port", strconv.Itoa(port), "--resolv-conf", n.resolvConf)
	// The machine's LABCTL_* variables must not change the server.
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LABCTL_") {
			n.cmd.Env = append(n.cmd.Env, e)
		}
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	// Should nodebench die, the server goes with it.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if n.foreign = foreignShims(); len(n.foreign) > 0 {
		var pids []int
		for pid := range n.foreign {
			pids = append(pids, pid)
		}
		sort.Ints(pids)
		progress("%d shims of namespace labctl run already, left by earlier nodes (not counted): pids %v", len(pids), pids)
	}
	progress("starting %s server --node-name %s --https-listen-port %d", labctl, nodeName, port)
	launched := time.Now()
	if err := n.cmd.Start(); err != nil {
		return time.Time{}, err
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.exited) }()
	return launched, nil
}

// waitReady polls /readyz, then the Node's Ready condition, every
// pollEvery, and returns the time from launched to each, in seconds.
func (n *node) waitReady(ctx context.Context, launched time.Time) (toReadyz, toNodeReady float64, err error) {
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	deadline := time.After(90 * time.Second)
	var poll *kubernetes.Clientset
	for {
		if poll == nil {
			if cfg, err := clientcmd.BuildConfigFromFlags("", n.kubeconfig); err == nil {
				n.cfg = rest.CopyConfig(cfg)
				n.cfg.QPS, n.cfg.Burst = -1, 200
				n.cfg.ContentType = "application/vnd.kubernetes.protobuf"
				n.cs, _ = kubernetes.NewForConfig(n.cfg)
				cfg.Timeout = time.Second
				poll, _ = kubernetes.NewForConfig(cfg)
			}
		}
		if poll != nil && toReadyz == 0 {
			body, err := poll.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			if err == nil && string(body) == "ok" {
				toReadyz = time.Since(launched).Seconds()
				progress("launch to /readyz: %.3f s", toReadyz)
			}
		}
		if toReadyz != 0 {
			if nd, err := poll.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err == nil && nodeReady(nd) {
				toNodeReady = time.Since(launched).Seconds()
				progress("launch to node Ready: %.3f s", toNodeReady)
				return toReadyz, toNodeReady, nil
			}
		}
		select {
		case <-tick.C:
		case <-n.exited:
			return 0, 0, fmt.Errorf("labctl server exited before its node was Ready (%v)", n.cmd.ProcessState)
		case <-deadline:
			return 0, 0, errors.New("the node was not Ready 90 s after launch")
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

func nodeReady(nd *corev1.Node) bool {
	for _, c := range nd.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podSpec is every benchmark pod's spec: the imported image, sleeping.
// The short grace period only makes deletion quick (sleep as PID 1
// ignores SIGTERM).
func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers: []corev1.Container{{Name: "sleep", Image: "busybox:bench",
			ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"}}},
	}
}

// podWatch watches the pods in namespace default with the label
// app=<app>, from now on, across the server's ends of watches.
func (n *node) podWatch(ctx context.Context, app string) (watch.Interface, error) {
	sel := "app=" + app
	pods := n.cs.CoreV1().Pods(metav1.NamespaceDefault)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	return watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return pods.Watch(ctx, o)
		}})
}

// podStartLatency creates count pods one after another, each once the
// one before runs, and times each from its Create call to the watch
// showing it Running; then it deletes them and waits until they are gone.
func (n *node) podStartLatency(ctx context.Context, count int, busy func() float64) (podStart, error) {
	const app = "nodebench-seq"
	w, err := n.podWatch(ctx, app)
	if err != nil {
		return podStart{}, err
	}
	defer w.Stop()
	progress("pod start: %d pods, one after another", count)
	var total, toBound, toRunning []time.Duration
	pods := n.cs.CoreV1().Pods(metav1.NamespaceDefault)
	nodeCPU := nodeCPUTime(n.procs())
	for i := 0; i < count; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("seq-%02d", i), Labels: map[string]string{"app": app}}, Spec: podSpec()}
		start := time.Now()
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return podStart{}, fmt.Errorf("create pod %s: %w", p.Name, err)
		}
		var bound time.Duration
		timeout := time.After(60 * time.Second)
	wait:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					return podStart{}, errors.New("the pod watch ended")
				}
				got, isPod := ev.Object.(*corev1.Pod)
				if !isPod || got.Name != p.Name {
					continue
				}
				if bound == 0 && got.Spec.NodeName != "" {
					bound = time.Since(start)
				}
				if got.Status.Phase == corev1.PodRunning {
					break wait
				}
				if got.Status.Phase == corev1.PodFailed || got.Status.Phase == corev1.PodSucceeded {
					return podStart{}, fmt.Errorf("pod %s ended: %s %s", p.Name, got.Status.Reason, got.Status.Message)
				}
			case <-timeout:
				return podStart{}, fmt.Errorf("pod %s not Running 60 s after its creation: %s", p.Name, n.describePod(ctx, p.Name))
			case <-ctx.Done():
				return podStart{}, ctx.Err()
			}
		}
		d := time.Since(start)
		total, toBound, toRunning = append(total, d), append(toBound, bound), append(toRunning, d-bound)
		progress("  pod %s: Running %.3f s after Create (bound after %.3f s)", p.Name, d.Seconds(), bound.Seconds())
	}
	ps := podStart{Pods: count,
		P50: pct(total, 50), P90: pct(total, 90), P99: pct(total, 99), Max: pct(total, 100),
		BoundP50: pct(toBound, 50), BoundMax: pct(toBound, 100), RunningP50: pct(toRunning, 50), RunningMax: pct(toRunning, 100),
		NodeCPU: nodeCPU(), MachineBusy: busy()}
	progress("pod start: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s", ps.P50, ps.P90, ps.P99, ps.Max)

	progress("deleting the %d pods", count)
	start := time.Now()
	for i := 0; i < count; i++ {
		if err := pods.Delete(ctx, fmt.Sprintf("seq-%02d", i), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return ps, err
		}
	}
	if err := n.waitNoPods(ctx, 90*time.Second); err != nil {
		return ps, err
	}
	ps.DeleteAll = time.Since(start).Seconds()
	progress("the %d pods are gone %.3f s after the deletes", count, ps.DeleteAll)
	return ps, nil
}

func isPodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describePod says what a pod that does not run shows.
func (n *node) describePod(ctx context.Context, name string) string {
	p, err := n.cs.CoreV1().Pods(metav1.NamespaceDefault).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	s := fmt.Sprintf("node %q, phase %s", p.Spec.NodeName, p.Status.Phase)
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Waiting != nil {
			s += fmt.Sprintf(", container %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
		}
	}
	return s
}

// waitNoPods waits until the API holds no pod and the node no pod
// directory.
func (n *node) waitNoPods(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		l, err := n.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		dirs, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "pods"))
		if err == nil && len(l.Items) == 0 && len(dirs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			left := -1
			if err == nil {
				left = len(l.Items)
			}
			return fmt.Errorf("after %v the API still has %d pods and the node %d pod directories", limit, left, len(dirs))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// deployment creates a Deployment of replicas pods and times it until
// readyReplicas is replicas.
func (n *node) deployment(ctx context.Context, replicas int) (deploy, error) {
	const app = "nodebench-deploy"
	w, err := n.podWatch(ctx, app)
	if err != nil {
		return deploy{}, err
	}
	defer w.Stop()
	deployments := n.cs.AppsV1().Deployments(metav1.NamespaceDefault)
	dw, err := deployments.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + app})
	if err != nil {
		return deploy{}, err
	}
	defer dw.Stop()
	d := deploymentOf(app, replicas, map[string]string{"app": app}, podSpec())
	progress("Deployment of %d replicas", replicas)
	start := time.Now()
	if _, err := deployments.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return deploy{}, err
	}
	res := deploy{Replicas: replicas}
	created, bound, running, podReady := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	since := func() float64 { return time.Since(start).Seconds() }
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
	ready := 0
	for res.AllReady == 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return res, errors.New("the pod watch ended")
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			created[p.Name] = true
			if len(created) == replicas && res.AllCreated == 0 {
				res.AllCreated = since()
			}
			if p.Spec.NodeName != "" && !bound[p.Name] {
				bound[p.Name] = true
				if len(bound) == replicas {
					res.AllBound = since()
				}
			}
			if p.Status.Phase == corev1.PodRunning && !running[p.Name] {
				running[p.Name] = true
				if len(running) == 1 {
					res.FirstRunning = since()
				}
				if len(running) == replicas {
					res.AllRunning = since()
				}
			}
			if isPodReady(p) && !podReady[p.Name] {
				podReady[p.Name] = true
				if len(podReady) == replicas {
					res.AllPodsReady = since()
				}
			}
		case ev, ok := <-dw.ResultChan():
			if !ok {
				return res, errors.New("the Deployment watch ended")
			}
			if got, isDeploy := ev.Object.(*appsv1.Deployment); isDeploy {
				ready = int(got.Status.ReadyReplicas)
				if ready == replicas {
					res.AllReady = since()
				}
			}
		case <-tick.C:
			progress("  %.0f s: %d pods created, %d bound, %d Running, %d ready", since(), len(created), len(bound), len(running), ready)
		case <-timeout:
			return res, fmt.Errorf("after 5 minutes the Deployment has %d of %d replicas ready", ready, replicas)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	progress("Deployment: all %d created after %.2f s, bound %.2f s, first Running %.2f s, all Running %.2f s, all pods Ready %.2f s, readyReplicas %d after %.2f s",
		replicas, res.AllCreated, res.AllBound, res.FirstRunning, res.AllRunning, res.AllPodsReady, replicas, res.AllReady)
	return res, nil
}

// profile starts the server's CPU profile of the next step (with
// -cpuprofile); the function it returns waits for the profile and writes
// it.
func (n *node) profile(ctx context.Context, o options, step string, r *report) func() {
	if o.cpuProfile == "" {
		return func() {}
	}
	path := filepath.Join(o.cpuProfile, step+".pprof")
	done := make(chan error, 1)
	go func() {
		raw, err := n.cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(o.profileSeconds)).Timeout(time.Duration(o.profileSeconds+30) * time.Second).DoRaw(ctx)
		if err == nil {
			if err = os.MkdirAll(o.cpuProfile, 0o755); err == nil {
				err = os.WriteFile(path, raw, 0o644)
			}
		}
		done <- err
	}()
	return func() {
		if err := <-done; err != nil {
			progress("the %s profile: %v", step, err)
			return
		}
		r.Profiles = append(r.Profiles, path)
		progress("the server's CPU profile of the %s step (%d s): go tool pprof %s", step, o.profileSeconds, path)
	}
}

// cleanup removes the static pods' manifests, deletes every Deployment
// and pod, waits for the node to remove the pods, stops the server
// (SIGTERM, then SIGKILL after 30 s), and removes the pod network, the
// proxy's nftables table (the proxy leaves it when it stops) and the
// /labctl cgroups.
func (n *node) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	// Without their files the kubelet stops the static pods; their mirror
	// pods, deleted, would come back.
	manifests := filepath.Join(n.dataDir, "agent", "pod-manifests")
	entries, _ := os.ReadDir(manifests)
	for _, e := range entries {
		os.Remove(filepath.Join(manifests, e.Name()))
	}
	select {
	case <-n.exited:
	default:
		if n.cs != nil {
			progress("cleanup: deleting every Deployment and pod")
			start := time.Now()
			bg := metav1.DeletePropagationBackground
			if l, err := n.cs.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{}); err == nil {
				for _, d := range l.Items {
					n.cs.AppsV1().Deployments(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
				}
			}
			// The garbage collector deletes the ReplicaSets, then their
			// pods; other pods are deleted here.
			deadline := time.Now().Add(2 * time.Minute)
			for time.Now().Before(deadline) {
				rs, err1 := n.cs.AppsV1().ReplicaSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
				pods, err2 := n.cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
				if err1 == nil && err2 == nil {
					if len(rs.Items) == 0 {
						for _, p := range pods.Items {
							if p.DeletionTimestamp == nil {
								n.cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)})
							}
						}
					}
					dirs, _ := os.ReadDir(filepath.Join(n.dataDir, "agent", "pods"))
					if len(rs.Items) == 0 && len(pods.Items) == 0 && len(dirs) == 0 {
						break
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := n.waitNoPods(ctx, time.Second); err != nil {
				errs = append(errs, fmt.Errorf("cleanup: %w", err))
			} else {
				progress("cleanup: every pod gone after %.1f s", time.Since(start).Seconds())
			}
		}
		progress("cleanup: stopping the server")
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("labctl server did not stop within 30 s of SIGTERM; killed it"))
			n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if n.log != nil {
		n.log.Close()
	}
	progress("cleanup: removing the pod network, the proxy's table and the /labctl cgroups")
	if err := networking.Cleanup(ctx, networking.Config{DataDir: filepath.Join(n.dataDir, "agent", "cni")}); err != nil {
		errs = append(errs, fmt.Errorf("removing the pod network: %w", err))
	}
	if err := proxy.Cleanup(proxy.DefaultTable); err != nil {
		errs = append(errs, fmt.Errorf("removing the service proxy's table: %w", err))
	}
	removeCgroups("/labctl")
	return errors.Join(errs...)
}

// logTail is the end of the server's log.
func (n *node) logTail(lines int) string {
	data, _ := os.ReadFile(filepath.Join(n.dir, "server.log"))
	all := strings.SplitAfter(string(data), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "")
}

// removeCgroups removes the cgroup at path (and what is under it) in
// every hierarchy.
func removeCgroups(path string) {
	roots := []string{"/sys/fs/cgroup"}
	if entries, err := os.ReadDir("/sys/fs/cgroup"); err == nil {
		for _, e := range entries {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(filepath.Join(root, path), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// proc is one process, from /proc.
type proc struct {
	pid, ppid int
	comm      string
	args      []string
	// self and children are utime+stime and cutime+cstime, in ticks.
	self, children int64
}

// processes reads every process of the machine.
func processes() map[int]proc {
	out := map[int]proc{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces and parentheses:
		// count from its last ')'.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		num := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		p := proc{pid: pid, ppid: int(num(1)), comm: s[open+1 : end],
			self: num(11) + num(12), children: num(13) + num(14)}
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			p.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		}
		out[pid] = p
	}
	return out
}

// groups sorts the node's processes: the server, its containerd, the
// shims of namespace labctl, the containers under those shims, and any
// other process under the server.
type groups struct {
	labctl, containerd, shims, containers, other []int
}

// nodeProcs names the node's processes: the server, the address of its
// containerd (the node's shims carry it), and the shims of namespace
// labctl that were there before it started (left by earlier nodes whose
// pods were not removed), which are not the node's.
type nodeProcs struct {
	server  int
	address string
	foreign map[int]bool
}

// foreignShims lists the shims of namespace labctl that run now.
func foreignShims() map[int]bool {
	out := map[int]bool{}
	for _, p := range processes() {
		if strings.HasPrefix(p.comm, "containerd-shim") && isLabctlShim(p.args, "") {
			out[p.pid] = true
		}
	}
	return out
}

// procs is the node's processes, once the server runs.
func (n *node) procs() nodeProcs {
	return nodeProcs{server: n.cmd.Process.Pid, address: n.containerdAddress(), foreign: n.foreign}
}

// containerdAddress is the address the node's containerd serves, from
// the [grpc] section of the configuration labctl writes for it
// (shims started by other containerds, such as the kubelet tests'
// private ones, carry other addresses).
func (n *node) containerdAddress() string {
	data, err := os.ReadFile(filepath.Join(n.dataDir, "agent", "etc", "containerd", "config.toml"))
	if err != nil {
		return ""
	}
	_, grpc, _ := strings.Cut(string(data), "[grpc]")
	for _, l := range strings.Split(grpc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "address = "); ok {
			if a, err := strconv.Unquote(v); err == nil {
				return a
			}
		}
	}
	return ""
}

func classify(all map[int]proc, np nodeProcs) groups {
	server := np.server
	g := groups{labctl: []int{server}}
	kids := map[int][]int{}
	for _, p := range all {
		kids[p.ppid] = append(kids[p.ppid], p.pid)
	}
	under := func(root int) []int {
		var out []int
		queue := append([]int(nil), kids[root]...)
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			out = append(out, pid)
			queue = append(queue, kids[pid]...)
		}
		return out
	}
	shim := map[int]bool{}
	for _, p := range all {
		if strings.HasPrefix(p.comm, "containerd-shim") && isLabctlShim(p.args, np.address) && !np.foreign[p.pid] {
			g.shims = append(g.shims, p.pid)
			shim[p.pid] = true
		}
	}
	for _, pid := range g.shims {
		g.containers = append(g.containers, under(pid)...)
	}
	for _, pid := range under(server) {
		p := all[pid]
		switch {
		case shim[pid] || slicesContains(g.containers, pid):
		case p.ppid == server && p.comm == "containerd":
			g.containerd = append(g.containerd, pid)
		default:
			g.other = append(g.other, pid)
		}
	}
	sort.Ints(g.shims)
	return g
}

// isLabctlShim says whether a shim's arguments name namespace labctl
// and, unless address is "", the containerd at address.
func isLabctlShim(args []string, address string) bool {
	namespace, addr := "", ""
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-namespace":
			namespace = args[i+1]
		case "-address":
			addr = args[i+1]
		}
	}
	return namespace == "labctl" && (address == "" || addr == address)
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// memory reads RSS and PSS of the node's processes.
func memory(np nodeProcs) (memSample, error) {
	server := np.server
	g := classify(processes(), np)
	var m memSample
	var err error
	sum := func(pids []int) procMem {
		var pm procMem
		for _, pid := range pids {
			rss, pss, e := smapsRollup(pid)
			if e != nil {
				if pid == server {
					err = e
				}
				continue // a process that just ended
			}
			anon, file := rssSplit(pid)
			pm.add(procMem{Count: 1, RSS: rss, PSS: pss, Anon: anon, File: file})
		}
		return pm
	}
	m.Labctl, m.Containerd, m.Shims, m.Other, m.Containers = sum(g.labctl), sum(g.containerd), sum(g.shims), sum(g.other), sum(g.containers)
	for _, pm := range []procMem{m.Labctl, m.Containerd, m.Shims, m.Other} {
		m.Total.add(pm)
	}
	m.Pods = m.Containers.Count // one container a pod; the pods share a few shims
	if len(g.containerd) == 0 {
		return m, errors.New("found no containerd under labctl")
	}
	return m, err
}

// smapsRollup is a process's Rss and Pss, in bytes.
func smapsRollup(pid int) (rss, pss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "Rss":
			rss = kb * 1024
		case "Pss":
			pss = kb * 1024
		}
	}
	return rss, pss, sc.Err()
}

// rssSplit is a process's RssAnon and RssFile, in bytes.
func rssSplit(pid int) (anon, file int64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "RssAnon":
			anon = kb * 1024
		case "RssFile":
			file = kb * 1024
		}
	}
	return anon, file
}

// cpuShare counts the CPU time of the node's processes over window.
func cpuShare(ctx context.Context, np nodeProcs, window time.Duration) (cpuSample, error) {
	server := np.server
	before := processes()
	g := classify(before, np)
	start := time.Now()
	busy := machineBusy()
	if err := sleep(ctx, window); err != nil {
		return cpuSample{}, err
	}
	machine := busy()
	after := processes()
	secs := time.Since(start).Seconds()
	share := func(ticks int64) float64 { return float64(ticks) / ticksPerSecond / secs * 100 }
	delta := func(pids []int, children bool) (ticks int64) {
		for _, pid := range pids {
			b, ok1 := before[pid]
			a, ok2 := after[pid]
			if !ok1 || !ok2 {
				continue
			}
			if children {
				ticks += a.children - b.children
			} else {
				ticks += a.self - b.self
			}
		}
		return ticks
	}
	if _, ok := after[server]; !ok {
		return cpuSample{}, errors.New("labctl server ended")
	}
	return cpuSample{Window: secs, Pods: len(g.containers), ShimCount: len(g.shims),
		Labctl: share(delta(g.labctl, false)), LabctlChildren: share(delta(g.labctl, true)),
		Containerd: share(delta(g.containerd, false)), ContainerdChildren: share(delta(g.containerd, true)),
		Shims: share(delta(g.shims, false) + delta(g.shims, true)), MachineBusy: machine}, nil
}

// nodeCPUTime starts counting the CPU time of the node's processes:
// labctl, its containerd, the shims and the containers, each with the
// children it waited for (CNI plugins, runc). The function it returns is
// the time used since, in seconds; processes that ended meanwhile are
// not counted (call it before pods are deleted).
func nodeCPUTime(np nodeProcs) func() cpuTime {
	before := processes()
	return func() cpuTime {
		after := processes()
		g := classify(after, np)
		sum := func(pids []int, children bool) float64 {
			var ticks int64
			for _, pid := range pids {
				a := after[pid]
				b, ok := before[pid]
				if !ok || b.comm != a.comm {
					b = proc{}
				}
				if children {
					ticks += a.children - b.children
				} else {
					ticks += a.self - b.self
				}
			}
			return float64(ticks) / ticksPerSecond
		}
		c := cpuTime{Labctl: sum(g.labctl, false), LabctlChildren: sum(g.labctl, true),
			Containerd: sum(g.containerd, false), ContainerdChildren: sum(g.containerd, true),
			Shims: sum(g.shims, false), ShimsChildren: sum(g.shims, true),
			Containers: sum(g.containers, false) + sum(g.containers, true) + sum(g.other, false) + sum(g.other, true)}
		c.Total = c.Labctl + c.LabctlChildren + c.Containerd + c.ContainerdChildren + c.Shims + c.ShimsChildren + c.Containers
		return c
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pct is the nearest-rank percentile of ds, in seconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Seconds()
}

// machine describes the machine: cores, memory, OS and kernel.
func machine() string {
	var mem string
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	osName := runtime.GOOS
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	var u unix.Utsname
	kernel := ""
	if unix.Uname(&u) == nil {
		kernel = string(bytes.TrimRight(u.Release[:], "\x00"))
	}
	return fmt.Sprintf("%d cores, %s, %s, kernel %s", runtime.NumCPU(), mem, osName, kernel)
}

// loadAverage is the machine's 1-minute load average.
func loadAverage() float64 {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// machineBusy starts counting the machine's CPU time; the function it
// returns is the share of all cores that was busy since (not idle nor
// waiting for I/O), in percent.
func machineBusy() func() float64 {
	read := func() (busy, total int64) {
		data, _ := os.ReadFile("/proc/stat")
		line, _, _ := strings.Cut(string(data), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			total += v
			if i != 4 && i != 5 {
				busy += v
			}
		}
		return busy, total
	}
	b0, t0 := read()
	return func() float64 {
		b1, t1 := read()
		if t1 == t0 {
			return 0
		}
		return float64(b1-b0) / float64(t1-t0) * 100
	}
}

// keepLogs copies the server's and its containerd's logs into dir.
func (n *node) keepLogs(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for src, dst := range map[string]string{
		filepath.Join(n.dir, "server.log"):                                "server.log",
		filepath.Join(n.dataDir, "agent", "containerd", "containerd.log"): "containerd.log",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			return err
		}
	}
	progress("the logs are in %s", dir)
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// The figures for upstream (kubelet, containerd and the control
// plane on the same 2-core machines) and labctl's goals.
const (
	upstreamNodeReady  = 4.7  // s
	upstreamPodP50     = 0.62 // s
	upstreamDeploy     = 69.0 // s
	upstreamIdleMiB    = 648.0
	upstreamLoadedMiB  = 1.2 * 1024
	upstreamShimsMiB   = 286.0
	upstreamPauseMiB   = 61.0
	goalNodeReady      = 3.0 // s
	goalPodP99         = 0.5 // s
	goalDeploy         = 20.0
	goalLabctlIdleByte = 100e6 // 100 MB
)

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// print writes the summary table.
func (r *report) print(out io.Writer) {
	fmt.Fprintf(out, "nodebench, %s, %s, load average %.1f at the start\n", r.Date, r.Machine, r.LoadAverage)
	if r.Labctl != "" {
		fmt.Fprintf(out, "%s\n", strings.ReplaceAll(r.Labctl, "\n", "; "))
	}
	if slices.Contains(r.Steps, stepsNode) {
		r.printNode(out)
	}
	if r.Services != nil {
		r.Services.print(out)
	}
}

// printNode writes the node steps' table.
func (r *report) printNode(out io.Writer) {
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(w, strings.Join(cols, "\t")) }
	sec := func(s float64) string { return fmt.Sprintf("%.2f s", s) }
	mem := func(m procMem) string {
		if m.Count == 0 {
			return "none"
		}
		return fmt.Sprintf("PSS %s, RSS %s (anonymous %s, file-backed %s)", mib(m.PSS), mib(m.RSS), mib(m.Anon), mib(m.File))
	}
	ps, d, mi, ml := r.PodStart, r.Deploy, r.MemoryIdle, r.MemoryLoaded
	upLoadedGoal := upstreamLoadedMiB / 2 * (1 << 20)
	row("what", "labctl", "upstream", "goal")
	row("launch to /readyz", sec(r.LaunchToReadyz), "", "")
	row("launch to node Ready", sec(r.LaunchToNodeReady), sec(upstreamNodeReady),
		fmt.Sprintf("under %.0f s: %s", goalNodeReady, verdict(r.LaunchToNodeReady < goalNodeReady)))
	row(fmt.Sprintf("pod start, Create to Running (%d pods, one at a time)", ps.Pods),
		fmt.Sprintf("p50 %.3f, p90 %.3f, p99 %.3f, max %.3f s", ps.P50, ps.P90, ps.P99, ps.Max),
		fmt.Sprintf("p50 %.2f s", upstreamPodP50), fmt.Sprintf("p99 under %.1f s: %s", goalPodP99, verdict(ps.P99 < goalPodP99)))
	row("  of which Create to bound", fmt.Sprintf("p50 %.3f, max %.3f s", ps.BoundP50, ps.BoundMax), "", "")
	row("  of which bound to Running", fmt.Sprintf("p50 %.3f, max %.3f s", ps.RunningP50, ps.RunningMax), "", "")
	row(fmt.Sprintf("  deleting the %d, to all gone", ps.Pods), sec(ps.DeleteAll), "", "")
	row("  CPU time of the node's processes for the starts", fmt.Sprintf("%.2f s (%.0f ms a pod)", ps.NodeCPU.Total, ps.NodeCPU.Total/float64(max(ps.Pods, 1))*1000), "", "")
	row("    of which", ps.NodeCPU.String(), "", "")
	row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%%", ps.MachineBusy), "", "")
	row(fmt.Sprintf("Deployment of %d, create to readyReplicas %d", d.Replicas, d.Replicas), sec(d.AllReady), sec(upstreamDeploy),
		fmt.Sprintf("under %.0f s: %s", goalDeploy, verdict(d.AllReady < goalDeploy)))
	row("  all created / all bound / first Running / all Running / all pods Ready",
		fmt.Sprintf("%.2f / %.2f / %.2f / %.2f / %.2f s", d.AllCreated, d.AllBound, d.FirstRunning, d.AllRunning, d.AllPodsReady), "", "")
	row("  CPU time of the node's processes meanwhile", fmt.Sprintf("%.2f s (%.0f ms a pod)", d.NodeCPU.Total, d.NodeCPU.Total/float64(max(d.Replicas, 1))*1000), "", "")
	row("    of which", d.NodeCPU.String(), "", "")
	row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%%", d.MachineBusy), "", "")
	row("memory idle (no pods, after 20 s)", "", "", "")
	row("  labctl", mem(mi.Labctl), "", fmt.Sprintf("under 100 MB (RSS): %s", verdict(float64(mi.Labctl.RSS) < goalLabctlIdleByte)))
	row("  labctl's containerd", mem(mi.Containerd), "", "")
	row("  total PSS", mib(mi.Total.PSS), fmt.Sprintf("%.0f MiB", upstreamIdleMiB), "")
	row(fmt.Sprintf("memory with %d pods", ml.Pods), "", "", "")
	row("  labctl", mem(ml.Labctl), "", "")
	row("  labctl's containerd", mem(ml.Containerd), "", "")
	row(fmt.Sprintf("  shims (%d)", ml.Shims.Count), mem(ml.Shims), fmt.Sprintf("%.0f MiB", upstreamShimsMiB), "")
	row("  pause", "none: labctl runs no pause containers", fmt.Sprintf("%.0f MiB", upstreamPauseMiB), "")
	if ml.Other.Count > 0 || mi.Other.Count > 0 {
		row("  other processes under labctl", mem(ml.Other), "", "")
	}
	row("  total PSS", mib(ml.Total.PSS), "1.2 GiB",
		fmt.Sprintf("half of upstream (%s): %s", mib(int64(upLoadedGoal)), verdict(float64(ml.Total.PSS) < upLoadedGoal)))
	row(fmt.Sprintf("  the containers (sleep, %d), outside the total", ml.Containers.Count), mem(ml.Containers), "", "")
	cpu := func(title string, c cpuSample) {
		row(fmt.Sprintf("CPU %s, %% of a core over %.0f s", title, c.Window), "", "", "")
		row("  labctl (+ waited-for children)", fmt.Sprintf("%.2f%% (+%.2f%%)", c.Labctl, c.LabctlChildren), "", "")
		row("  labctl's containerd (+ children)", fmt.Sprintf("%.2f%% (+%.2f%%)", c.Containerd, c.ContainerdChildren), "", "")
		if c.Pods > 0 {
			row(fmt.Sprintf("  shims (%d)", c.ShimCount), fmt.Sprintf("%.2f%%", c.Shims), "", "")
		}
		row("  the machine's cores busy meanwhile", fmt.Sprintf("%.0f%% of all", c.MachineBusy), "", "")
	}
	cpu("idle", r.CPUIdle)
	cpu(fmt.Sprintf("with %d pods", r.CPULoaded.Pods), r.CPULoaded)
	w.Flush()
	for _, p := range r.Profiles {
		fmt.Fprintf(out, "\nthe server's CPU profile: go tool pprof %s", p)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintln(out)
	}
}
