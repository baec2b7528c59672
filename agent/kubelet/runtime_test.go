package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ctrd "github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"labctl/networking"
)

func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"cmd", "x"}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/entry", "cmd", "x"}},
		{[]string{"sh"}, nil, []string{"sh"}},
		{[]string{"sh"}, []string{"-c", "true"}, []string{"sh", "-c", "true"}},
		{nil, []string{"a"}, []string{"/entry", "a"}},
	} {
		if got := processArgs(ep, cmd, tc.command, tc.args); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("processArgs(%v, %v) = %v, want %v", tc.command, tc.args, got, tc.want)
		}
	}
	if got := processArgs(nil, []string{"sh"}, nil, nil); !reflect.DeepEqual(got, []string{"sh"}) {
		t.Errorf("no entrypoint: %v", got)
	}
}

func TestExpand(t *testing.T) {
	vals := map[string]string{"A": "1", "B": "two"}
	for in, want := range map[string]string{
		"plain":        "plain",
		"$(A)":         "1",
		"x$(A)y$(B)z":  "x1ytwoz",
		"$(C)":         "$(C)",
		"$$(A)":        "$(A)",
		"$A":           "$A",
		"$(A":          "$(A",
		"cost: 5$":     "cost: 5$",
		"$(A)$(B)$(A)": "1two1",
	} {
		if got := expand(in, vals); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	c := &corev1.Container{Env: []corev1.EnvVar{{Name: "A", Value: "a"}, {Name: "B", Value: "$(A)-$(HOSTNAME)"},
		{Name: "C", ValueFrom: &corev1.EnvVarSource{}}}}
	env := containerEnv(c, &sandbox{Hostname: "web"}, nil)
	if want := []string{"HOSTNAME=web", "A=a", "B=a-web"}; !reflect.DeepEqual(env, want) {
		t.Errorf("containerEnv = %v, want %v", env, want)
	}
}

func TestResourcesAndOOMScore(t *testing.T) {
	for milli, want := range map[int64]uint64{0: 2, 1: 2, 100: 102, 1000: 1024, 2500: 2560} {
		if got := cpuShares(milli); got != want {
			t.Errorf("cpuShares(%d) = %d, want %d", milli, got, want)
		}
	}
	for milli, want := range map[int64]int64{0: 0, 5: 1000, 250: 25000, 1000: 100000} {
		if got := cpuQuota(milli); got != want {
			t.Errorf("cpuQuota(%d) = %d, want %d", milli, got, want)
		}
	}
	rl := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return l
	}
	pod := func(req, lim corev1.ResourceList) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}}}}
	}
	best, guaranteed := pod(nil, nil), pod(nil, rl("1", "1Gi"))
	burst := pod(rl("100m", "1Gi"), nil)
	if podQOS(best) != corev1.PodQOSBestEffort || podQOS(guaranteed) != corev1.PodQOSGuaranteed || podQOS(burst) != corev1.PodQOSBurstable {
		t.Errorf("QoS: %s %s %s", podQOS(best), podQOS(guaranteed), podQOS(burst))
	}
	const gi = 1 << 30
	for _, tc := range []struct {
		pod   *corev1.Pod
		floor int
		want  int
	}{
		{best, 0, 1000},
		{guaranteed, -1000, -997},
		{guaranteed, 0, 0}, // never below the agent's own
		{burst, 0, 750},    // 1 GiB of 4
		{pod(rl("", "8Gi"), nil), 0, 3},
		{burst, 800, 800},
	} {
		if got := oomScoreAdj(tc.pod, 4*gi, tc.floor); got != tc.want {
			t.Errorf("oomScoreAdj(%s, floor %d) = %d, want %d", podQOS(tc.pod), tc.floor, got, tc.want)
		}
	}
}

func TestCRILog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ns_pod_uid", "c", "0.log")
	l, err := openCRILog(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	l.now = func() time.Time { return now }
	out, errs := l.stream("stdout"), l.stream("stderr")
	out.Write([]byte("hel"))
	errs.Write([]byte("oops\r\n"))
	out.Write([]byte("lo\nsecond\nthi"))
	long := bytes.Repeat([]byte("x"), maxLogLine+10)
	errs.Write(append(long, '\n'))
	out.flush()
	errs.flush()
	l.Close()
	out.Write([]byte("after close\n")) // dropped
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := "2026-01-02T03:04:05.0000006Z"
	want := ts + " stderr F oops\n" + ts + " stdout F hello\n" + ts + " stdout F second\n" +
		ts + " stderr P " + string(long[:maxLogLine]) + "\n" + ts + " stderr F xxxxxxxxxx\n" +
		ts + " stdout F thi\n"
	if string(data) != want {
		t.Errorf("log:\n%.300s\nwant:\n%.300s", data, want)
	}
	tm, stream, tag, text, err := parseCRILine([]byte(ts + " stdout F a b c"))
	if err != nil || !tm.Equal(now) || stream != "stdout" || tag != "F" || string(text) != "a b c" {
		t.Errorf("parseCRILine: %v %s %s %q %v", tm, stream, tag, text, err)
	}
	if got := containerLogPath("/var/log/pods", "default", "web", "u1", "main", 2); got != "/var/log/pods/default_web_u1/main/2.log" {
		t.Errorf("containerLogPath: %s", got)
	}
}

func TestContainerID(t *testing.T) {
	a, b := containerID("u1", "main", 0), containerID("u1", "main", 1)
	if a == b || a != containerID("u1", "main", 0) || len(a) != 64 || containerID("u1", "side", 0) == a {
		t.Errorf("container IDs %s %s", a, b)
	}
}

func testRuntimeConfig(t *testing.T) runtimeConfig {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lab.example corp.example\noptions edns0 ndots:2\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 localhost\n192.0.2.1 node1"), 0o644)
	return runtimeConfig{
		Root: filepath.Join(dir, "root"), LogDir: filepath.Join(dir, "logs"),
		ClusterDNS: []string{"10.43.0.10"}, HostResolvConf: filepath.Join(dir, "resolv.conf"),
		HostHostsFile: filepath.Join(dir, "hosts"),
	}.withDefaults()
}

func TestResolvConf(t *testing.T) {
	r := &podRuntime{cfg: testRuntimeConfig(t)}
	five := "5"
	for _, tc := range []struct {
		name  string
		spec  corev1.PodSpec
		noDNS bool
		want  string
	}{
		{"ClusterFirst", corev1.PodSpec{}, false,
			"search ns1.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"hostNetwork", corev1.PodSpec{HostNetwork: true}, false,
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0 ndots:2\n"},
		{"ClusterFirstWithHostNet", corev1.PodSpec{HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}, false,
			"search ns1.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"no cluster DNS", corev1.PodSpec{}, true,
			"search lab.example corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0 ndots:2\n"},
		{"None", corev1.PodSpec{DNSPolicy: corev1.DNSNone, DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}, {Name: "rotate"}}}}, false,
			"search a.example\nnameserver 1.1.1.1\noptions ndots:5 rotate\n"},
		{"ClusterFirst with dnsConfig", corev1.PodSpec{DNSConfig: &corev1.PodDNSConfig{
			Nameservers: []string{"1.1.1.1", "10.43.0.10"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}}, false,
			"search ns1.svc.cluster.local svc.cluster.local cluster.local lab.example corp.example\nnameserver 10.43.0.10\nnameserver 1.1.1.1\noptions ndots:5\n"},
	} {
		r.cfg.ClusterDNS = []string{"10.43.0.10"}
		if tc.noDNS {
			r.cfg.ClusterDNS = nil
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "p"}, Spec: tc.spec}
		got, err := r.resolvConf(pod)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got\n%s(%v)\nwant\n%s", tc.name, got, err, tc.want)
		}
	}
}

func TestHostsFile(t *testing.T) {
	r := &podRuntime{cfg: testRuntimeConfig(t)}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web-0"},
		Spec: corev1.PodSpec{Hostname: "h", Subdomain: "svc1",
			HostAliases: []corev1.HostAlias{{IP: "192.0.2.9", Hostnames: []string{"foo", "bar"}}}}}
	got, _ := r.hostsFile(pod, "10.42.0.5")
	want := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		"10.42.0.5\th.svc1.ns1.svc.cluster.local\th\n\n# Entries added by HostAliases.\n192.0.2.9\tfoo\tbar\n"
	if string(got) != want {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, want)
	}
	pod.Spec = corev1.PodSpec{HostNetwork: true}
	got, _ = r.hostsFile(pod, "")
	if want := "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.0.2.1 node1\n"; string(got) != want {
		t.Errorf("host network hosts:\n%s\nwant:\n%s", got, want)
	}
}

// fakeNetwork records the calls of the pod runtime.
type fakeNetwork struct {
	dir   string
	calls []string
	ports []networking.PortMapping
	fail  error
}

func (f *fakeNetwork) NetNSPath(id string) string { return filepath.Join(f.dir, id) }
func (f *fakeNetwork) NewNetNS(id string) (string, error) {
	f.calls = append(f.calls, "NewNetNS "+id)
	return f.NetNSPath(id), os.WriteFile(f.NetNSPath(id), nil, 0o644)
}
func (f *fakeNetwork) RemoveNetNS(id string) error {
	f.calls = append(f.calls, "RemoveNetNS "+id)
	os.Remove(f.NetNSPath(id))
	return nil
}
func (f *fakeNetwork) Setup(_ context.Context, id, path string, ports []networking.PortMapping) (networking.PodNetwork, error) {
	f.calls = append(f.calls, "Setup "+id+" "+path)
	f.ports = ports
	if f.fail != nil {
		return networking.PodNetwork{}, f.fail
	}
	return networking.PodNetwork{IPv4: netip.MustParseAddr("10.42.0.7")}, nil
}
func (f *fakeNetwork) Teardown(_ context.Context, id, path string) error {
	f.calls = append(f.calls, "Teardown "+id+" "+path)
	return nil
}

func TestRunSandboxHostNetwork(t *testing.T) {
	net := &fakeNetwork{dir: t.TempDir()}
	r, err := newPodRuntime(testRuntimeConfig(t), nil, nil, net)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "proxy", UID: "u-host"},
		Spec: corev1.PodSpec{HostNetwork: true, HostIPC: true}}
	sb, err := r.RunSandbox(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if len(net.calls) != 0 || sb.IP != "" || sb.NetNS != "" || sb.IPC != "" || sb.UTS != "" {
		t.Errorf("host network sandbox: %+v, network calls %v", sb, net.calls)
	}
	if h, _ := os.Hostname(); sb.Hostname != h {
		t.Errorf("hostname %q", sb.Hostname)
	}
	again, err := r.loadSandbox("u-host")
	if err != nil || !reflect.DeepEqual(again, sb) {
		t.Errorf("loadSandbox: %+v %v", again, err)
	}
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		if _, err := os.Stat(sb.etcFile(f)); err != nil {
			t.Error(err)
		}
	}
	if err := r.removeSandbox(context.Background(), sb); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sb.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod directory left: %v", err)
	}
}

func TestRunSandboxPodNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for the IPC and UTS namespaces")
	}
	net := &fakeNetwork{dir: t.TempDir()}
	r, err := newPodRuntime(testRuntimeConfig(t), nil, nil, net)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: strings.Repeat("n", 70), UID: "u-pod"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{
			{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}, {ContainerPort: 81}}}}}}
	sb, err := r.RunSandbox(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.removeSandbox(context.Background(), sb) })
	if sb.IP != "10.42.0.7" || len(sb.Hostname) != 63 || !isNSMount(sb.IPC) || !isNSMount(sb.UTS) {
		t.Errorf("sandbox: %+v", sb)
	}
	if len(net.ports) != 1 || net.ports[0].HostPort != 8080 {
		t.Errorf("host ports: %+v", net.ports)
	}
	// Again: the namespaces are kept.
	if _, err := r.RunSandbox(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if err := r.removeSandbox(context.Background(), sb); err != nil {
		t.Fatal(err)
	}
	want := []string{"NewNetNS u-pod", "Setup u-pod " + sb.NetNS, "NewNetNS u-pod", "Setup u-pod " + sb.NetNS,
		"Teardown u-pod " + sb.NetNS, "RemoveNetNS u-pod"}
	if !reflect.DeepEqual(net.calls, want) {
		t.Errorf("network calls:\n%v\nwant\n%v", net.calls, want)
	}
	if _, err := os.Stat(sb.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod directory left: %v", err)
	}

	// A failed Setup leaves nothing behind.
	net.fail, net.calls = errors.New("no address"), nil
	if _, err := r.RunSandbox(context.Background(), pod); err == nil {
		t.Fatal("RunSandbox worked with a failing network")
	}
	if _, err := os.Stat(sb.Dir); !errors.Is(err, os.ErrNotExist) || net.calls[len(net.calls)-1] != "RemoveNetNS u-pod" {
		t.Errorf("after a failure: %v, calls %v", err, net.calls)
	}
}

func TestShimGroup(t *testing.T) {
	groups := map[string]int{}
	for i := range 200 {
		uid := types.UID(fmt.Sprintf("0b7c3a52-%04d-4c6e-9f1e-2d5b8a6c7e%02d", i, i%100))
		g := shimGroup(uid)
		if g != shimGroup(uid) {
			t.Fatalf("shimGroup(%s) is not stable", uid)
		}
		groups[g]++
	}
	// 200 pods spread over every group, and over no more.
	if len(groups) != int(shimGroups) {
		t.Errorf("200 pods in %d shim groups, want %d: %v", len(groups), shimGroups, groups)
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("failed to create shim task: ttrpc: closed: unknown"), true},
		{errors.New("read unix @->/run/containerd/s/1: read: connection reset by peer"), true},
		{errors.New("failed to start shim: dial unix /run/containerd/s/2: connect: connection refused: unknown"), true},
		{errors.New("OCI runtime create failed: exec: \"nope\": executable file not found in $PATH"), false},
	} {
		if got := shimWentAway(tc.err); got != tc.want {
			t.Errorf("shimWentAway(%q) = %v", tc.err, got)
		}
	}
}

// deleteRecorder is a task whose Delete reports on a channel.
type deleteRecorder struct {
	ctrd.Task
	deleted chan struct{}
}

func (d deleteRecorder) Delete(context.Context, ...ctrd.ProcessDeleteOpts) (*ctrd.ExitStatus, error) {
	close(d.deleted)
	return nil, nil
}

// A task's deletion waits for a create in the same shim group, whose shim
// it could end.
func TestDeleteTaskWaitsForCreate(t *testing.T) {
	r := &podRuntime{creating: newShimSlots()}
	uid := types.UID("3f0d6a1e-7c55-4b1e-9d0a-0c8e5b2f6a71")
	release, err := r.createSlot(context.Background(), uid)
	if err != nil {
		t.Fatal(err)
	}
	task := deleteRecorder{deleted: make(chan struct{})}
	go r.deleteTask(context.Background(), uid, task)
	select {
	case <-task.deleted:
		t.Fatal("the task was deleted while a create held its group's slot")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case <-task.deleted:
	case <-time.After(10 * time.Second):
		t.Fatal("the task was not deleted once the create was done")
	}
	// A create given up (its context ended) does not take the slot.
	release, _ = r.createSlot(context.Background(), uid)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.createSlot(ctx, uid); !errors.Is(err, context.Canceled) {
		t.Errorf("createSlot with its context ended: %v", err)
	}
	release()
}
