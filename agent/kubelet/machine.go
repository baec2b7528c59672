package kubelet

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// machine is what a node says about the computer it runs on: its
// capacity and its system info, read from /proc, /sys and /etc as the
// kubelet's cAdvisor reads them.
type machine struct {
	capacity corev1.ResourceList
	info     corev1.NodeSystemInfo
}

// Upstream's defaults for what the kubelet keeps back from pods: the hard
// eviction thresholds memory.available<100Mi and nodefs.available<10%.
var (
	evictionMemory       = resource.MustParse("100Mi")
	evictionNodefsFactor = 0.10
)

// maxPods is the kubelet's default --max-pods.
const maxPods = 110

// readMachine reads the machine's capacity and system info; dataDir's
// filesystem is the node's ephemeral storage.
func readMachine(root, dataDir string) (machine, error) {
	var m machine
	memKiB, err := memTotalKiB(root + "/proc/meminfo")
	if err != nil {
		return m, fmt.Errorf("read the machine's memory: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dataDir, &st); err != nil {
		return m, fmt.Errorf("read the size of %q: %w", dataDir, err)
	}
	m.capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memKiB*1024, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
		"hugepages-1Gi":                 *resource.NewQuantity(0, resource.BinarySI),
		"hugepages-2Mi":                 *resource.NewQuantity(0, resource.BinarySI),
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return m, fmt.Errorf("uname: %w", err)
	}
	m.info = corev1.NodeSystemInfo{
		MachineID:       readTrimmed(root + "/etc/machine-id"),
		SystemUUID:      strings.ToLower(readTrimmed(root + "/sys/class/dmi/id/product_uuid")),
		BootID:          readTrimmed(root + "/proc/sys/kernel/random/boot_id"),
		KernelVersion:   unix.ByteSliceToString(uts.Release[:]),
		OSImage:         osImage(root + "/etc/os-release"),
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
	}
	return m, nil
}

// allocatable is capacity minus what upstream's default eviction
// thresholds keep back.
func (m machine) allocatable() corev1.ResourceList {
	out := m.capacity.DeepCopy()
	mem := out[corev1.ResourceMemory]
	mem.Sub(evictionMemory)
	out[corev1.ResourceMemory] = mem
	eph := out[corev1.ResourceEphemeralStorage]
	keep := int64(float64(eph.Value()) * (1 - evictionNodefsFactor))
	out[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(keep, resource.DecimalSI)
	return out
}

func memTotalKiB(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// osImage is os-release's PRETTY_NAME, as the kubelet reports it.
func osImage(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "Unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return "Unknown"
}
