package kubelet

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroups (cgroups.go): the pods' cgroups, <CgroupParent>/pod<uid>/<id>,
// made by runc (cgroupfs driver) on cgroup v1 and v2 alike. Here: whether
// the kernel OOM-killed in one, and removing a pod's.

const cgroupRoot = "/sys/fs/cgroup"

// cgroupV2 tells whether the machine runs the unified hierarchy only.
func cgroupV2() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// cgroupOOMKilled tells whether the kernel's OOM killer killed a process
// in the cgroup at path: oom_kill in memory.events (v2) or in
// memory.oom_control (v1).
func cgroupOOMKilled(path string) bool {
	file := filepath.Join(cgroupRoot, path, "memory.events")
	if !cgroupV2() {
		file = filepath.Join(cgroupRoot, "memory", path, "memory.oom_control")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "oom_kill" && f[1] != "0" {
			return true
		}
	}
	return false
}

// cgroupHierarchies are the directories that path lives under: the
// unified root on v2; each v1 controller's (and named) hierarchy, and the
// unified one of a hybrid machine, on v1.
func cgroupHierarchies() []string {
	if cgroupV2() {
		return []string{cgroupRoot}
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() { // symlinks such as cpu -> cpu,cpuacct are left out
			out = append(out, filepath.Join(cgroupRoot, e.Name()))
		}
	}
	return out
}

// removeCgroup removes the cgroup at path, and those below it, in every
// hierarchy; one that is not there is no error.
func removeCgroup(path string) error {
	if path == "" || path == "/" {
		return errors.New("refusing to remove the root cgroup")
	}
	var errs []error
	for _, h := range cgroupHierarchies() {
		dir := filepath.Join(h, path)
		var dirs []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, &os.PathError{Op: "rmdir", Path: dirs[i], Err: err})
			}
		}
	}
	return errors.Join(errs...)
}
