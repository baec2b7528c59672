package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	cimages "github.com/containerd/containerd/images"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	lcontainerd "labctl/agent/containerd"
	"labctl/agent/images"
	"labctl/internal/testimage"
	"labctl/networking"
)

// rtEnv is a pod runtime over a containerd, a pod network and a cgroup
// parent of the test's own, all under short temporary directories.
type rtEnv struct {
	dir string
	rt  *podRuntime
	net *networking.Network
	cfg networking.Config
}

func testRandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func startRuntime(t *testing.T) *rtEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, bin := range []string{"containerd", "runc", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox to build the test image from")
	}
	dir, err := os.MkdirTemp("/tmp", "lkr")
	if err != nil {
		t.Fatal(err)
	}
	// Last cleanup: nothing mounted under dir, then remove it.
	t.Cleanup(func() {
		if mounts, err := os.ReadFile("/proc/mounts"); err == nil && strings.Contains(string(mounts), " "+dir+"/") {
			t.Errorf("mounts left under %s:\n%s", dir, mounts)
			sc := bufio.NewScanner(bytes.NewReader(mounts))
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
					unix.Unmount(f[1], unix.MNT_DETACH)
				}
			}
		}
		os.RemoveAll(dir)
	})

	cfg := lcontainerd.Defaults(dir)
	cfg.State = filepath.Join(dir, "state")
	cfg.Address = filepath.Join(dir, "c.sock")
	ctx, cancel := context.WithCancel(context.Background())
	crt, err := lcontainerd.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	client := crt.Client()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if cs, err := client.Containers(dctx); err == nil {
			for _, c := range cs {
				t.Errorf("container %s left behind", c.ID())
				if task, err := c.Task(dctx, nil); err == nil {
					task.Delete(dctx, ctrdWithProcessKill)
				}
				c.Delete(dctx, ctrdWithSnapshotCleanup)
			}
		}
		is := client.ImageService()
		if list, err := is.List(dctx); err == nil {
			for _, img := range list {
				is.Delete(dctx, img.Name, cimages.SynchronousDelete())
			}
		}
		dcancel()
		cancel()
		<-crt.Done()
	})

	// The pod network, as networking's tests make it.
	ncfg := networking.Config{
		DataDir:    filepath.Join(dir, "cni"),
		RunDir:     filepath.Join(dir, "run"),
		BridgeName: "lkt" + testRandHex(4),
		Table:      "lkt" + testRandHex(4),
	}
	ncfg.ClusterCIDR = freeRange(t)
	ncfg.PodCIDR = netip.PrefixFrom(ncfg.ClusterCIDR.Addr(), 24)
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	oldFwd, err := os.ReadFile(fwd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := networking.Cleanup(context.Background(), ncfg); err != nil {
			t.Errorf("network cleanup: %v", err)
		}
		if l, err := netlink.LinkByName(ncfg.BridgeName); err == nil {
			netlink.LinkDel(l)
		}
		if c, err := nftables.New(); err == nil {
			c.DelTable(&nftables.Table{Name: ncfg.Table, Family: nftables.TableFamilyINet})
			c.Flush()
		}
		os.WriteFile(fwd, oldFwd, 0o644)
	})
	nw, err := networking.New(ncfg)
	if err != nil {
		t.Fatalf("the pod network: %v (scripts/deps.sh installs the CNI plugins)", err)
	}

	im := images.New(client, images.Options{})
	var buf bytes.Buffer
	tag, _ := name.NewTag("lktest:1")
	if err := tarball.Write(tag, testBusybox(t), &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Import(ctx, &buf, "lktest.tar"); err != nil {
		t.Fatal(err)
	}

	parent := "/labctl-test-" + testRandHex(4)
	t.Cleanup(func() {
		if err := removeCgroup(parent); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	rt, err := newPodRuntime(runtimeConfig{
		Root:         filepath.Join(dir, "root"),
		LogDir:       filepath.Join(dir, "logs"),
		CgroupParent: parent,
		ClusterDNS:   []string{"10.43.0.10"},
	}, client, im, nw)
	if err != nil {
		t.Fatal(err)
	}
	env := &rtEnv{dir: dir, rt: rt, net: nw, cfg: ncfg}
	// First cleanup to run: kill whatever pods the test left.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pods, err := rt.ListPods(ctx)
		if err != nil {
			t.Errorf("ListPods: %v", err)
		}
		for _, p := range pods {
			if err := rt.KillPod(ctx, p.UID, 0); err != nil {
				t.Errorf("KillPod %s: %v", p.UID, err)
			}
		}
	})
	return env
}

// freeRange is a 10.N.0.0/16 (N in 200-249) that no route or address of
// the machine overlaps.
func freeRange(t *testing.T) netip.Prefix {
	t.Helper()
	var taken []netip.Prefix
	add := func(ipn *net.IPNet) {
		if ipn == nil {
			return
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		ones, _ := ipn.Mask.Size()
		if ok && ones > 0 {
			taken = append(taken, netip.PrefixFrom(ip.Unmap(), ones).Masked())
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		add(r.Dst)
	}
	addrs, _ := netlink.AddrList(nil, netlink.FAMILY_V4)
	for _, a := range addrs {
		add(a.IPNet)
	}
	b := make([]byte, 1)
	rand.Read(b)
	for i := range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + (int(b[0])+i)%50), 0, 0}), 16)
		free := true
		for _, q := range taken {
			if q.Overlaps(p) {
				free = false
			}
		}
		if free {
			return p
		}
	}
	t.Skip("no free 10.200-249.0.0/16 on this machine")
	return netip.Prefix{}
}

// testBusybox is an image of the machine's static busybox, Cmd ["sh"].
func testBusybox(t *testing.T) v1.Image {
	t.Helper()
	img, err := testimage.Busybox("")
	if errors.Is(err, testimage.ErrNoBusybox) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testPod(name string, containers ...corev1.Container) *corev1.Pod {
	for i := range containers {
		containers[i].Image = "lktest:1"
		containers[i].ImagePullPolicy = corev1.PullNever
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(fmt.Sprintf("%s-%s-%s-%s-%s",
			testRandHex(4), testRandHex(2), testRandHex(2), testRandHex(2), testRandHex(6)))},
		Spec: corev1.PodSpec{Containers: containers, RestartPolicy: corev1.RestartPolicyNever},
	}
}

// waitLog waits for a line with text in the log file at path.
func waitLog(t *testing.T, path, stream, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var data []byte
	for time.Now().Before(deadline) {
		data, _ = os.ReadFile(path)
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" {
				continue
			}
			_, s, tag, txt, err := parseCRILine([]byte(line))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if s == stream && tag == "F" && strings.Contains(string(txt), text) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s line with %q in %s:\n%s", stream, text, path, data)
}

func waitState(t *testing.T, rt *podRuntime, id string, ok func(containerState) bool) containerState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := rt.ContainerState(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container state: running %v terminated %+v waiting %v", st.Running, st.Terminated, st.Waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPodRuntime(t *testing.T) {
	env := startRuntime(t)
	rt := env.rt
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := testPod("web",
		corev1.Container{Name: "main", Command: []string{"sh", "-c", "echo hello $(GREETING); sleep 30"},
			Env: []corev1.EnvVar{{Name: "GREETING", Value: "world"}}},
		corev1.Container{Name: "fail", Command: []string{"sh", "-c"},
			Args: []string{"hostname; cat /etc/resolv.conf; readlink /proc/self/ns/ipc; echo oops >&2; exit 3"}},
	)
	sb, err := rt.RunSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(sb.IP)
	if err != nil || !env.cfg.PodCIDR.Contains(ip) {
		t.Fatalf("pod IP %q not in %s (%v)", sb.IP, env.cfg.PodCIDR, err)
	}
	hosts, _ := os.ReadFile(sb.etcFile("hosts"))
	if !strings.Contains(string(hosts), sb.IP+"\tweb\n") {
		t.Errorf("/etc/hosts:\n%s", hosts)
	}

	id, err := rt.StartContainer(ctx, pod, &pod.Spec.Containers[0], sb, startOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id != containerID(pod.UID, "main", 0) {
		t.Errorf("container ID %s", id)
	}
	logPath := containerLogPath(rt.cfg.LogDir, "default", "web", pod.UID, "main", 0)
	waitLog(t, logPath, "stdout", "hello world")
	st := waitState(t, rt, id, func(s containerState) bool { return s.Running != nil })
	if !st.Ready || st.Running.StartedAt.IsZero() || st.ImageID == "" {
		t.Errorf("running state: %+v", st)
	}
	// Exec: the container's environment, stdin to stdout, the exit code,
	// the timeout.
	var out, errb bytes.Buffer
	code, err := rt.Exec(ctx, id, execOptions{Cmd: []string{"sh", "-c", "echo $GREETING; cat; echo bad >&2; exit 7"},
		Stdin: strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &errb})
	if err != nil || code != 7 || out.String() != "world\nfrom stdin\n" || errb.String() != "bad\n" {
		t.Errorf("exec: code %d err %v stdout %q stderr %q", code, err, out.String(), errb.String())
	}
	if _, err := rt.Exec(ctx, id, execOptions{Cmd: []string{"sleep", "10"}, Timeout: 200 * time.Millisecond}); !errors.Is(err, errExecTimeout) {
		t.Errorf("exec past its timeout: %v", err)
	}
	// The container is in the pod's network namespace.
	cont, err := rt.client.LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Stat(sb.NetNS, &want); err != nil {
		t.Fatal(err)
	}
	if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", task.Pid())); link != fmt.Sprintf("net:[%d]", want.Ino) {
		t.Errorf("the container's network namespace is %s, the pod's net:[%d]", link, want.Ino)
	}

	// A container that fails: Error, exit code 3, in the shared IPC and UTS.
	id2, err := rt.StartContainer(ctx, pod, &pod.Spec.Containers[1], sb, startOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st2 := waitState(t, rt, id2, func(s containerState) bool { return s.Terminated != nil })
	if st2.Terminated.ExitCode != 3 || st2.Terminated.Reason != ReasonError || st2.Terminated.FinishedAt.IsZero() {
		t.Errorf("failed container: %+v", st2.Terminated)
	}
	// Both containers of the pod name the same shim group.
	for _, cid := range []string{id, id2} {
		c, err := rt.client.LoadContainer(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := c.Spec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if g := spec.Annotations[shimGroupAnnotation]; g != shimGroup(pod.UID) {
			t.Errorf("container %s: shim group %q, want %q", cid, g, shimGroup(pod.UID))
		}
	}
	log2 := containerLogPath(rt.cfg.LogDir, "default", "web", pod.UID, "fail", 0)
	waitLog(t, log2, "stdout", "web")
	waitLog(t, log2, "stdout", "nameserver 10.43.0.10")
	waitLog(t, log2, "stdout", "search default.svc.cluster.local svc.cluster.local cluster.local")
	waitLog(t, log2, "stderr", "oops")
	var ipc unix.Stat_t
	if err := unix.Stat(sb.IPC, &ipc); err != nil {
		t.Fatal(err)
	}
	waitLog(t, log2, "stdout", fmt.Sprintf("ipc:[%d]", ipc.Ino))

	// podStatus over the states.
	status := podStatus(pod, podState{SandboxReady: true, PodIPs: []string{sb.IP},
		Containers: map[string]containerState{"main": st, "fail": st2}}, time.Now())
	if status.Phase != corev1.PodRunning || status.PodIP != sb.IP {
		t.Errorf("pod status: %s %s", status.Phase, status.PodIP)
	}

	pods, err := rt.ListPods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0].UID != pod.UID || len(pods[0].Containers) != 2 || pods[0].Sandbox == nil ||
		pods[0].Containers[0].Name != "fail" || pods[0].Containers[1].Name != "main" {
		t.Fatalf("ListPods: %+v", pods)
	}

	// Stop with a short grace: SIGTERM (143) or, sh as PID 1 ignoring it, SIGKILL (137).
	start := time.Now()
	if err := rt.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("stopping took %v", time.Since(start))
	}
	st, err = rt.ContainerState(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Terminated != nil {
		t.Logf("stopped after %v: exit code %d", time.Since(start).Round(time.Millisecond), st.Terminated.ExitCode)
	}
	if st.Terminated == nil || (st.Terminated.ExitCode != 143 && st.Terminated.ExitCode != 137) || st.Terminated.Reason != ReasonError {
		t.Errorf("stopped container: %+v", st.Terminated)
	}
	if err := rt.StopContainer(ctx, id, time.Second); err != nil {
		t.Errorf("StopContainer again: %v", err)
	}

	if data, err := os.ReadFile(log2); err == nil {
		t.Logf("%s:\n%s", filepath.Base(log2), data)
	}

	// A container that exits on SIGTERM: 143. One over its memory limit: OOMKilled.
	pod.Spec.Containers = append(pod.Spec.Containers,
		corev1.Container{Name: "term", Command: []string{"sh", "-c", "trap 'echo bye; exit 143' TERM; echo ready; while true; do sleep 0.1; done"}},
		corev1.Container{Name: "oom", Command: []string{"sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}}},
	)
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Image, pod.Spec.Containers[i].ImagePullPolicy = "lktest:1", corev1.PullNever
	}
	id3, err := rt.StartContainer(ctx, pod, &pod.Spec.Containers[2], sb, startOptions{})
	if err != nil {
		t.Fatal(err)
	}
	termLog := containerLogPath(rt.cfg.LogDir, "default", "web", pod.UID, "term", 0)
	waitLog(t, termLog, "stdout", "ready")
	// The agent restarts: the container keeps running, and the new
	// runtime adopts it, its output and its exit.
	rt.Close()
	rt, err = newPodRuntime(rt.cfg, rt.client, rt.images, rt.net)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.Adopt(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rt.running) != 1 || rt.running[id3] == nil {
		t.Errorf("adopted: %v", rt.running)
	}
	if err := rt.StopContainer(ctx, id3, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitLog(t, termLog, "stdout", "bye")
	if st, err := rt.ContainerState(ctx, id3); err != nil || st.Terminated == nil || st.Terminated.ExitCode != 143 {
		t.Errorf("container stopped by SIGTERM: %+v %v", st.Terminated, err)
	}
	id4, err := rt.StartContainer(ctx, pod, &pod.Spec.Containers[3], sb, startOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st4 := waitState(t, rt, id4, func(s containerState) bool { return s.Terminated != nil })
	t.Logf("over its memory limit: %+v", st4.Terminated)
	if st4.Terminated.Reason != ReasonOOMKilled || st4.Terminated.ExitCode != 137 {
		t.Errorf("container over its memory limit: %+v", st4.Terminated)
	}

	// A command that is not there: StartError, exit code 128.
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "nope", Image: "lktest:1",
		ImagePullPolicy: corev1.PullNever, Command: []string{"/no/such/command"}})
	id5, err := rt.StartContainer(ctx, pod, &pod.Spec.Containers[4], sb, startOptions{})
	if err == nil || id5 == "" {
		t.Fatalf("StartContainer of a missing command: %q %v", id5, err)
	}
	st5, err := rt.ContainerState(ctx, id5)
	if err != nil || st5.Terminated == nil || st5.Terminated.Reason != ReasonStartError || st5.Terminated.ExitCode != 128 ||
		!strings.Contains(st5.Terminated.Message, "/no/such/command") {
		t.Errorf("container that cannot start: %+v %v", st5.Terminated, err)
	}

	// KillPod removes everything but the logs.
	if err := rt.KillPod(ctx, pod.UID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.KillPod(ctx, pod.UID, time.Second); err != nil {
		t.Errorf("KillPod again: %v", err)
	}
	cs, err := rt.client.Containers(ctx)
	if err != nil || len(cs) != 0 {
		t.Errorf("containers left: %d %v", len(cs), err)
	}
	if _, err := rt.client.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("LoadContainer after KillPod: %v", err)
	}
	sn := rt.client.SnapshotService(rt.cfg.Snapshotter)
	if _, err := sn.Stat(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("snapshot %s: %v", id, err)
	}
	for _, p := range []string{sb.NetNS, sb.Dir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there: %v", p, err)
		}
	}
	if _, ok := env.net.Status(string(pod.UID)); ok {
		t.Error("the pod's network is still set up")
	}
	if fifos, _ := os.ReadDir(filepath.Join(rt.cfg.Root, "fifo")); len(fifos) > 0 {
		t.Errorf("FIFOs left: %v", fifos)
	}
	if mounts, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(mounts), " "+env.dir+"/") {
		t.Errorf("mounts left:\n%s", mounts)
	}
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, rt.podCgroup(pod.UID))); err == nil {
			t.Errorf("cgroup %s is still there", filepath.Join(h, rt.podCgroup(pod.UID)))
		}
	}
	if pods, err := rt.ListPods(ctx); err != nil || len(pods) != 0 {
		t.Errorf("ListPods after KillPod: %+v %v", pods, err)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("the log is gone: %v", err)
	}
}

var (
	ctrdWithProcessKill     = ctrd.WithProcessKill
	ctrdWithSnapshotCleanup = ctrd.WithSnapshotCleanup
)
