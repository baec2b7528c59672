package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/snapshots"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"labctl/networking"
)

// The stats summary (stats.go): what upstream's kubelet serves at
// /stats/summary (and `kubectl top` and the eviction logic read), taken
// straight from the kernel instead of cAdvisor:
//
//   - the node: CPU from the root cgroup (or /proc/stat), memory from
//     /proc/meminfo and /proc/vmstat, the filesystem of the runtime's
//     root (nodefs) and of containerd's snapshots (imagefs), the network
//     of the interface of the default route, the process limit;
//   - each pod: CPU and memory from its cgroup, <CgroupParent>/pod<uid>;
//     its network from eth0 in its network namespace; its ephemeral
//     storage (its containers' writable layers and logs, its local
//     volumes under Root/pods/<uid>/volumes, its /etc files);
//   - each running container: CPU and memory from its cgroup, <pod
//     cgroup>/<container id>, its writable layer, its logs.
//
// Memory is as cAdvisor counts it: the working set is the usage less the
// inactive page cache. CPU rates (usageNanoCores) come from two samples
// of the cumulative usage: the one of the summary before (kept in a
// cpuSampler, when it is at least a second old), or else one taken
// 100ms before.

// cpuSampler keeps the CPU usage each cgroup had at the last summary.
type cpuSampler struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	usage uint64  // ns
	rate  *uint64 // nano cores, the last one worked out
}

func newCPUSampler() *cpuSampler { return &cpuSampler{last: map[string]cpuSample{}} }

// cpuMinWindow is the shortest time between two samples that a rate is
// worked out over; cpuQuickWindow the time between two samples taken for
// a cgroup seen for the first time.
const (
	cpuMinWindow   = time.Second
	cpuQuickWindow = 100 * time.Millisecond
)

// cpuTarget is one cgroup (or the node) whose CPU rate is wanted.
type cpuTarget struct {
	key   string
	read  func() (uint64, error)
	stats *statsv1alpha1.CPUStats
}

// rates fills each target's usageNanoCores (and usageCoreNanoSeconds):
// from its last sample, or else from a second sample a moment later.
func (s *cpuSampler) rates(ctx context.Context, targets []cpuTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var again []int
	now := time.Now()
	first := make([]uint64, len(targets))
	for i, t := range targets {
		u, err := t.read()
		if err != nil {
			continue
		}
		seen[t.key] = true
		first[i] = u
		t.stats.UsageCoreNanoSeconds = ptrTo(u)
		t.stats.Time = metav1.NewTime(now)
		last, ok := s.last[t.key]
		switch {
		case ok && u >= last.usage && now.Sub(last.at) >= cpuMinWindow:
			r := cpuRate(last.usage, u, now.Sub(last.at))
			t.stats.UsageNanoCores = &r
			s.last[t.key] = cpuSample{at: now, usage: u, rate: &r}
		case ok && u >= last.usage && last.rate != nil:
			t.stats.UsageNanoCores = ptrTo(*last.rate) // too soon for a new one
		default:
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		select {
		case <-ctx.Done():
			again = nil
		case <-time.After(cpuQuickWindow):
		}
	}
	then := time.Now()
	for _, i := range again {
		t := targets[i]
		u, err := t.read()
		if err != nil || u < first[i] {
			continue
		}
		r := cpuRate(first[i], u, then.Sub(now))
		t.stats.UsageNanoCores = &r
		t.stats.UsageCoreNanoSeconds = ptrTo(u)
		t.stats.Time = metav1.NewTime(then)
		s.last[t.key] = cpuSample{at: then, usage: u, rate: &r}
	}
	for k := range s.last {
		if !seen[k] {
			delete(s.last, k)
		}
	}
}

func cpuRate(from, to uint64, d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(float64(to-from) / d.Seconds())
}

func ptrTo[T any](v T) *T { return &v }

// statsSummary reads the node's and pods' stats; the CPU rates come from
// two samples 100ms apart (the server keeps samples between summaries).
func (r *podRuntime) statsSummary(ctx context.Context, node string, pods []*corev1.Pod) (*statsv1alpha1.Summary, error) {
	return r.summary(ctx, node, pods, newCPUSampler())
}

// summary is statsSummary with the samples of earlier summaries.
func (r *podRuntime) summary(ctx context.Context, node string, pods []*corev1.Pod, sampler *cpuSampler) (*statsv1alpha1.Summary, error) {
	now := metav1.NewTime(time.Now())
	var cpus []cpuTarget
	sum := &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: node, StartTime: metav1.NewTime(bootTime())}, Pods: []statsv1alpha1.PodStats{}}
	n := &sum.Node

	// The node.
	n.CPU = &statsv1alpha1.CPUStats{Time: now}
	cpus = append(cpus, cpuTarget{key: "node", read: nodeCPUUsage, stats: n.CPU})
	if m, err := nodeMemory(); err == nil {
		m.Time = now
		n.Memory = m
	}
	if ifs, err := defaultInterfaceStats(); err == nil {
		n.Network = &statsv1alpha1.NetworkStats{Time: now, InterfaceStats: ifs, Interfaces: []statsv1alpha1.InterfaceStats{ifs}}
	}
	n.Fs = fsStats(r.cfg.Root, now)
	imageFs := r.imageFsStats(ctx, now)
	if imageFs != nil {
		containerFs := *imageFs
		n.Runtime = &statsv1alpha1.RuntimeStats{ImageFs: imageFs, ContainerFs: &containerFs}
	}
	n.Rlimit = rlimitStats(now)
	podsCPU := &statsv1alpha1.CPUStats{Time: now}
	podsSys := statsv1alpha1.ContainerStats{Name: statsv1alpha1.SystemContainerPods, StartTime: n.StartTime, CPU: podsCPU}
	if m, err := cgroupMemory(r.cfg.CgroupParent); err == nil {
		m.Time = now
		podsSys.Memory = m
	}
	cpus = append(cpus, cpuTarget{key: r.cfg.CgroupParent, read: cgroupCPUReader(r.cfg.CgroupParent), stats: podsCPU})
	n.SystemContainers = []statsv1alpha1.ContainerStats{podsSys}

	// The running containers, by pod.
	running, err := r.runningContainers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the containers: %w", err)
	}
	for _, pod := range pods {
		ps, ok := r.podStats(ctx, pod, running[pod.UID], imageFs, now, &cpus)
		if ok {
			sum.Pods = append(sum.Pods, ps)
		}
	}
	sampler.rates(ctx, cpus)
	dropEmptyCPU(sum)
	return sum, nil
}

// dropEmptyCPU removes the CPU stats no usage could be read for.
func dropEmptyCPU(sum *statsv1alpha1.Summary) {
	drop := func(c **statsv1alpha1.CPUStats) {
		if *c != nil && (*c).UsageCoreNanoSeconds == nil {
			*c = nil
		}
	}
	drop(&sum.Node.CPU)
	for i := range sum.Node.SystemContainers {
		drop(&sum.Node.SystemContainers[i].CPU)
	}
	for i := range sum.Pods {
		drop(&sum.Pods[i].CPU)
		for j := range sum.Pods[i].Containers {
			drop(&sum.Pods[i].Containers[j].CPU)
		}
	}
}

// statsContainer is a running container, as the stats see it.
type statsContainer struct {
	id, name  string
	restart   int
	startedAt time.Time
}

// runningContainers are the containers whose cgroups exist (their tasks
// run), the latest run of each of a pod's containers, by pod.
func (r *podRuntime) runningContainers(ctx context.Context) (map[types.UID][]statsContainer, error) {
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==true", labelManaged))
	if err != nil {
		return nil, err
	}
	latest := map[types.UID]map[string]statsContainer{}
	for _, c := range cs {
		info, err := c.Info(ctx, ctrd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		l := info.Labels
		if _, exited := l[labelExitCode]; exited {
			continue
		}
		uid := types.UID(l[labelPodUID])
		if uid == "" {
			continue
		}
		n, _ := strconv.Atoi(l[labelRestartCount])
		sc := statsContainer{id: c.ID(), name: l[labelContainerName], restart: n, startedAt: labelTime(l[labelStartedAt], info.CreatedAt)}
		if _, err := cgroupCPUReader(filepath.Join(r.podCgroup(uid), sc.id))(); err != nil {
			continue // no task (yet, or any more)
		}
		if latest[uid] == nil {
			latest[uid] = map[string]statsContainer{}
		}
		if old, ok := latest[uid][sc.name]; !ok || old.restart < sc.restart {
			latest[uid][sc.name] = sc
		}
	}
	out := map[types.UID][]statsContainer{}
	for uid, byName := range latest {
		for _, sc := range byName {
			out[uid] = append(out[uid], sc)
		}
		sort.Slice(out[uid], func(i, j int) bool { return out[uid][i].name < out[uid][j].name })
	}
	return out, nil
}

// podStats are one pod's stats; false when the pod has neither a sandbox
// nor a cgroup here (it does not run on this node, or not yet).
func (r *podRuntime) podStats(ctx context.Context, pod *corev1.Pod, containers []statsContainer, imageFs *statsv1alpha1.FsStats, now metav1.Time, cpus *[]cpuTarget) (statsv1alpha1.PodStats, bool) {
	cg := r.podCgroup(pod.UID)
	sb, sbErr := r.loadSandbox(string(pod.UID))
	_, cgErr := cgroupCPUReader(cg)()
	if sbErr != nil && cgErr != nil {
		return statsv1alpha1.PodStats{}, false
	}
	ps := statsv1alpha1.PodStats{
		PodRef:    statsv1alpha1.PodReference{Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID)},
		StartTime: pod.CreationTimestamp,
	}
	if pod.Status.StartTime != nil {
		ps.StartTime = *pod.Status.StartTime
	}
	if cgErr == nil {
		ps.CPU = &statsv1alpha1.CPUStats{Time: now}
		*cpus = append(*cpus, cpuTarget{key: cg, read: cgroupCPUReader(cg), stats: ps.CPU})
		if m, err := cgroupMemory(cg); err == nil {
			m.Time = now
			ps.Memory = m
		}
		if n, err := readUint(cgroupFile("pids", cg, "pids.current")); err == nil {
			ps.ProcessStats = &statsv1alpha1.ProcessStats{ProcessCount: &n}
		}
	}
	if sb != nil && sb.NetNS != "" {
		if ifs, err := netnsInterfaceStats(sb.NetNS, "eth0"); err == nil {
			ps.Network = &statsv1alpha1.NetworkStats{Time: now, InterfaceStats: ifs, Interfaces: []statsv1alpha1.InterfaceStats{ifs}}
		}
	}

	// Ephemeral storage: the containers' writable layers and logs, the
	// local volumes, the pod's /etc files.
	var used, inodes uint64
	logFs := fsStats(r.cfg.LogDir, now)
	ps.Containers = []statsv1alpha1.ContainerStats{}
	for _, c := range containers {
		ccg := filepath.Join(cg, c.id)
		cs := statsv1alpha1.ContainerStats{Name: c.name, StartTime: metav1.NewTime(c.startedAt), CPU: &statsv1alpha1.CPUStats{Time: now}}
		*cpus = append(*cpus, cpuTarget{key: ccg, read: cgroupCPUReader(ccg), stats: cs.CPU})
		if m, err := cgroupMemory(ccg); err == nil {
			m.Time = now
			cs.Memory = m
		}
		if u, err := r.client.SnapshotService(r.cfg.Snapshotter).Usage(ctx, c.id); err == nil {
			cs.Rootfs = &statsv1alpha1.FsStats{Time: now, UsedBytes: ptrTo(uint64(u.Size)), InodesUsed: ptrTo(uint64(u.Inodes))}
			if imageFs != nil {
				cs.Rootfs.CapacityBytes, cs.Rootfs.AvailableBytes = imageFs.CapacityBytes, imageFs.AvailableBytes
				cs.Rootfs.Inodes, cs.Rootfs.InodesFree = imageFs.Inodes, imageFs.InodesFree
			}
			used += uint64(u.Size)
			inodes += uint64(u.Inodes)
		}
		dir := filepath.Dir(containerLogPath(r.cfg.LogDir, pod.Namespace, pod.Name, pod.UID, c.name, 0))
		if du, err := diskUsage(dir, 0); err == nil {
			cs.Logs = withUsage(logFs, du)
			used += du.bytes
			inodes += du.inodes
		}
		ps.Containers = append(ps.Containers, cs)
	}
	podDir := r.podDir(string(pod.UID))
	if du, err := diskUsage(filepath.Join(podDir, "etc"), 0); err == nil {
		used += du.bytes
		inodes += du.inodes
	}
	rootDev := deviceOf(r.cfg.Root)
	plugins, _ := os.ReadDir(filepath.Join(podDir, "volumes"))
	for _, p := range plugins {
		vols, _ := os.ReadDir(filepath.Join(podDir, "volumes", p.Name()))
		for _, v := range vols {
			path := filepath.Join(podDir, "volumes", p.Name(), v.Name())
			vfs := fsStats(path, now)
			if vfs == nil {
				continue
			}
			vs := statsv1alpha1.VolumeStats{Name: v.Name(), FsStats: *vfs}
			if dev := deviceOf(path); dev != 0 && dev == rootDev {
				// On the node's filesystem: its own usage, which the
				// pod's ephemeral storage counts.
				if du, err := diskUsage(path, rootDev); err == nil {
					vs.FsStats = *withUsage(vfs, du)
					used += du.bytes
					inodes += du.inodes
				}
			}
			ps.VolumeStats = append(ps.VolumeStats, vs)
		}
	}
	if nodeFs := fsStats(r.cfg.Root, now); nodeFs != nil {
		ps.EphemeralStorage = withUsage(nodeFs, diskUse{bytes: used, inodes: inodes})
	}
	return ps, true
}

// diskUse is what a directory tree takes.
type diskUse struct{ bytes, inodes uint64 }

// diskUsage is du of dir: the blocks of its files and its inodes (each
// counted once), staying on device dev (0: dir's own).
func diskUsage(dir string, dev uint64) (diskUse, error) {
	var u diskUse
	if dev == 0 {
		dev = deviceOf(dir)
	}
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(path, &st) != nil {
			return nil
		}
		if uint64(st.Dev) != dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		u.inodes++
		u.bytes += uint64(st.Blocks) * 512
		return nil
	})
	return u, err
}

// deviceOf is the device of the filesystem path is on (0: unknown).
func deviceOf(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return uint64(st.Dev)
}

// fsStats are the size and free space of the filesystem path is on,
// UsedBytes being all that is used on it; nil when it cannot be read.
func fsStats(path string, now metav1.Time) *statsv1alpha1.FsStats {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return nil
	}
	bs := uint64(st.Bsize)
	return &statsv1alpha1.FsStats{
		Time:           now,
		CapacityBytes:  ptrTo(st.Blocks * bs),
		AvailableBytes: ptrTo(st.Bavail * bs),
		UsedBytes:      ptrTo((st.Blocks - st.Bfree) * bs),
		Inodes:         ptrTo(st.Files),
		InodesFree:     ptrTo(st.Ffree),
		InodesUsed:     ptrTo(st.Files - st.Ffree),
	}
}

// withUsage is a copy of the filesystem's stats with what one user of it
// takes as its used bytes and inodes.
func withUsage(fsys *statsv1alpha1.FsStats, u diskUse) *statsv1alpha1.FsStats {
	out := &statsv1alpha1.FsStats{UsedBytes: ptrTo(u.bytes), InodesUsed: ptrTo(u.inodes)}
	if fsys != nil {
		out.Time, out.CapacityBytes, out.AvailableBytes = fsys.Time, fsys.CapacityBytes, fsys.AvailableBytes
		out.Inodes, out.InodesFree = fsys.Inodes, fsys.InodesFree
	}
	return out
}

// imageFsStats are the stats of the filesystem of containerd's
// snapshots, UsedBytes being what the images' layers take.
func (r *podRuntime) imageFsStats(ctx context.Context, now metav1.Time) *statsv1alpha1.FsStats {
	root := r.snapshotterRoot(ctx)
	if root == "" {
		return nil
	}
	out := fsStats(root, now)
	if out == nil {
		return nil
	}
	sn := r.client.SnapshotService(r.cfg.Snapshotter)
	var total snapshots.Usage
	err := sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			return nil
		}
		if u, err := sn.Usage(ctx, info.Name); err == nil {
			total.Add(u)
		}
		return nil
	})
	if err == nil {
		out.UsedBytes, out.InodesUsed = ptrTo(uint64(total.Size)), ptrTo(uint64(total.Inodes))
	}
	return out
}

// snapshotterRoot is the directory of containerd's snapshotter, as its
// plugin says ("" when it does not).
func (r *podRuntime) snapshotterRoot(ctx context.Context) string {
	resp, err := r.client.IntrospectionService().Plugins(ctx, []string{fmt.Sprintf("type==%q,id==%q", "io.containerd.snapshotter.v1", r.cfg.Snapshotter)})
	if err != nil {
		return ""
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" {
			return root
		}
	}
	return ""
}

// cgroupFile is a file of the cgroup at path: in the controller's
// hierarchy on cgroup v1, in the one hierarchy on v2.
func cgroupFile(controller, path, file string) string {
	if cgroupV2() {
		return filepath.Join(cgroupRoot, path, file)
	}
	return filepath.Join(cgroupRoot, controller, path, file)
}

// cgroupCPUReader reads the CPU time (ns) the cgroup at path used.
func cgroupCPUReader(path string) func() (uint64, error) {
	return func() (uint64, error) {
		if cgroupV2() {
			kv, err := readKeyValues(filepath.Join(cgroupRoot, path, "cpu.stat"))
			if err != nil {
				return 0, err
			}
			us, ok := kv["usage_usec"]
			if !ok {
				return 0, errors.New("no usage_usec in cpu.stat")
			}
			return us * 1000, nil
		}
		return readUint(filepath.Join(cgroupRoot, "cpuacct", path, "cpuacct.usage"))
	}
}

// cgroupMemory reads the cgroup's memory stats as cAdvisor does.
func cgroupMemory(path string) (*statsv1alpha1.MemoryStats, error) {
	var usage, limit uint64
	var stat map[string]uint64
	var err error
	var rss, inactive, faults, major string
	if cgroupV2() {
		if usage, err = readUint(filepath.Join(cgroupRoot, path, "memory.current")); err != nil {
			return nil, err
		}
		if stat, err = readKeyValues(filepath.Join(cgroupRoot, path, "memory.stat")); err != nil {
			return nil, err
		}
		limit, _ = readUint(filepath.Join(cgroupRoot, path, "memory.max")) // "max": 0
		rss, inactive, faults, major = "anon", "inactive_file", "pgfault", "pgmajfault"
	} else {
		dir := filepath.Join(cgroupRoot, "memory", path)
		if usage, err = readUint(filepath.Join(dir, "memory.usage_in_bytes")); err != nil {
			return nil, err
		}
		if stat, err = readKeyValues(filepath.Join(dir, "memory.stat")); err != nil {
			return nil, err
		}
		limit, _ = readUint(filepath.Join(dir, "memory.limit_in_bytes"))
		rss, inactive, faults, major = "total_rss", "total_inactive_file", "total_pgfault", "total_pgmajfault"
	}
	ws := usage
	if in := stat[inactive]; in < ws {
		ws -= in
	} else {
		ws = 0
	}
	m := &statsv1alpha1.MemoryStats{
		UsageBytes:      ptrTo(usage),
		WorkingSetBytes: ptrTo(ws),
		RSSBytes:        ptrTo(stat[rss]),
		PageFaults:      ptrTo(stat[faults]),
		MajorPageFaults: ptrTo(stat[major]),
	}
	// No limit reads as "max" (v2) or a huge number (v1).
	if limit > 0 && limit < 1<<62 {
		avail := uint64(0)
		if limit > ws {
			avail = limit - ws
		}
		m.AvailableBytes = &avail
	}
	return m, nil
}

// nodeCPUUsage is the CPU time (ns) the node used: the root cgroup's, or
// else /proc/stat's busy time.
func nodeCPUUsage() (uint64, error) {
	if u, err := cgroupCPUReader("/")(); err == nil {
		return u, nil
	}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("no cpu line in /proc/stat")
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 { // idle, iowait; guest is in user already
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return busy * 1e7, nil // USER_HZ is 100 on Linux
}

// nodeMemory is the node's memory as cAdvisor counts its root cgroup's:
// usage is what is not free, the working set that less the inactive page
// cache, available the rest of the memory.
func nodeMemory() (*statsv1alpha1.MemoryStats, error) {
	mi, err := readKeyValues("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	total, free := mi["MemTotal"]*1024, mi["MemFree"]*1024
	usage := total - free
	ws := usage
	if in := mi["Inactive(file)"] * 1024; in < ws {
		ws -= in
	}
	m := &statsv1alpha1.MemoryStats{
		UsageBytes:      ptrTo(usage),
		WorkingSetBytes: ptrTo(ws),
		AvailableBytes:  ptrTo(total - ws),
		RSSBytes:        ptrTo(mi["AnonPages"] * 1024),
	}
	if vm, err := readKeyValues("/proc/vmstat"); err == nil {
		m.PageFaults, m.MajorPageFaults = ptrTo(vm["pgfault"]), ptrTo(vm["pgmajfault"])
	}
	return m, nil
}

// rlimitStats are the node's process limit and how many it runs.
func rlimitStats(now metav1.Time) *statsv1alpha1.RlimitStats {
	out := &statsv1alpha1.RlimitStats{Time: now}
	if n, err := readUint("/proc/sys/kernel/pid_max"); err == nil {
		out.MaxPID = ptrTo(int64(n))
	}
	// /proc/loadavg's fourth field is running/total tasks.
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 3 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				if n, err := strconv.ParseInt(total, 10, 64); err == nil {
					out.NumOfRunningProcesses = &n
				}
			}
		}
	}
	return out
}

// bootTime is when the machine started (/proc/stat's btime).
func bootTime() time.Time {
	kv, err := readKeyValues("/proc/stat")
	if err != nil || kv["btime"] == 0 {
		return time.Time{}
	}
	return time.Unix(int64(kv["btime"]), 0).UTC()
}

// defaultInterfaceStats are the counters of the interface of the node's
// IPv4 default route.
func defaultInterfaceStats() (statsv1alpha1.InterfaceStats, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return statsv1alpha1.InterfaceStats{}, err
	}
	for _, rt := range routes {
		if rt.Dst != nil {
			if ones, _ := rt.Dst.Mask.Size(); ones != 0 || !rt.Dst.IP.Equal(net.IPv4zero) {
				continue
			}
		}
		l, err := netlink.LinkByIndex(rt.LinkIndex)
		if err != nil {
			continue
		}
		return interfaceStats(l), nil
	}
	return statsv1alpha1.InterfaceStats{}, errors.New("no default route")
}

// netnsInterfaceStats are the counters of the interface name in the
// network namespace at path.
func netnsInterfaceStats(path, name string) (statsv1alpha1.InterfaceStats, error) {
	ns, err := networking.OpenNetNS(path)
	if err != nil {
		return statsv1alpha1.InterfaceStats{}, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return statsv1alpha1.InterfaceStats{}, err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return statsv1alpha1.InterfaceStats{}, err
	}
	return interfaceStats(l), nil
}

func interfaceStats(l netlink.Link) statsv1alpha1.InterfaceStats {
	a := l.Attrs()
	out := statsv1alpha1.InterfaceStats{Name: a.Name}
	if s := a.Statistics; s != nil {
		out.RxBytes, out.RxErrors = ptrTo(s.RxBytes), ptrTo(s.RxErrors)
		out.TxBytes, out.TxErrors = ptrTo(s.TxBytes), ptrTo(s.TxErrors)
	}
	return out
}

// readUint reads a file holding one number ("max" reads as 0).
func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKeyValues reads "key value" (or "Key: value kB") lines; values that
// are not numbers are left out.
func readKeyValues(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return out, nil
}
