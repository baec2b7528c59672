package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"labctl/networking"
	"labctl/server/pki"

	"labctl/internal/mountinfo"
)

// killallHelperEnv makes the test binary a stand-in process instead of
// running the tests: "sleep" sleeps, "stubborn" sleeps ignoring SIGTERM,
// "shim" starts a child that sleeps (writing its pid to the file in
// killallChildEnv) and sleeps. The tests start it under other names
// (argv[0]) to play labctl, containerd, a shim or a container.
const (
	killallHelperEnv = "LABCTL_KILLALL_TEST_HELPER"
	killallChildEnv  = "LABCTL_KILLALL_TEST_CHILD_PID_FILE"
	killallReadyEnv  = "LABCTL_KILLALL_TEST_READY_FILE" // written once the helper is set up
)

func init() {
	mode := os.Getenv(killallHelperEnv)
	if mode == "" {
		return
	}
	switch mode {
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	case "shim":
		exe, err := os.Executable()
		if err != nil {
			os.Exit(2)
		}
		child := &exec.Cmd{Path: exe, Args: []string{"container-init"}, Env: []string{killallHelperEnv + "=sleep"}}
		if err := child.Start(); err != nil {
			os.Exit(2)
		}
		if err := os.WriteFile(os.Getenv(killallChildEnv), []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
			os.Exit(2)
		}
	}
	if ready := os.Getenv(killallReadyEnv); ready != "" {
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			os.Exit(2)
		}
	}
	time.Sleep(time.Hour)
	os.Exit(0)
}

func requireRootForKillall(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts, cgroups, network namespaces")
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startHelper starts the test binary as a stand-in process with argv and
// returns its pid once it is set up (a stubborn one ignoring SIGTERM, a
// shim with its child); the test's cleanup kills and reaps it.
func startHelper(t *testing.T, mode string, argv []string, env ...string) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready")
	env = append([]string{killallHelperEnv + "=" + mode, killallReadyEnv + "=" + ready}, env...)
	cmd := &exec.Cmd{Path: exe, Args: argv, Env: env}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitFor(t, "the helper "+argv[0]+" to be set up", func() bool {
		_, err := os.Stat(ready)
		return err == nil
	})
	return cmd.Process.Pid
}

// testCleanup is a cleanup whose every place is the test's own: temporary
// directories, a cgroup parent, containerd namespace, process name,
// bridge, nftables table and route protocol no one else uses.
func testCleanup(t *testing.T) (*cleanup, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	// Registered after TempDir, so it runs before TempDir's removal:
	// whatever the test leaves mounted goes first.
	t.Cleanup(func() { detachBelow(root) })
	tag := randHex(4)
	data := filepath.Join(root, "data")
	run := filepath.Join(root, "run")
	var out bytes.Buffer
	cl := &cleanup{
		out:               &out,
		dataDir:           data,
		podsDir:           filepath.Join(data, "agent", "pods"),
		runDir:            run,
		containerdRoot:    filepath.Join(data, "agent", "containerd"),
		containerdState:   filepath.Join(run, "containerd"),
		containerdPIDFile: filepath.Join(run, "containerd", containerdPIDFileName),
		containerdAddress: filepath.Join(run, "containerd", "containerd.sock"),
		namespace:         "labctl-test-" + tag,
		cgroupParent:      "/labctl-test-" + tag,
		processName:       "labctl-test-" + tag,
		unitFile:          filepath.Join(root, "labctl.service"),
		network: networking.Config{
			DataDir:       filepath.Join(data, "agent", "cni"),
			RunDir:        run,
			BridgeName:    "lkt" + tag,
			Table:         "lkt" + tag,
			RouteProtocol: 202,
		},
		stopTimeout: time.Second,
		killTimeout: 5 * time.Second,
		configDir:   filepath.Join(root, "etc"),
		kubeconfig:  filepath.Join(root, "etc", "labctl.yaml"),
		logDir:      filepath.Join(root, "log", "pods"),
		installed:   []string{filepath.Join(root, "bin", "labctl"), filepath.Join(root, "labctl.log")},
	}
	t.Cleanup(func() {
		// Whatever a failed test leaves of the cgroups, bridge and table.
		hs, _ := cgroupHierarchies()
		for _, h := range hs {
			dirs := cgroupDirs(filepath.Join(h.Point, cl.cgroupParent))
			for i := len(dirs) - 1; i >= 0; i-- {
				for _, pid := range cgroupProcs(dirs[i]) {
					unix.Kill(pid, unix.SIGKILL)
				}
				unix.Rmdir(dirs[i])
			}
		}
		networking.Cleanup(context.Background(), cl.network)
	})
	return cl, &out
}

// detachBelow lazily unmounts everything below dir.
func detachBelow(dir string) {
	mounts, _ := readMounts()
	for i := len(mounts) - 1; i >= 0; i-- {
		if below(mounts[i].Point, dir) || mounts[i].Point == dir {
			unix.Unmount(mounts[i].Point, unix.MNT_DETACH)
		}
	}
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	mkdirs(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	mkdirs(t, dir)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
}

func bindMount(t *testing.T, src, dst string) {
	t.Helper()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount %s at %s: %v", src, dst, err)
	}
}

// mountedBelow returns the mount points below dir.
func mountedBelow(t *testing.T, dir string) []string {
	t.Helper()
	mounts, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range mounts {
		if below(m.Point, dir) {
			out = append(out, m.Point)
		}
	}
	return out
}

func isMounted(t *testing.T, point string) bool {
	t.Helper()
	mounts, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.Point == point {
			return true
		}
	}
	return false
}

// fakePodMounts mounts what a pod sandbox has under the pods' directory
// (its IPC namespace pinned, volumes, a tmpfs on a tmpfs), a container's
// rootfs under containerd's state, and a network namespace under the run
// directory. It returns the pod's UID.
func fakePodMounts(t *testing.T, cl *cleanup) string {
	t.Helper()
	uid := "0f6c3f8e-" + randHex(4) + "-4c4e-9b1a-5d2e7c1f0a11"
	pod := filepath.Join(cl.podsDir, uid)
	writeFile(t, filepath.Join(pod, "ns", "ipc"), "")
	bindMount(t, "/proc/self/ns/ipc", filepath.Join(pod, "ns", "ipc"))
	cache := filepath.Join(pod, "volumes", "kubernetes.io~empty-dir", "cache")
	mountTmpfs(t, cache)
	mountTmpfs(t, filepath.Join(cache, "inner"))
	shared := filepath.Join(filepath.Dir(cl.dataDir), "shared")
	mkdirs(t, shared, filepath.Join(pod, "volumes", "kubernetes.io~configmap", "cfg"))
	bindMount(t, shared, filepath.Join(pod, "volumes", "kubernetes.io~configmap", "cfg"))
	mountTmpfs(t, filepath.Join(cl.containerdState, "io.containerd.runtime.v2.task", cl.namespace, "c1", "rootfs"))

	n, err := networking.New(cl.network)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.NewNetNS(uid); err != nil {
		t.Fatal(err)
	}
	return uid
}

func TestKillall(t *testing.T) {
	requireRootForKillall(t)
	cl, out := testCleanup(t)
	routeProtocolFree(t, cl.network.RouteProtocol)

	// The mounts.
	uid := fakePodMounts(t, cl)
	root := filepath.Dir(cl.dataDir)
	unrelated := []string{filepath.Join(root, "unrelated"), filepath.Join(cl.dataDir, "agent", "pods-not-labctl")}
	for _, dir := range unrelated {
		mountTmpfs(t, dir)
	}

	// The pod's cgroups, with a container's process in them.
	hierarchies, err := cgroupHierarchies()
	if err != nil || len(hierarchies) == 0 {
		t.Fatalf("no cgroup hierarchies (%v)", err)
	}
	podCgroup := filepath.Join(cl.cgroupParent, "pod"+uid)
	inCgroup := startHelper(t, "sleep", []string{"pod-sleeper"})
	joined := 0
	for _, h := range hierarchies {
		mkdirs(t, filepath.Join(h.Point, podCgroup, "c1"), filepath.Join(h.Point, podCgroup, "c2"))
		if os.WriteFile(filepath.Join(h.Point, podCgroup, "c1", "cgroup.procs"), []byte(strconv.Itoa(inCgroup)), 0) == nil {
			joined++ // not in v1 cpuset, whose cgroups need cpus first
		}
	}
	if joined == 0 {
		t.Fatal("could not put a process in any of the test's cgroups")
	}

	// labctl, its containerd and a shim with a child; and the look-alikes
	// that are not labctl's.
	stubbornServer := startHelper(t, "stubborn", []string{cl.processName, "server", "--data-dir", cl.dataDir})
	agent := startHelper(t, "sleep", []string{"/usr/local/bin/" + cl.processName, "agent", "--server", "https://10.0.0.1:6443"})
	kubectl := startHelper(t, "sleep", []string{cl.processName, "kubectl", "get", "pods"})

	ctrdConfig := filepath.Join(cl.dataDir, "agent", "etc", "containerd", "config.toml")
	writeFile(t, ctrdConfig, fmt.Sprintf("# Written by labctl at every start; edits are overwritten.\nversion = 2\nroot = %q\nstate = %q\n",
		cl.containerdRoot, cl.containerdState))
	ctrd := startHelper(t, "sleep", []string{"containerd", "--config", ctrdConfig})
	writeFile(t, cl.containerdPIDFile, strconv.Itoa(ctrd)+"\n")
	systemConfig := filepath.Join(root, "system-containerd.toml")
	writeFile(t, systemConfig, fmt.Sprintf("version = 2\nstate = %q\n", cl.containerdState))
	systemCtrd := startHelper(t, "sleep", []string{"containerd", "--config", systemConfig})
	otherConfig := filepath.Join(root, "other-labctl-containerd.toml")
	writeFile(t, otherConfig, "# Written by labctl at every start; edits are overwritten.\nversion = 2\nstate = \"/run/another-labctl/containerd\"\n")
	otherCtrd := startHelper(t, "sleep", []string{"containerd", "--config", otherConfig})

	childFile := filepath.Join(root, "shim-child.pid")
	shim := startHelper(t, "shim", []string{"/usr/bin/" + shimBinary, "-namespace", cl.namespace, "-id", "c1",
		"-address", filepath.Join(cl.containerdState, "containerd.sock")}, killallChildEnv+"="+childFile)
	var shimChild int
	waitFor(t, "the shim's child", func() bool {
		b, err := os.ReadFile(childFile)
		shimChild, _ = strconv.Atoi(string(b))
		return err == nil && shimChild > 0
	})
	t.Cleanup(func() {
		if alive(shimChild) {
			unix.Kill(shimChild, unix.SIGKILL) // not the test's child: left if killall missed it
		}
	})
	dockerShim := startHelper(t, "sleep", []string{shimBinary, "-namespace", "moby-" + randHex(2), "-id", "c1"})
	otherShim := startHelper(t, "sleep", []string{shimBinary, "-namespace", cl.namespace, "-id", "c1",
		"-address", filepath.Join(t.TempDir(), "containerd.sock")})

	// The bridge, standing for the pod network.
	bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: cl.network.BridgeName}}
	if err := netlink.LinkAdd(bridge); err != nil {
		t.Fatal(err)
	}

	if err := cl.killall(context.Background()); err != nil {
		t.Fatalf("killall: %v\n%s", err, out)
	}
	t.Logf("killall said:\n%s", out)

	for name, pid := range map[string]int{"labctl server (ignoring SIGTERM)": stubbornServer, "labctl agent": agent,
		"labctl's containerd": ctrd, "the shim": shim, "the shim's child": shimChild, "the process in the pod's cgroup": inCgroup} {
		if alive(pid) {
			t.Errorf("%s (pid %d) is still running", name, pid)
		}
	}
	for name, pid := range map[string]int{"labctl kubectl": kubectl, "a containerd with a config of its own": systemCtrd,
		"another labctl's containerd": otherCtrd, "a shim of another namespace": dockerShim,
		"a shim of the namespace started by another containerd": otherShim} {
		if !alive(pid) {
			t.Errorf("%s (pid %d) was stopped; it should run on", name, pid)
		}
	}
	if _, err := os.Stat(cl.containerdPIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("containerd's pid file %s: %v, want it removed", cl.containerdPIDFile, err)
	}
	for _, dir := range []string{cl.podsDir, cl.runDir} {
		if m := mountedBelow(t, dir); len(m) > 0 {
			t.Errorf("still mounted below %s: %v", dir, m)
		}
	}
	for _, dir := range unrelated {
		if !isMounted(t, dir) {
			t.Errorf("the unrelated mount %s was unmounted", dir)
		}
	}
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join(h.Point, cl.cgroupParent)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s in %s: %v, want it removed", cl.cgroupParent, h.Point, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cl.runDir, "netns")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the network namespaces' directory: %v, want it removed", err)
	}
	if _, err := netlink.LinkByName(cl.network.BridgeName); err == nil {
		t.Errorf("the bridge %s is still there", cl.network.BridgeName)
	}
	// The data stays.
	if _, err := os.Stat(filepath.Join(cl.podsDir, uid, "ns")); err != nil {
		t.Errorf("the pod's directory: %v, want it kept", err)
	}
	for _, want := range []string{
		"stopping " + cl.processName + " server (pid " + strconv.Itoa(stubbornServer) + ")",
		"did not stop within 1s of SIGTERM: killing it",
		"stopping labctl's containerd (pid " + strconv.Itoa(ctrd) + ")",
		"killed labctl's containers: 1 shims",
		"unmounted " + filepath.Join(cl.podsDir, uid, "ns", "ipc") + " (nsfs)",
		"removed ",
		"removing the pod network: bridge " + cl.network.BridgeName,
		"killall: done",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("killall's output lacks %q", want)
		}
	}

	// Again: nothing to do, and no error.
	out.Reset()
	if err := cl.killall(context.Background()); err != nil {
		t.Fatalf("killall, a second time: %v\n%s", err, out)
	}
	for _, want := range []string{"no labctl server or agent is running", "labctl's containerd is not running",
		"no containers of labctl are running", "nothing of labctl is mounted", "no cgroups under " + cl.cgroupParent} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("killall's second output lacks %q:\n%s", want, out)
		}
	}
}

// TestKillallLeavesForeignPIDFile: a pid file naming a process that is not
// labctl's containerd (the pid reused) does not get that process killed.
func TestKillallLeavesForeignPIDFile(t *testing.T) {
	requireRootForKillall(t)
	cl, out := testCleanup(t)
	routeProtocolFree(t, cl.network.RouteProtocol)
	other := startHelper(t, "sleep", []string{"containerd", "--config", "/etc/containerd/config.toml"})
	writeFile(t, cl.containerdPIDFile, strconv.Itoa(other))
	if err := cl.killall(context.Background()); err != nil {
		t.Fatalf("killall: %v\n%s", err, out)
	}
	if !alive(other) {
		t.Errorf("pid %d, named by the pid file but not labctl's containerd, was killed", other)
	}
	if want := fmt.Sprintf("leaving pid %d alone", other); !strings.Contains(out.String(), want) {
		t.Errorf("killall's output lacks %q:\n%s", want, out)
	}
}

func TestUninstall(t *testing.T) {
	requireRootForKillall(t)
	cl, out := testCleanup(t)
	routeProtocolFree(t, cl.network.RouteProtocol)
	root := filepath.Dir(cl.dataDir)

	uid := fakePodMounts(t, cl)
	ca := "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
	writeFile(t, filepath.Join(cl.dataDir, "server", "tls", pki.CAName+".crt"), ca)
	writeFile(t, filepath.Join(cl.dataDir, "server", "db", "state.db"), "bbolt")

	// Logs: labctl's pod's, and another kubelet's.
	labctlLogs := filepath.Join(cl.logDir, "default_web_"+uid)
	foreignLogs := filepath.Join(cl.logDir, "kube-system_coredns_9d1c7f57-2b1e-4f33-8c35-111111111111")
	writeFile(t, filepath.Join(labctlLogs, "web", "0.log"), "hello\n")
	writeFile(t, filepath.Join(foreignLogs, "coredns", "0.log"), "hello\n")

	// The kubeconfig it wrote somewhere else than the config directory, and
	// one of another cluster.
	cl.kubeconfig = filepath.Join(root, "home", ".kube", "config")
	if err := pki.WriteKubeconfig(cl.kubeconfig, 0o600, "https://127.0.0.1:6443", []byte(ca), []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cl.configDir, "config.yaml"), "data-dir: "+cl.dataDir+"\n")
	for _, f := range append([]string{cl.unitFile}, cl.installed...) {
		writeFile(t, f, "installed\n")
	}
	unrelated := filepath.Join(root, "unrelated")
	mountTmpfs(t, unrelated)

	if err := cl.uninstall(context.Background()); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	t.Logf("uninstall said:\n%s", out)
	for _, gone := range append([]string{cl.dataDir, cl.runDir, cl.configDir, cl.kubeconfig, labctlLogs, cl.unitFile}, cl.installed...) {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want it removed", gone, err)
		}
	}
	if _, err := os.Stat(foreignLogs); err != nil {
		t.Errorf("another pod's logs %s: %v, want them kept", foreignLogs, err)
	}
	if !isMounted(t, unrelated) {
		t.Errorf("the unrelated mount %s was unmounted", unrelated)
	}
	if !strings.Contains(out.String(), "removed the logs of 1 labctl pods") {
		t.Errorf("uninstall's output lacks the pods' logs:\n%s", out)
	}

	// Again: nothing left to do.
	out.Reset()
	if err := cl.uninstall(context.Background()); err != nil {
		t.Fatalf("uninstall, a second time: %v\n%s", err, out)
	}
}

// TestUninstallRemovesVolumes: in a --default-local-storage-path outside
// the data directory, the local-path volumes' directories go and what
// else is there stays, with the directory; without anything else, the
// directory goes too. One under the data directory is left to the data
// directory's removal.
func TestUninstallRemovesVolumes(t *testing.T) {
	root := t.TempDir()
	var out bytes.Buffer
	cl := &cleanup{out: &out, dataDir: filepath.Join(root, "data"), storageDir: filepath.Join(root, "disk")}
	vol := filepath.Join(cl.storageDir, "pvc-2b7c1f0a-4c4e-4e1a-9b1a-5d2e7c1f0a11_default_data")
	writeFile(t, filepath.Join(vol, "db", "state"), "data\n")
	kept := []string{filepath.Join(cl.storageDir, "lost+found"), filepath.Join(cl.storageDir, "pvc-notes.txt"),
		filepath.Join(cl.storageDir, "photos", "cat.jpg")}
	mkdirs(t, kept[0])
	writeFile(t, kept[1], "mine\n")
	writeFile(t, kept[2], "mine\n")
	link := filepath.Join(cl.storageDir, "pvc-link_default_x")
	if err := os.Symlink(filepath.Join(cl.storageDir, "photos"), link); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, link)

	if err := cl.removeVolumes(); err != nil {
		t.Fatalf("removeVolumes: %v\n%s", err, &out)
	}
	if _, err := os.Lstat(vol); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it removed", vol, err)
	}
	for _, k := range kept {
		if _, err := os.Lstat(k); err != nil {
			t.Errorf("%v, want it kept", err)
		}
	}

	for _, k := range append(kept, filepath.Dir(kept[2])) {
		if err := os.RemoveAll(k); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(vol, "db", "state"), "data\n")
	if err := cl.removeVolumes(); err != nil {
		t.Fatalf("removeVolumes: %v\n%s", err, &out)
	}
	if _, err := os.Lstat(cl.storageDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it removed once empty", cl.storageDir, err)
	}
	t.Logf("uninstall said:\n%s", &out)

	cl.storageDir = filepath.Join(cl.dataDir, "storage")
	writeFile(t, filepath.Join(cl.storageDir, "pvc-x_default_y", "f"), "data\n")
	if err := cl.removeVolumes(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cl.storageDir, "pvc-x_default_y", "f")); err != nil {
		t.Errorf("a volume under the data directory: %v, want it left for the data directory's removal", err)
	}
}

// TestUninstallKeepsWhatIsNotLabctls: a --data-dir that does not look like
// labctl's, and a kubeconfig of another cluster, stay.
func TestUninstallKeepsWhatIsNotLabctls(t *testing.T) {
	requireRootForKillall(t)
	cl, out := testCleanup(t)
	routeProtocolFree(t, cl.network.RouteProtocol)
	root := filepath.Dir(cl.dataDir)
	writeFile(t, filepath.Join(cl.dataDir, "photos", "cat.jpg"), "meow")
	cl.kubeconfig = filepath.Join(root, "home", ".kube", "config")
	if err := pki.WriteKubeconfig(cl.kubeconfig, 0o600, "https://10.0.0.9:6443", []byte("another CA"), []byte("cert"), []byte("key")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(cl.configDir, "config.yaml"), "debug: true\n")

	err := cl.uninstall(context.Background())
	if err == nil || !strings.Contains(err.Error(), "neither server/ nor agent/") {
		t.Errorf("uninstall of a data directory that is not labctl's: %v, want a refusal", err)
	}
	for _, kept := range []string{filepath.Join(cl.dataDir, "photos", "cat.jpg"), cl.kubeconfig} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("%s: %v, want it kept", kept, err)
		}
	}
	if _, err := os.Stat(cl.configDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the config directory: %v, want it removed", err)
	}
	if !strings.Contains(out.String(), "leaving "+cl.kubeconfig) {
		t.Errorf("uninstall's output does not say it leaves the kubeconfig:\n%s", out)
	}
}

// TestUninstallKeepsMountedTrees: a directory with a mount inside that
// killall does not unmount is not removed (that would reach into the
// mounted file system).
func TestUninstallKeepsMountedTrees(t *testing.T) {
	requireRootForKillall(t)
	cl, out := testCleanup(t)
	routeProtocolFree(t, cl.network.RouteProtocol)
	mkdirs(t, filepath.Join(cl.dataDir, "server"))
	disk := filepath.Join(cl.dataDir, "server", "backup")
	mountTmpfs(t, disk)
	writeFile(t, filepath.Join(disk, "precious"), "keep me")

	err := cl.uninstall(context.Background())
	if err == nil || !strings.Contains(err.Error(), "still mounted in it") {
		t.Errorf("uninstall with %s mounted: %v, want a refusal", disk, err)
	}
	if _, err := os.Stat(filepath.Join(disk, "precious")); err != nil {
		t.Errorf("the file in the mounted file system: %v", err)
	}
	_ = out
}

// routeProtocolFree skips the test when routes of the protocol it gives
// the test network exist (the network cleanup would remove them).
func routeProtocolFree(t *testing.T, proto int) {
	t.Helper()
	rs, _ := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: netlink.RouteProtocol(proto), Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if len(rs) > 0 {
		t.Skipf("routes of protocol %d exist on this machine: %v", proto, rs)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRequireRoot(t *testing.T) {
	if err := requireRoot("killall", 0); err != nil {
		t.Errorf("root: %v", err)
	}
	err := requireRoot("uninstall", 1000)
	if err == nil || !strings.Contains(err.Error(), "sudo labctl uninstall") {
		t.Errorf("uid 1000: %v, want an error that says to use sudo", err)
	}
}

func TestParseMountInfo(t *testing.T) {
	in := `22 1 0:21 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,size=100k
30 22 0:4 net:[4026532300] /run/labctl/netns/a\040b rw shared:6 master:1 - nsfs nsfs rw
31 1 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
`
	got, err := mountinfo.Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountEntry{
		{Point: "/run", FSType: "tmpfs", Source: "tmpfs", Options: "rw,size=100k"},
		{Point: "/run/labctl/netns/a b", FSType: "nsfs", Source: "nsfs", Options: "rw"},
		{Point: "/sys/fs/cgroup/memory", FSType: "cgroup", Source: "cgroup", Options: "rw,memory"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseMountInfo:\n got %v\nwant %v", got, want)
	}
	if _, err := mountinfo.Parse(strings.NewReader("22 1 0:21 / /run\n")); err == nil {
		t.Error("a short line: no error")
	}
}

func TestProcessMatching(t *testing.T) {
	cl := &cleanup{processName: "labctl", namespace: "labctl", containerdAddress: "/run/labctl/containerd/containerd.sock"}
	for _, tc := range []struct {
		args         []string
		labctl, shim bool
	}{
		{args: []string{"labctl", "server"}, labctl: true},
		{args: []string{"/usr/local/bin/labctl", "agent", "--server", "https://x:6443"}, labctl: true},
		{args: []string{"labctl", "killall"}},
		{args: []string{"labctl"}},
		{args: []string{"k3s", "server"}},
		{args: []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "labctl", "-id", "x", "-address", "/run/labctl/containerd/containerd.sock"}, shim: true},
		{args: []string{"containerd-shim-runc-v2", "-namespace=labctl", "-id", "x"}, shim: true},
		{args: []string{"containerd-shim-runc-v2", "-namespace", "labctl", "-address=/run/labctl/containerd/containerd.sock"}, shim: true},
		{args: []string{"containerd-shim-runc-v2", "-namespace", "labctl", "-id", "x", "-address", "/tmp/kubelet-test/c.sock"}},
		{args: []string{"containerd-shim-runc-v2", "--namespace", "labctl", "--address=/tmp/kubelet-test/c.sock"}},
		{args: []string{"containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "labctl"}},
		{args: []string{"containerd-shim-runc-v2", "-namespace", "moby", "-id", "x"}},
		{args: []string{"containerd-shim-runc-v2", "-namespace"}},
		{args: []string{"containerd-shim", "-namespace", "labctl"}},
	} {
		if got := cl.isLabctl(tc.args); got != tc.labctl {
			t.Errorf("isLabctl(%q) = %v, want %v", tc.args, got, tc.labctl)
		}
		if got := cl.isShim(tc.args); got != tc.shim {
			t.Errorf("isShim(%q) = %v, want %v", tc.args, got, tc.shim)
		}
	}
}

// TestProcessNameIsTheExecutables: killall stops the servers of its own
// name, here the test binary's, so a renamed copy leaves labctl's alone.
func TestProcessNameIsTheExecutables(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cl := defaultCleanup(t.TempDir(), io.Discard)
	if want := filepath.Base(exe); cl.processName != want {
		t.Errorf("processName = %q, want %q (the running executable's name)", cl.processName, want)
	}
	if !cl.isLabctl([]string{exe, "server"}) || cl.isLabctl([]string{"/usr/local/bin/labctl", "server"}) {
		t.Errorf("processName %q: should match %s server and not labctl server", cl.processName, exe)
	}
}

func TestCheckDataDir(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		make []string
		ok   bool
	}{
		{name: "missing", ok: true},
		{name: "empty", make: []string{""}, ok: true},
		{name: "server", make: []string{"server/db"}, ok: true},
		{name: "agent", make: []string{"agent/pods"}, ok: true},
		{name: "home", make: []string{"Documents", "Music"}},
	} {
		d := filepath.Join(dir, tc.name)
		for _, sub := range tc.make {
			mkdirs(t, filepath.Join(d, sub))
		}
		if err := checkDataDir(d); (err == nil) != tc.ok {
			t.Errorf("%s: checkDataDir: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	for _, d := range []string{"/", "/var/lib", "/home/"} {
		if err := checkDataDir(d); err == nil {
			t.Errorf("checkDataDir(%q): no error", d)
		}
	}
}

// TestKillallCommandRefusals: the commands stop before doing anything when
// given what they cannot use.
func TestKillallCommandRefusals(t *testing.T) {
	type refusal struct {
		args []string
		want string
	}
	cases := []refusal{
		{args: []string{"uninstall", "--yes"}, want: "flag provided but not defined: -yes (see: labctl uninstall --help)"},
	}
	if os.Geteuid() == 0 {
		cases = append(cases,
			refusal{args: []string{"killall", "now"}, want: `killall takes no arguments, got ["now"]`},
			refusal{args: []string{"uninstall", "--data-dir", ""}, want: "uninstall: --data-dir: empty"})
	} else {
		cases = append(cases, refusal{args: []string{"killall"}, want: "killall must run as root"})
	}
	for _, tc := range cases {
		res := run(t, nil, tc.args...)
		if res.err == nil || !strings.Contains(res.err.Error(), tc.want) {
			t.Errorf("labctl %s: %v, want an error with %q", strings.Join(tc.args, " "), res.err, tc.want)
		}
	}
}
