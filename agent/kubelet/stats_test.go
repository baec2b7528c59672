package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestCPUSampler(t *testing.T) {
	s := newCPUSampler()
	// A counter that goes up 50ms of CPU per 100ms of time: half a core.
	start := time.Now()
	read := func() (uint64, error) { return uint64(time.Since(start)) / 2, nil }
	var broken atomic.Bool
	flaky := func() (uint64, error) {
		if broken.Load() {
			return 0, os.ErrNotExist
		}
		return read()
	}
	near := func(v *uint64) bool { return v != nil && *v > 4e8 && *v < 6e8 }

	// First: a quick second sample.
	a, b := &statsv1alpha1.CPUStats{}, &statsv1alpha1.CPUStats{}
	began := time.Now()
	s.rates(context.Background(), []cpuTarget{{key: "a", read: read, stats: a}, {key: "b", read: flaky, stats: b}})
	if d := time.Since(began); d < cpuQuickWindow {
		t.Errorf("no second sample: took %v", d)
	}
	if !near(a.UsageNanoCores) || !near(b.UsageNanoCores) || a.UsageCoreNanoSeconds == nil || a.Time.IsZero() {
		t.Fatalf("first rates: %+v %+v", a, b)
	}
	// Soon after: the last rate again, no waiting.
	a2 := &statsv1alpha1.CPUStats{}
	began = time.Now()
	s.rates(context.Background(), []cpuTarget{{key: "a", read: read, stats: a2}})
	if d := time.Since(began); d >= cpuQuickWindow || !near(a2.UsageNanoCores) || *a2.UsageNanoCores != *a.UsageNanoCores {
		t.Errorf("soon after: %v %v", d, a2.UsageNanoCores)
	}
	// "b" was not asked for: forgotten. A cgroup that cannot be read has
	// no usage.
	if _, ok := s.last["b"]; ok {
		t.Error("a cgroup no longer asked for is kept")
	}
	broken.Store(true)
	b2 := &statsv1alpha1.CPUStats{}
	s.rates(context.Background(), []cpuTarget{{key: "a", read: read, stats: &statsv1alpha1.CPUStats{}}, {key: "b", read: flaky, stats: b2}})
	if b2.UsageCoreNanoSeconds != nil || b2.UsageNanoCores != nil {
		t.Errorf("unreadable: %+v", b2)
	}
	// A second on: the rate over that second, without waiting.
	time.Sleep(cpuMinWindow)
	a3 := &statsv1alpha1.CPUStats{}
	began = time.Now()
	s.rates(context.Background(), []cpuTarget{{key: "a", read: read, stats: a3}})
	if d := time.Since(began); d >= cpuQuickWindow || !near(a3.UsageNanoCores) {
		t.Errorf("a second on: %v %v", d, a3.UsageNanoCores)
	}
}

func TestReadKeyValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("MemTotal:       16318108 kB\nInactive(file):  123 kB\ncache 42\nbad x\nusage_usec 7\n"), 0o644)
	kv, err := readKeyValues(path)
	if err != nil || kv["MemTotal"] != 16318108 || kv["Inactive(file)"] != 123 || kv["cache"] != 42 || kv["usage_usec"] != 7 || len(kv) != 4 {
		t.Errorf("%v %v", kv, err)
	}
	os.WriteFile(path, []byte("max\n"), 0o644)
	if n, err := readUint(path); n != 0 || err != nil {
		t.Errorf("max: %d %v", n, err)
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 100000), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b"), make([]byte, 5000), 0o644)
	os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "a-again")) // counted once
	u, err := diskUsage(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.inodes != 4 || u.bytes < 105000 || u.bytes > 200000 {
		t.Errorf("du: %+v", u)
	}
	if _, err := diskUsage(filepath.Join(dir, "none"), 0); err == nil {
		t.Error("du of a missing directory")
	}
}

func TestNodeStats(t *testing.T) {
	m, err := nodeMemory()
	if err != nil {
		t.Fatal(err)
	}
	if *m.UsageBytes == 0 || *m.WorkingSetBytes == 0 || *m.WorkingSetBytes > *m.UsageBytes || *m.AvailableBytes == 0 || m.PageFaults == nil {
		t.Errorf("node memory: usage %d working set %d available %d", *m.UsageBytes, *m.WorkingSetBytes, *m.AvailableBytes)
	}
	u1, err := nodeCPUUsage()
	if err != nil || u1 == 0 {
		t.Fatalf("node CPU: %d %v", u1, err)
	}
	if bootTime().IsZero() || time.Since(bootTime()) < 0 {
		t.Errorf("boot time %v", bootTime())
	}
	if fs := fsStats(t.TempDir(), metav1.NewTime(time.Now())); fs == nil || *fs.CapacityBytes == 0 || *fs.AvailableBytes > *fs.CapacityBytes {
		t.Errorf("fs stats: %+v", fs)
	}
	rl := rlimitStats(metav1.NewTime(time.Now()))
	if rl.MaxPID == nil || rl.NumOfRunningProcesses == nil || *rl.NumOfRunningProcesses <= 0 {
		t.Errorf("rlimit: %+v", rl)
	}
}
