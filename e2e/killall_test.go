package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"labctl/agent/containerd"
	"labctl/agent/proxy"
	"labctl/internal/mountinfo"
	"labctl/networking"
)

// decoyEnv makes the test binary a stand-in for another labctl server:
// started as `labctl server ...`, it sleeps until killed.
const decoyEnv = "E2E_KILLALL_DECOY"

func init() {
	if os.Getenv(decoyEnv) != "" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
}

// TestKillallLeavesMachineClean runs a node with a Service and a NodePort,
// so that the proxy's table, the pod network's table and bridge, the
// shims and the pods' mounts all exist, then `labctl killall`: nothing of
// them may be left. The node runs from a copy of labctl under a name of
// its own, and killall from that copy, so that it stops this test's
// server only: the other tests' `labctl` servers (and a decoy standing for
// them) run on.
func TestKillallLeavesMachineClean(t *testing.T) {
	if _, err := os.Stat("/etc/systemd/system/labctl.service"); err == nil {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			t.Skip("killall would stop this machine's labctl.service")
		}
	}
	bin := copyLabctl(t, "labctl-e2e-killall")
	n := startNodeClusterWith(t, clusterOptions{binary: bin})
	decoy := startDecoy(t, n.dataDir)

	n.apply(t, webDeployment(2, false)+`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30082}]
`)
	if r := n.admin(t, "rollout", "status", "deploy/web", "--timeout=90s"); r.code != 0 {
		t.Fatalf("the web pods did not become ready: %s", r)
	}
	waitFor(t, 30*time.Second, "the proxy's rules for the NodePort and the pod network", func() error {
		return rulesPresent(n)
	})
	server := n.cmd.Process.Pid
	ctrd := containerdPID(t)
	if shims := labctlShims(); len(shims) == 0 {
		t.Fatal("no shims of labctl's containerd run: the pods are not there to be killed")
	}
	if m := mountedBelow(n.dataDir, networking.DefaultRunDir); len(m) == 0 {
		t.Fatalf("nothing mounted below %s or %s before killall: nothing to check", n.dataDir, networking.DefaultRunDir)
	}

	// The server goes on purpose: the cluster's cleanup must not call
	// that a death, and finds nothing left to stop.
	n.stopped = true
	out := runKillall(t, bin, n)
	if want := fmt.Sprintf("stopping %s server (pid %d)", bin, server); !strings.Contains(out, want) {
		t.Errorf("killall's output lacks %q", want)
	}
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("labctl server (pid %d) still runs after killall", server)
	}
	if ctrd > 0 && running(ctrd) {
		t.Errorf("labctl's containerd (pid %d) still runs", ctrd)
	}
	if !running(decoy) {
		t.Errorf("killall from %s stopped a `labctl server` (pid %d): it must stop its own kind only", bin, decoy)
	}
	if tables := labctlTables(t); len(tables) > 0 {
		t.Errorf("nftables tables of labctl left: %v", tables)
	}
	if _, err := netlink.LinkByName(networking.DefaultBridgeName); err == nil {
		t.Errorf("the bridge %s is still there", networking.DefaultBridgeName)
	}
	if shims := labctlShims(); len(shims) > 0 {
		t.Errorf("shims of labctl's containerd still run: %v", shims)
	}
	if m := mountedBelow(n.dataDir, networking.DefaultRunDir); len(m) > 0 {
		t.Errorf("still mounted: %v", m)
	}
	for _, h := range cgroupRoots() {
		if _, err := os.Stat(filepath.Join(h, "labctl")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the pods' cgroup parent %s: %v, want it removed", filepath.Join(h, "labctl"), err)
		}
	}

	// Again: nothing left to do, and no error.
	out = runKillall(t, bin, n)
	for _, want := range []string{"no labctl server or agent is running", "no containers of labctl are running"} {
		if !strings.Contains(out, want) {
			t.Errorf("killall's second output lacks %q", want)
		}
	}
}

// copyLabctl puts labctlBin under another name in a temporary directory:
// a hard link when it can, a copy otherwise.
func copyLabctl(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if err := os.Link(labctlBin, bin); err == nil {
		return bin
	}
	src, err := os.Open(labctlBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// startDecoy starts the test binary as `labctl server --data-dir dir`,
// what a killall of labctl's own name would stop; it goes when t ends.
func startDecoy(t *testing.T, dir string) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: []string{"labctl", "server", "--data-dir", dir},
		Env: append(os.Environ(), decoyEnv+"=1"), SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// runKillall runs `<bin> killall` on the cluster's data directory, with the
// cluster's own config file, and returns what it said.
func runKillall(t *testing.T, bin string, n *nodeCluster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "killall", "--data-dir", n.dataDir, "--config", filepath.Join(n.dir, "config.yaml"))
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LABCTL_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s killall (%v):\n%s", filepath.Base(bin), time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("killall: %v", err)
	}
	return string(out)
}

// rulesPresent says what is still missing of the rules the test needs
// before killall: the proxy's table with the NodePort in its map, the
// pod network's table, and the bridge.
func rulesPresent(n *nodeCluster) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	pt, err := c.ListTableOfFamily(proxy.DefaultTable, nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("the table ip %s: %w", proxy.DefaultTable, err)
	}
	nodePorts, err := c.GetSetByName(pt, "service-nodeports")
	if err != nil {
		return fmt.Errorf("the map service-nodeports: %w", err)
	}
	if elems, err := c.GetSetElements(nodePorts); err != nil || len(elems) == 0 {
		return fmt.Errorf("the map service-nodeports has no element (%v)", err)
	}
	if _, err := c.ListTableOfFamily(networking.DefaultTable, nftables.TableFamilyINet); err != nil {
		return fmt.Errorf("the table inet %s: %w", networking.DefaultTable, err)
	}
	if _, err := netlink.LinkByName(networking.DefaultBridgeName); err != nil {
		return fmt.Errorf("the bridge %s: %w", networking.DefaultBridgeName, err)
	}
	return nil
}

// labctlTables are the nftables tables of labctl on the machine: the
// proxy's, the pod network's, any other named labctl*.
func labctlTables(t *testing.T) []string {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatalf("list the nftables tables: %v", err)
	}
	var out []string
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, "labctl") {
			out = append(out, fmt.Sprintf("family %d %s", tb.Family, tb.Name))
		}
	}
	return out
}

// labctlShims are the shims of namespace labctl that labctl's containerd
// started (the kubelet's tests run containerds of their own with the
// same namespace, at other addresses).
func labctlShims() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.Contains(cmd, "containerd-shim-runc-v2 -namespace "+containerd.Namespace+" ") &&
			strings.Contains(cmd, containerd.DefaultAddress) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}

// containerdPID is the pid of labctl's containerd, from its pid file.
func containerdPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(containerd.DefaultState, "labctl-containerd.pid"))
	if err != nil {
		t.Fatalf("labctl's containerd: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("labctl's containerd pid file: %v", err)
	}
	return pid
}

// running tells whether the process exists and has not exited (a zombie,
// one no one reaped yet, has).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// mountedBelow lists the mount points inside the directories.
func mountedBelow(dirs ...string) []string {
	mounts, err := mountinfo.Read()
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, m := range mounts {
		for _, d := range dirs {
			if strings.HasPrefix(m.Point, filepath.Clean(d)+"/") {
				out = append(out, m.Point)
			}
		}
	}
	return out
}

// cgroupRoots are the mounted cgroup hierarchies.
func cgroupRoots() []string {
	mounts, _ := mountinfo.Read()
	var out []string
	for _, m := range mounts {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			out = append(out, m.Point)
		}
	}
	return out
}

// waitFor polls check every 200 ms until it returns nil, and fails t with
// its last error after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not there after %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
