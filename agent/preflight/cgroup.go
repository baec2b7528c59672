package preflight

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// cgroupRoot is where systemd and most distributions mount cgroups.
const cgroupRoot = "/sys/fs/cgroup"

// controllerOrder is the order controllers are listed in; others follow,
// sorted.
var controllerOrder = []string{
	"cpu", "cpuacct", "cpuset", "memory", "pids",
	"devices", "freezer", "blkio", "io", "hugetlb",
}

// requiredControllers are the controllers the kubelet cannot do without.
var requiredControllers = []string{"cpu", "memory", "pids"}

// v1Controllers are the names a cgroup v1 mount's options may carry that are
// controllers (the others are mount flags such as rw or name=systemd).
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true,
	"pids": true, "devices": true, "freezer": true, "blkio": true,
	"hugetlb": true, "net_cls": true, "net_prio": true,
	"perf_event": true, "rdma": true, "misc": true,
}

// mount is one line of /proc/self/mountinfo or /proc/mounts.
type mount struct {
	point   string   // where it is mounted, e.g. /sys/fs/cgroup/cpu
	fstype  string   // e.g. cgroup, cgroup2
	options []string // mount and superblock options together
}

// readMounts reads /proc/self/mountinfo under root, or /proc/mounts when
// there is no mountinfo, and returns the mounts and the file read.
func readMounts(cfg Config) ([]mount, string, error) {
	file := cfg.path("/proc/self/mountinfo")
	data, err := os.ReadFile(file)
	if err == nil {
		m, err := parseMountinfo(data)
		return m, file, err
	}
	file2 := cfg.path("/proc/mounts")
	data, err2 := os.ReadFile(file2)
	if err2 != nil {
		return nil, file, fmt.Errorf("read mounts: %w (and %w)", err, err2)
	}
	return parseProcMounts(data), file2, nil
}

// parseMountinfo parses proc(5) mountinfo lines:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Fields: ID, parent ID, major:minor, root, mount point, mount options,
// optional fields, "-", fs type, source, superblock options.
func parseMountinfo(data []byte) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d is malformed: %q", line, sc.Text())
		}
		opts := strings.Split(fields[5], ",")
		opts = append(opts, strings.Split(fields[sep+3], ",")...)
		mounts = append(mounts, mount{
			point:   unescapeMount(fields[4]),
			fstype:  fields[sep+1],
			options: opts,
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// parseProcMounts parses fstab(5)-style lines of /proc/mounts:
// source, mount point, fs type, options, dump, pass.
func parseProcMounts(data []byte) []mount {
	var mounts []mount
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		mounts = append(mounts, mount{
			point:   unescapeMount(fields[1]),
			fstype:  fields[2],
			options: strings.Split(fields[3], ","),
		})
	}
	return mounts
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space) in a
// mount point.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupInfo is what the mounts say about cgroups.
type cgroupInfo struct {
	mode        string   // "v2 (unified)", "v1 (hybrid)" or "v1 (legacy)"
	controllers []string // available controllers, in display order
}

// detectCgroups works out the cgroup mode from the mounts:
//   - v2 (unified): cgroup2 is mounted at /sys/fs/cgroup and no v1
//     controller is mounted; the controllers are those in its
//     cgroup.controllers file.
//   - v1 (hybrid): v1 controllers are mounted and so is a cgroup2 tree
//     (usually at /sys/fs/cgroup/unified, holding no controllers the
//     kubelet uses); the controllers are those of the v1 mounts.
//   - v1 (legacy): only v1 controllers are mounted.
func detectCgroups(cfg Config, mounts []mount) (cgroupInfo, error) {
	var v1 []string
	var v2Point string
	hasV2 := false
	for _, m := range mounts {
		switch m.fstype {
		case "cgroup":
			for _, o := range m.options {
				if v1Controllers[o] && !slices.Contains(v1, o) {
					v1 = append(v1, o)
				}
			}
		case "cgroup2":
			hasV2 = true
			if v2Point == "" || m.point == cgroupRoot {
				v2Point = m.point
			}
		}
	}
	switch {
	case len(v1) > 0 && hasV2:
		return cgroupInfo{mode: "v1 (hybrid)", controllers: orderControllers(v1)}, nil
	case len(v1) > 0:
		return cgroupInfo{mode: "v1 (legacy)", controllers: orderControllers(v1)}, nil
	case hasV2:
		file := cfg.path(path.Join(v2Point, "cgroup.controllers"))
		data, err := os.ReadFile(file)
		if err != nil {
			return cgroupInfo{mode: "v2 (unified)"}, fmt.Errorf("read cgroup v2 controllers: %w", err)
		}
		return cgroupInfo{mode: "v2 (unified)", controllers: orderControllers(strings.Fields(string(data)))}, nil
	}
	return cgroupInfo{}, fmt.Errorf("no cgroup or cgroup2 filesystem is mounted")
}

// orderControllers sorts controller names into controllerOrder, then the
// others alphabetically.
func orderControllers(names []string) []string {
	rank := func(n string) int {
		if i := slices.Index(controllerOrder, n); i >= 0 {
			return i
		}
		return len(controllerOrder)
	}
	out := slices.Clone(names)
	slices.SortFunc(out, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(out)
}

// CheckCgroups finds the cgroup version (v1, v2 or hybrid) from the mounts
// and lists the controllers available. It fails when cpu, memory or pids is
// missing.
func CheckCgroups(cfg Config) Result {
	cfg = cfg.withDefaults()
	res := Result{Name: "cgroup"}
	mounts, file, err := readMounts(cfg)
	if err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("cannot read the mount table: %v", err)
		res.Fix = "run on a Linux machine with /proc mounted"
		return res
	}
	info, err := detectCgroups(cfg, mounts)
	if err != nil {
		res.Status = Fail
		res.Detail = fmt.Sprintf("%v (read %s)", err, file)
		if info.mode == "" {
			res.Fix = "mount cgroup2 at " + cgroupRoot + ": mount -t cgroup2 none " + cgroupRoot
		} else {
			res.Fix = "check that " + cgroupRoot + " is the cgroup2 mount and is readable"
		}
		return res
	}
	res.Detail = fmt.Sprintf("%s controllers: %s", info.mode, strings.Join(info.controllers, " "))
	var missing []string
	for _, c := range requiredControllers {
		if !slices.Contains(info.controllers, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		res.Status = Fail
		res.Detail += " (missing: " + strings.Join(missing, " ") + ")"
		res.Fix = "enable the missing controllers on the kernel command line " +
			"(e.g. cgroup_enable=memory cgroup_memory=1, and no cgroup_disable=) and reboot"
	}
	return res
}
