//go:build linux

package preflight_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"labctl/agent/preflight"
)

// Filesystem magic numbers from statfs(2), to tell cgroup mounts apart
// without reading the mount table the checks read.
const (
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
)

func fsType(path string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, false
	}
	return int64(st.Type), true
}

// TestRunOnThisMachine runs every check on the machine the tests run on and
// compares what the report says with what the test finds out by other means
// (statfs, exec.LookPath, the uid) for the items it can verify.
func TestRunOnThisMachine(t *testing.T) {
	report := preflight.Run(preflight.Config{})
	var out strings.Builder
	if _, err := report.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("report on this machine:\n%s", out.String())

	item := func(name string) preflight.Result {
		t.Helper()
		r, ok := report.Find(name)
		if !ok {
			t.Fatalf("report has no %q item", name)
		}
		return r
	}

	if got, isRoot := item("root"), os.Geteuid() == 0; (got.Status == preflight.OK) != isRoot {
		t.Errorf("root item %v, but os.Geteuid() = %d", got, os.Geteuid())
	}

	cg := item("cgroup")
	switch top, ok := fsType("/sys/fs/cgroup"); {
	case !ok:
		t.Logf("cannot statfs /sys/fs/cgroup; not checking the cgroup item %v", cg)
	case top == cgroup2SuperMagic:
		if !strings.HasPrefix(cg.Detail, "v2 (unified)") {
			t.Errorf("/sys/fs/cgroup is cgroup2, but the report says %v", cg)
		}
	default:
		want := "v1 (legacy)"
		if t2, ok := fsType("/sys/fs/cgroup/unified"); ok && t2 == cgroup2SuperMagic {
			want = "v1 (hybrid)"
		}
		if !strings.HasPrefix(cg.Detail, want) {
			t.Errorf("statfs says %s, but the report says %v", want, cg)
		}
		_, list, _ := strings.Cut(cg.Detail, "controllers: ")
		for _, c := range strings.Fields(list) {
			if typ, ok := fsType(filepath.Join("/sys/fs/cgroup", c)); ok && typ != cgroupSuperMagic {
				t.Errorf("report lists controller %s, but /sys/fs/cgroup/%s is not a cgroup v1 mount", c, c)
			}
		}
	}

	for _, bin := range []string{"containerd", "runc"} {
		_, err := exec.LookPath(bin)
		if got := item(bin); (got.Status == preflight.OK) != (err == nil) {
			t.Errorf("%s item %v, but exec.LookPath says %v", bin, got, err)
		}
	}

	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		on := strings.TrimSpace(string(data)) == "1"
		if got := item("ip_forward"); (got.Status == preflight.OK) != on {
			t.Errorf("ip_forward item %v, but the sysctl is %q", got, strings.TrimSpace(string(data)))
		}
	}

	_, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if got := item("br_netfilter"); (got.Status != preflight.Fail) != (err == nil) {
		t.Errorf("br_netfilter item %v, but stat of the sysctl says %v", got, err)
	}

	allCNI := true
	for _, plugin := range preflight.CNIPlugins {
		found := false
		for _, dir := range preflight.DefaultCNIDirs {
			if fi, err := os.Stat(filepath.Join(dir, plugin)); err == nil && !fi.IsDir() {
				found = true
			}
		}
		allCNI = allCNI && found
	}
	if got := item("cni plugins"); (got.Status == preflight.OK) != allCNI {
		t.Errorf("cni plugins item %v, but the plugins are all there: %v", got, allCNI)
	}

	for _, port := range preflight.DefaultPorts {
		item("port " + strconv.Itoa(port))
	}
	if report.Failed() != (report.Count(preflight.Fail) > 0) {
		t.Error("Failed() disagrees with Count(Fail)")
	}
}
