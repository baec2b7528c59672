package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/clientcmd"

	"labctl/agent/containerd"
	"labctl/agent/proxy"
	"labctl/networking"
	"labctl/server"
	"labctl/server/pki"

	"labctl/internal/mountinfo"
)

// `labctl killall` and `labctl uninstall` (killall.go) do for labctl what
// k3s-killall.sh and k3s-uninstall.sh do for k3s.
//
// killall stops everything labctl runs on the machine and undoes its
// effects on the running system, keeping its data:
//
//  1. the labctl.service unit (systemctl stop), then every other
//     `labctl server` and `labctl agent` process (by the name killall
//     itself runs under: a renamed copy stops its own kind): SIGTERM, and
//     SIGKILL after a timeout;
//  2. labctl's own containerd (its pid file under /run/labctl/containerd,
//     checked against the config file labctl writes for it: never a system
//     containerd or Docker's);
//  3. the containers: the runc shims of containerd namespace labctl that
//     labctl's containerd started, their children, and every process in
//     the pods' cgroups under /labctl (SIGKILL, after thawing frozen
//     cgroups);
//  4. the mounts under <data-dir>/agent/pods (the pods' namespace pins and
//     volumes), containerd's root and state, and /run/labctl (the network
//     namespaces), newest first, lazily when a mount is busy;
//  5. the pods' cgroups under /labctl in every hierarchy (v1 and v2);
//  6. the pod network (networking.Cleanup: the bridge, the nftables table,
//     the routes, the network namespaces) and the service proxy's table.
//
// uninstall runs killall and then removes labctl's files: the data
// directory, /run/labctl, /etc/labctl, the logs of labctl's pods under
// /var/log/pods, the admin kubeconfig it wrote, and what scripts/install.sh
// installed (the binary, the systemd unit, the log). The local-path
// volumes go with the data directory; in a --default-local-storage-path
// outside it, only the volumes' directories go, and the directory itself
// when nothing else is left in it. As k3s's uninstall, it asks for no
// confirmation.
//
// Both go on past failures, print each step, and can be run again: what is
// already gone is skipped.

// cleanup says where labctl's state is on a machine: what killall and
// uninstall clear. defaultCleanup has labctl's real places; the tests point
// every field at places of their own.
type cleanup struct {
	// out receives the steps, one line each.
	out io.Writer

	// dataDir is labctl's data directory (--data-dir).
	dataDir string
	// podsDir holds the pods' directories, <data-dir>/agent/pods/<uid>,
	// with their namespace bind mounts and volume mounts.
	podsDir string
	// runDir is /run/labctl: the network namespaces and, by default,
	// containerd's state.
	runDir string
	// containerdRoot and containerdState are those of labctl's containerd;
	// containerdPIDFile is where it records its pid.
	containerdRoot, containerdState, containerdPIDFile string
	// containerdAddress is the socket labctl's containerd serves: the
	// shims it starts carry it as -address. "" matches shims of any
	// containerd.
	containerdAddress string
	// namespace is labctl's containerd namespace: the shims of its
	// containers run with -namespace <namespace>.
	namespace string
	// cgroupParent holds the pods' cgroups in every hierarchy (/labctl).
	cgroupParent string
	// processName is the base name of labctl's executable: processes
	// `<processName> server` and `<processName> agent` are stopped
	// (executableName: this process's own).
	processName string
	// systemdUnit is the unit install.sh makes, stopped (and, on
	// uninstall, disabled) through systemctl when systemd runs; "" skips
	// systemctl. unitFile is its file.
	systemdUnit, unitFile string
	// network is the pod network to remove.
	network networking.Config
	// stopTimeout is how long labctl and containerd get to exit after
	// SIGTERM; killTimeout how long SIGKILLed processes get to go.
	stopTimeout, killTimeout time.Duration

	// What uninstall removes on top of the directories above.

	// configDir is /etc/labctl: the config file and the default kubeconfig.
	configDir string
	// kubeconfig is the admin kubeconfig the server wrote
	// (--write-kubeconfig); removed when its CA is the data directory's.
	kubeconfig string
	// logDir holds the pods' logs, <logDir>/<namespace>_<name>_<uid>.
	logDir string
	// storageDir holds the local-path volumes,
	// <storageDir>/pvc-<uid>_<namespace>_<name> (--default-local-storage-path;
	// "": <data-dir>/storage, which goes with the data directory).
	storageDir string
	// installed are the files install.sh makes besides the unit: the
	// binary and the log of a server started without systemd.
	installed []string
	// proxyTable is the service proxy's nftables table ("": left alone).
	proxyTable string
}

// Defaults of cleanup that are not elsewhere as constants.
const (
	// podCgroupParent is the kubelet's default cgroup parent
	// (agent/kubelet runtimeConfig.CgroupParent).
	podCgroupParent = "/labctl"
	// podLogDir is the kubelet's default log directory.
	podLogDir = "/var/log/pods"
	// containerdPIDFileName is the file in containerd's state directory
	// where agent/containerd records the pid of the containerd it runs.
	containerdPIDFileName = "labctl-containerd.pid"
	// containerdConfigMarker starts the config.toml agent/containerd
	// writes: a containerd whose config starts so is labctl's.
	containerdConfigMarker = "# Written by labctl"
	// shimBinary is the runc shim containerd starts for the containers (a
	// few that the node's pods share: agent/kubelet/container.go).
	shimBinary = "containerd-shim-runc-v2"
	// systemdRunDir exists when systemd is the init system.
	systemdRunDir = "/run/systemd/system"
)

// defaultCleanup is labctl's state for the data directory dataDir.
func defaultCleanup(dataDir string, out io.Writer) *cleanup {
	ctrd := containerd.Defaults(dataDir)
	return &cleanup{
		out:               out,
		dataDir:           dataDir,
		podsDir:           filepath.Join(dataDir, "agent", "pods"),
		runDir:            networking.DefaultRunDir,
		containerdRoot:    ctrd.Root,
		containerdState:   ctrd.State,
		containerdPIDFile: filepath.Join(ctrd.State, containerdPIDFileName),
		containerdAddress: ctrd.Address,
		namespace:         containerd.Namespace,
		cgroupParent:      podCgroupParent,
		processName:       executableName(),
		systemdUnit:       "labctl.service",
		unitFile:          "/etc/systemd/system/labctl.service",
		network: networking.Config{
			DataDir: filepath.Join(dataDir, "agent", "cni"),
			RunDir:  networking.DefaultRunDir,
		},
		// labctl's own shutdown, then its containerd's.
		stopTimeout: server.DefaultShutdownTimeout + containerd.DefaultStopTimeout,
		killTimeout: 10 * time.Second,
		configDir:   filepath.Dir(defaultConfigFile),
		kubeconfig:  server.DefaultKubeconfigPath,
		logDir:      podLogDir,
		installed:   []string{"/usr/local/bin/labctl", "/var/log/labctl.log"},
		proxyTable:  proxy.DefaultTable,
	}
}

// executableName is the base name of the running executable, "labctl"
// when it cannot be told. killall stops the servers and agents of that
// name only, so that a copy of labctl under another name (the e2e tests'
// killall test runs one) stops its own kind and leaves the labctl
// servers of everyone else on the machine alone.
func executableName() string {
	exe, err := os.Executable()
	if err != nil {
		return "labctl"
	}
	// /proc/self/exe of a binary replaced since it started (an upgrade)
	// ends so.
	name := strings.TrimSuffix(filepath.Base(exe), " (deleted)")
	if name == "" || name == "." || name == "/" {
		return "labctl"
	}
	return name
}

// killallCommand is `labctl killall`.
func killallCommand(cmds *commands) *cli.Command {
	return &cli.Command{
		Name: "killall",
		Usage: "stop labctl, its containers and its containerd, and remove its mounts, cgroups and pod network " +
			"(as k3s-killall.sh; the data stays)",
		Flags:  []cli.Flag{configFlag(), dataDirFlag()},
		Before: cmds.rootAndConfig("killall"),
		Action: func(c *cli.Context) error {
			cl, err := cleanupFrom(c, "killall")
			if err != nil {
				return err
			}
			return cl.killall(c.Context)
		},
		OnUsageError: usageError("killall"),
	}
}

// uninstallCommand is `labctl uninstall`.
func uninstallCommand(cmds *commands) *cli.Command {
	return &cli.Command{
		Name: "uninstall",
		Usage: "run killall, then remove labctl from this machine: its data, configuration, pod logs, " +
			"kubeconfig and what scripts/install.sh installed (as k3s-uninstall.sh; asks nothing)",
		Flags: []cli.Flag{configFlag(), dataDirFlag(),
			stringFlag("write-kubeconfig", []string{"o"}, server.DefaultKubeconfigPath,
				"the admin kubeconfig the server wrote, removed if its CA is the data directory's"),
			localStoragePathFlag()},
		Before: cmds.rootAndConfig("uninstall"),
		Action: func(c *cli.Context) error {
			cl, err := cleanupFrom(c, "uninstall")
			if err != nil {
				return err
			}
			if cl.storageDir, err = localStoragePath(c); err != nil {
				return fmt.Errorf("uninstall: %w", err)
			}
			cl.kubeconfig = ""
			if kc := c.String("write-kubeconfig"); kc != "" {
				if cl.kubeconfig, err = filepath.Abs(kc); err != nil {
					return fmt.Errorf("uninstall: --write-kubeconfig: %w", err)
				}
			}
			return cl.uninstall(c.Context)
		},
		OnUsageError: usageError("uninstall"),
	}
}

// rootAndConfig is the Before hook of killall and uninstall: they need
// root (said first, before a config file root alone may read), then the
// config file.
func (cmds *commands) rootAndConfig(command string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if err := requireRoot(command, os.Geteuid()); err != nil {
			return err
		}
		return cmds.loadConfigFile(c)
	}
}

// cleanupFrom returns the cleanup of the command's --data-dir.
func cleanupFrom(c *cli.Context, command string) (*cleanup, error) {
	if c.NArg() > 0 {
		return nil, fmt.Errorf("%s takes no arguments, got %q (see: labctl %s --help)", command, c.Args().Slice(), command)
	}
	var errs flagErrors
	dataDir := absDir(c, &errs, "data-dir")
	if err := errs.err(); err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	return defaultCleanup(dataDir, c.App.Writer), nil
}

// requireRoot fails unless euid is root's.
func requireRoot(command string, euid int) error {
	if euid != 0 {
		return fmt.Errorf("%s must run as root (it stops processes, unmounts file systems and removes network devices): run sudo labctl %s", command, command)
	}
	return nil
}

func (c *cleanup) say(format string, args ...any) {
	fmt.Fprintf(c.out, format+"\n", args...)
}

// check refuses settings that would reach far beyond labctl's state.
func (c *cleanup) check() error {
	for name, dir := range map[string]string{"data": c.dataDir, "pods": c.podsDir, "run": c.runDir,
		"containerd root": c.containerdRoot, "containerd state": c.containerdState} {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
			return fmt.Errorf("the %s directory %q is not an absolute path below /", name, dir)
		}
	}
	if p := filepath.Clean(c.cgroupParent); !filepath.IsAbs(p) || p == "/" {
		return fmt.Errorf("the cgroup parent %q is not an absolute path below /", c.cgroupParent)
	}
	return nil
}

// killall stops everything of labctl on the machine and removes its
// mounts, cgroups and pod network. It goes on past failures and returns
// them all.
func (c *cleanup) killall(ctx context.Context) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("killall: %w", err)
	}
	var errs []error
	for _, step := range []func(context.Context) error{
		c.stopService,
		c.stopLabctl,
		c.stopContainerd,
		c.killContainers,
		c.unmountAll,
		c.removeCgroups,
		c.removeNetwork,
	} {
		if err := step(ctx); err != nil {
			c.say("  error: %v", err)
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("killall: %d of its steps failed (see above): fix what they say, then run labctl killall again: %w",
			len(errs), errors.Join(errs...))
	}
	c.say("killall: done; nothing of labctl runs on this machine now (its data stays in %s)", c.dataDir)
	return nil
}

// stopService stops install.sh's systemd unit, which would otherwise start
// labctl again (Restart=always) once its process is killed.
func (c *cleanup) stopService(ctx context.Context) error {
	if !c.systemdManages() {
		return nil
	}
	c.say("stopping %s (systemctl stop)", c.systemdUnit)
	return c.systemctl(ctx, "stop", c.systemdUnit)
}

// systemdManages tells whether systemd runs and install.sh's unit exists.
func (c *cleanup) systemdManages() bool {
	if c.systemdUnit == "" {
		return false
	}
	if _, err := os.Stat(systemdRunDir); err != nil {
		return false
	}
	_, err := os.Stat(c.unitFile)
	return err == nil
}

func (c *cleanup) systemctl(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, c.stopTimeout+c.killTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s (see: systemctl status %s)", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)), c.systemdUnit)
	}
	return nil
}

// stopLabctl stops every `labctl server` and `labctl agent` but this
// process.
func (c *cleanup) stopLabctl(context.Context) error {
	procs, err := listProcesses()
	if err != nil {
		return err
	}
	var pids []int
	for _, p := range procs {
		if p.pid != os.Getpid() && c.isLabctl(p.args) {
			c.say("stopping %s (pid %d)", strings.Join(p.args[:2], " "), p.pid)
			pids = append(pids, p.pid)
		}
	}
	if len(pids) == 0 {
		c.say("no labctl server or agent is running")
		return nil
	}
	return c.terminate("labctl", pids)
}

// isLabctl tells whether args are those of a labctl server or agent.
func (c *cleanup) isLabctl(args []string) bool {
	return len(args) >= 2 && filepath.Base(args[0]) == c.processName && (args[1] == "server" || args[1] == "agent")
}

// stopContainerd stops the containerd labctl runs: the one its pid file
// names, and any other whose config file is one labctl wrote for this
// state directory. Nothing else: a system containerd and Docker's have
// config files of their own.
func (c *cleanup) stopContainerd(context.Context) error {
	pids := map[int]bool{}
	if b, err := os.ReadFile(c.containerdPIDFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			args, _ := readCmdline(pid)
			switch {
			case args == nil || !alive(pid):
			case c.isLabctlContainerd(args):
				pids[pid] = true
			default:
				c.say("leaving pid %d alone: %s names it, but it runs %q, not labctl's containerd",
					pid, c.containerdPIDFile, strings.Join(args, " "))
			}
		}
	}
	procs, err := listProcesses()
	if err != nil {
		return err
	}
	for _, p := range procs {
		if c.isLabctlContainerd(p.args) {
			pids[p.pid] = true
		}
	}
	if len(pids) == 0 {
		c.say("labctl's containerd is not running")
	} else {
		list := sortedKeys(pids)
		c.say("stopping labctl's containerd (pid %s)", joinInts(list))
		if err := c.terminate("labctl's containerd", list); err != nil {
			return err
		}
	}
	if err := os.Remove(c.containerdPIDFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// isLabctlContainerd tells whether args run containerd with a config file
// that labctl wrote for its state directory.
func (c *cleanup) isLabctlContainerd(args []string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != "containerd" {
		return false
	}
	config := ""
	for i, a := range args[1:] {
		switch {
		case (a == "--config" || a == "-c") && i+2 < len(args):
			config = args[i+2]
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		}
	}
	if config == "" {
		return false
	}
	f, err := os.Open(config)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil || !bytes.HasPrefix(data, []byte(containerdConfigMarker)) {
		return false
	}
	return bytes.Contains(data, []byte("\nstate = "+strconv.Quote(c.containerdState)+"\n"))
}

// terminate sends the processes SIGTERM, then SIGKILL to those still there
// after stopTimeout, and waits until they are gone.
func (c *cleanup) terminate(what string, pids []int) error {
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stop %s (pid %d): %w", what, pid, err)
		}
	}
	left := waitGone(pids, c.stopTimeout)
	if len(left) == 0 {
		return nil
	}
	c.say("%s (pid %s) did not stop within %v of SIGTERM: killing it", what, joinInts(left), c.stopTimeout)
	for _, pid := range left {
		unix.Kill(pid, unix.SIGKILL)
	}
	if left = waitGone(left, c.killTimeout); len(left) > 0 {
		return fmt.Errorf("%s (pid %s) is still there %v after SIGKILL: it is stuck in the kernel "+
			"(see the state in /proc/%d/status); reboot the machine", what, joinInts(left), c.killTimeout, left[0])
	}
	return nil
}

// waitGone waits up to timeout for the processes to be gone, and returns
// those still alive.
func waitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killContainers kills labctl's containers: the runc shims of its
// containerd namespace with what they started, and every process in the
// cgroups under the pods' cgroup parent. Until all are gone it looks
// again, so that processes forked meanwhile go too.
func (c *cleanup) killContainers(context.Context) error {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.killTimeout)
	shims, others := map[int]bool{}, map[int]bool{}
	for round := 0; ; round++ {
		shimPIDs, containerPIDs, err := c.containerProcesses(hierarchies)
		if err != nil {
			return err
		}
		if len(shimPIDs)+len(containerPIDs) == 0 {
			break
		}
		if round == 0 {
			// Frozen processes do not die until thawed (cgroup v1);
			// cgroup.kill (v2) kills a whole tree at once.
			c.thawAndKillCgroups(hierarchies)
		}
		if time.Now().After(deadline) {
			left := append(slices.Collect(maps.Keys(shimPIDs)), slices.Collect(maps.Keys(containerPIDs))...)
			slices.Sort(left)
			return fmt.Errorf("processes of labctl's containers (pid %s) are still there %v after SIGKILL: "+
				"they are stuck in the kernel (see the state in /proc/<pid>/status); reboot the machine",
				joinInts(left), c.killTimeout)
		}
		for pid := range shimPIDs {
			shims[pid] = true
			unix.Kill(pid, unix.SIGKILL)
		}
		for pid := range containerPIDs {
			others[pid] = true
			unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(shims)+len(others) == 0 {
		c.say("no containers of labctl are running (no %s -namespace %s, nothing in the cgroups under %s)",
			shimBinary, c.namespace, c.cgroupParent)
		return nil
	}
	c.say("killed labctl's containers: %d shims (%s -namespace %s) and %d processes of containers",
		len(shims), shimBinary, c.namespace, len(others))
	return nil
}

// containerProcesses returns the live shims of labctl's namespace, and the
// live processes that the shims started or that are in the pods' cgroups.
func (c *cleanup) containerProcesses(hierarchies []mountEntry) (shims, containers map[int]bool, err error) {
	procs, err := listProcesses()
	if err != nil {
		return nil, nil, err
	}
	shims, containers = map[int]bool{}, map[int]bool{}
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
		if c.isShim(p.args) {
			shims[p.pid] = true
		}
	}
	queue := slices.Collect(maps.Keys(shims))
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, child := range children[pid] {
			if !shims[child] && !containers[child] {
				containers[child] = true
				queue = append(queue, child)
			}
		}
	}
	for _, h := range hierarchies {
		for _, dir := range cgroupDirs(filepath.Join(h.Point, c.cgroupParent)) {
			for _, pid := range cgroupProcs(dir) {
				if !shims[pid] {
					containers[pid] = true
				}
			}
		}
	}
	for _, set := range []map[int]bool{shims, containers} {
		for pid := range set {
			if pid == os.Getpid() || !alive(pid) {
				delete(set, pid)
			}
		}
	}
	return shims, containers, nil
}

// isShim tells whether args run a runc shim for labctl's namespace,
// started by labctl's containerd: a shim whose -address names another
// socket belongs to another containerd that uses the same namespace (the
// kubelet's integration tests run private ones).
func (c *cleanup) isShim(args []string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != shimBinary {
		return false
	}
	namespace, address := shimFlag(args, "namespace"), shimFlag(args, "address")
	return namespace == c.namespace && (c.containerdAddress == "" || address == "" || address == c.containerdAddress)
}

// shimFlag is the value of the shim's flag name (-name v, -name=v, or
// with two dashes), "" when it is not there.
func shimFlag(args []string, name string) string {
	for i, a := range args[1:] {
		switch {
		case (a == "-"+name || a == "--"+name) && i+2 < len(args):
			return args[i+2]
		case strings.HasPrefix(a, "-"+name+"="):
			return strings.TrimPrefix(a, "-"+name+"=")
		case strings.HasPrefix(a, "--"+name+"="):
			return strings.TrimPrefix(a, "--"+name+"=")
		}
	}
	return ""
}

// thawAndKillCgroups thaws every cgroup under the parent and, on cgroup
// v2, kills what is in them through cgroup.kill. Errors do not matter
// here: the processes are killed one by one as well.
func (c *cleanup) thawAndKillCgroups(hierarchies []mountEntry) {
	for _, h := range hierarchies {
		dirs := cgroupDirs(filepath.Join(h.Point, c.cgroupParent))
		for _, dir := range dirs {
			if h.FSType == "cgroup2" {
				os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
			} else if slices.Contains(strings.Split(h.Options, ","), "freezer") {
				os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
			}
		}
		if h.FSType == "cgroup2" && len(dirs) > 0 {
			os.WriteFile(filepath.Join(dirs[0], "cgroup.kill"), []byte("1"), 0)
		}
	}
}

// unmountAll unmounts everything below the pods' directories, containerd's
// root and state and the run directory, newest mount first (so a mount
// goes before the one it is on), lazily when it is busy.
func (c *cleanup) unmountAll(context.Context) error {
	roots := []string{c.podsDir, c.containerdRoot, c.containerdState, c.runDir}
	ours := func(m mountEntry) bool {
		return slices.ContainsFunc(roots, func(root string) bool { return below(m.Point, root) })
	}
	count := 0
	lastErr := map[string]error{}
	// One pass unmounts all but what it uncovers (a mount under another
	// at the same point); a pass with no success ends it.
	for progress := true; progress; {
		progress = false
		mounts, err := readMounts()
		if err != nil {
			return err
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			m := mounts[i]
			if !ours(m) {
				continue
			}
			how := ""
			err := unix.Unmount(m.Point, 0)
			if errors.Is(err, unix.EBUSY) {
				how = " (busy: detached lazily)"
				err = unix.Unmount(m.Point, unix.MNT_DETACH)
			}
			switch {
			case err == nil:
				c.say("unmounted %s (%s)%s", m.Point, m.FSType, how)
				count++
				progress = true
			case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT):
				// Gone already, with the mount it was on.
			default:
				lastErr[m.Point] = err
			}
		}
	}
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if ours(m) {
			err := lastErr[m.Point]
			if err == nil {
				err = errors.New("still mounted")
			}
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Point, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (try umount -l on them)", errors.Join(errs...))
	}
	if count == 0 {
		c.say("nothing of labctl is mounted (below %s)", strings.Join(roots, ", "))
	}
	return nil
}

// removeCgroups removes the cgroup parent and every cgroup below it, in
// every hierarchy.
func (c *cleanup) removeCgroups(context.Context) error {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	removed, where := 0, 0
	for _, h := range hierarchies {
		dirs := cgroupDirs(filepath.Join(h.Point, c.cgroupParent))
		if len(dirs) > 0 {
			where++
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			err := unix.Rmdir(dirs[i])
			switch {
			case err == nil:
				removed++
			case errors.Is(err, unix.ENOENT):
			case errors.Is(err, unix.EBUSY):
				errs = append(errs, fmt.Errorf("remove the cgroup %s: processes are still in it (%s): "+
					"run labctl killall again", dirs[i], joinInts(cgroupProcs(dirs[i]))))
			default:
				errs = append(errs, fmt.Errorf("remove the cgroup %s: %w", dirs[i], err))
			}
		}
	}
	if removed == 0 && len(errs) == 0 {
		c.say("no cgroups under %s", c.cgroupParent)
	} else if removed > 0 {
		c.say("removed %d cgroups under %s in %d hierarchies", removed, c.cgroupParent, where)
	}
	return errors.Join(errs...)
}

// removeNetwork removes the pod network.
func (c *cleanup) removeNetwork(ctx context.Context) error {
	cfg := c.network
	c.say("removing the pod network: bridge %s, nftables table inet %s, labctl's routes, network namespaces in %s",
		orDefault(cfg.BridgeName, networking.DefaultBridgeName), orDefault(cfg.Table, networking.DefaultTable),
		filepath.Join(orDefault(cfg.RunDir, networking.DefaultRunDir), "netns"))
	err := networking.Cleanup(ctx, cfg)
	if c.proxyTable != "" {
		c.say("removing the service proxy's rules: nftables table ip %s", c.proxyTable)
		err = errors.Join(err, proxy.Cleanup(c.proxyTable))
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// uninstall runs killall and removes labctl's files. It goes on past
// failures and returns them all, but never removes a directory that still
// has something mounted in it.
func (c *cleanup) uninstall(ctx context.Context) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	// What the data directory tells, read before it goes.
	uids := c.podUIDs()
	kubeconfigOurs, why := c.kubeconfigIsOurs()

	var errs []error
	add := func(err error) {
		if err != nil {
			c.say("  error: %v", err)
			errs = append(errs, err)
		}
	}
	if err := c.killall(ctx); err != nil {
		errs = append(errs, err) // killall printed its errors
	}
	add(c.removeService(ctx))
	add(c.removePodLogs(uids))
	switch {
	case below(c.kubeconfig, c.configDir):
		// It goes with the config directory.
	case kubeconfigOurs:
		add(c.removeFile(c.kubeconfig, "the admin kubeconfig"))
	case why != "":
		c.say("leaving %s: %s", c.kubeconfig, why)
	}
	if err := checkDataDir(c.dataDir); err != nil {
		add(err)
	} else {
		add(c.removeTree(c.dataDir, "the data directory"))
	}
	add(c.removeVolumes())
	add(c.removeTree(c.runDir, "the run directory"))
	add(c.removeTree(c.configDir, "the configuration"))
	for _, f := range c.installed {
		add(c.removeFile(f, "installed by install.sh"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("uninstall: not everything is removed (see above): fix what the errors say, then run labctl uninstall again: %w",
			errors.Join(errs...))
	}
	c.say("uninstall: done; labctl is gone from this machine")
	return nil
}

// podUIDs are the UIDs of the pods with a directory under podsDir.
func (c *cleanup) podUIDs() map[string]bool {
	uids := map[string]bool{}
	entries, _ := os.ReadDir(c.podsDir)
	for _, e := range entries {
		if e.IsDir() {
			uids[e.Name()] = true
		}
	}
	return uids
}

// kubeconfigIsOurs tells whether the kubeconfig trusts the CA in the data
// directory, that is, whether this labctl wrote it; if not, why not ("" when
// there is no kubeconfig).
func (c *cleanup) kubeconfigIsOurs() (bool, string) {
	if c.kubeconfig == "" {
		return false, ""
	}
	if _, err := os.Stat(c.kubeconfig); errors.Is(err, fs.ErrNotExist) {
		return false, ""
	}
	caFile := filepath.Join(c.dataDir, "server", "tls", pki.CAName+".crt")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return false, fmt.Sprintf("cannot tell whether labctl wrote it (no CA in %s); remove it yourself if it did", caFile)
	}
	cfg, err := clientcmd.LoadFromFile(c.kubeconfig)
	if err != nil {
		return false, fmt.Sprintf("it is not a kubeconfig labctl wrote (%v)", err)
	}
	for _, cluster := range cfg.Clusters {
		if bytes.Equal(bytes.TrimSpace(cluster.CertificateAuthorityData), bytes.TrimSpace(ca)) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("it does not trust this labctl's CA (%s), so another cluster wrote it", caFile)
}

// removeService disables and removes install.sh's systemd unit.
func (c *cleanup) removeService(ctx context.Context) error {
	if _, err := os.Stat(c.unitFile); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	manages := c.systemdManages()
	if manages {
		c.say("disabling %s (systemctl disable)", c.systemdUnit)
		errs = append(errs, c.systemctl(ctx, "disable", c.systemdUnit))
	}
	errs = append(errs, c.removeFile(c.unitFile, "the systemd unit"))
	if manages {
		errs = append(errs, c.systemctl(ctx, "daemon-reload"))
		c.systemctl(ctx, "reset-failed", c.systemdUnit) // fails when it has not failed
	}
	return errors.Join(errs...)
}

// removePodLogs removes the log directories of the pods with the UIDs,
// <logDir>/<namespace>_<name>_<uid>, and logDir if nothing else is in it.
func (c *cleanup) removePodLogs(uids map[string]bool) error {
	entries, err := os.ReadDir(c.logDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	removed := 0
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '_')
		if !e.IsDir() || i < 0 || !uids[e.Name()[i+1:]] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.logDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if removed > 0 {
		c.say("removed the logs of %d labctl pods from %s", removed, c.logDir)
	}
	if err := os.Remove(c.logDir); err == nil {
		c.say("removed %s (empty)", c.logDir)
	}
	return errors.Join(errs...)
}

// removeVolumes removes the local-path volumes' directories from a
// storage directory outside the data directory, and the storage directory
// if nothing else is in it: it may be the user's, with more in it.
func (c *cleanup) removeVolumes() error {
	dir := filepath.Clean(c.storageDir)
	if c.storageDir == "" || dir == filepath.Clean(c.dataDir) || below(dir, c.dataDir) {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		// pvc-<uid>_<namespace>_<name>, as addons/localpath names them;
		// a directory, not a link to one.
		if e.IsDir() && strings.HasPrefix(e.Name(), "pvc-") && strings.Count(e.Name(), "_") >= 2 {
			errs = append(errs, c.removeTree(filepath.Join(dir, e.Name()), "a local-path volume"))
		}
	}
	if !slices.Contains(systemDirs, dir) && os.Remove(dir) == nil {
		c.say("removed %s (the local-path volumes' directory, empty)", dir)
	}
	return errors.Join(errs...)
}

// systemDirs are directories that are never a data directory.
var systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt",
	"/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/lib"}

// checkDataDir refuses to let uninstall remove a directory that is not
// labctl's: a system directory, or one that holds neither server/ nor
// agent/ and is not empty (a mistyped --data-dir).
func checkDataDir(dir string) error {
	if slices.Contains(systemDirs, filepath.Clean(dir)) {
		return fmt.Errorf("not removing the data directory %s: it is a system directory; check --data-dir", dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 || slices.ContainsFunc(entries, func(e fs.DirEntry) bool {
		return e.IsDir() && (e.Name() == "server" || e.Name() == "agent")
	}) {
		return nil
	}
	return fmt.Errorf("not removing the data directory %s: it holds neither server/ nor agent/, so it may not be labctl's; "+
		"check --data-dir (and remove it yourself if it is labctl's)", dir)
}

// removeTree removes dir and everything in it, unless something is still
// mounted below it (removing would reach into that file system). When dir
// itself is a mount point its contents go and it stays.
func (c *cleanup) removeTree(dir, what string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	var inside []string
	isMountPoint := false
	for _, m := range mounts {
		if m.Point == dir {
			isMountPoint = true
		} else if below(m.Point, dir) {
			inside = append(inside, m.Point)
		}
	}
	if len(inside) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted in it: unmount them (umount -l), then run labctl uninstall again",
			dir, strings.Join(inside, ", "))
	}
	if !isMountPoint {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		c.say("removed %s (%s)", dir, what)
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	c.say("removed what was in %s (%s; it is a mount point, so it stays)", dir, what)
	return nil
}

// removeFile removes one file, if it is there.
func (c *cleanup) removeFile(path, what string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c.say("removed %s (%s)", path, what)
	return nil
}

// below tells whether path is strictly inside dir.
func below(path, dir string) bool {
	dir = filepath.Clean(dir)
	return dir != "/" && strings.HasPrefix(path, dir+"/")
}

// process is one entry of /proc.
type process struct {
	pid, ppid int
	args      []string
}

// listProcesses lists the processes with a command line (not kernel
// threads).
func listProcesses() ([]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list the processes: %w", err)
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, err := readCmdline(pid)
		if err != nil || len(args) == 0 {
			continue // gone, or a kernel thread
		}
		out = append(out, process{pid: pid, ppid: readPPID(pid), args: args})
	}
	return out, nil
}

// readCmdline returns the arguments of process pid.
func readCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), "\x00"), nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name:
// the state, then the parent's pid, ...
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func readPPID(pid int) int {
	if f := procStat(pid); len(f) > 1 {
		ppid, _ := strconv.Atoi(f[1])
		return ppid
	}
	return 0
}

// alive tells whether the process exists and has not exited (a zombie
// has).
func alive(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry = mountinfo.Mount

// readMounts returns this process's mounts, in the order they were made.
func readMounts() ([]mountEntry, error) { return mountinfo.Read() }

// cgroupHierarchies are the mounted cgroup hierarchies (v1 and v2), one
// entry per mount point.
func cgroupHierarchies() ([]mountEntry, error) {
	mounts, err := readMounts()
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	seen := map[string]bool{}
	for _, m := range mounts {
		if (m.FSType == "cgroup" || m.FSType == "cgroup2") && !seen[m.Point] {
			seen[m.Point] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// cgroupDirs returns dir and the cgroups below it, parents first; none
// when dir does not exist.
func cgroupDirs(dir string) []string {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs
}

// cgroupProcs returns the pids in the cgroup at dir (not below it).
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func sortedKeys(m map[int]bool) []int { return slices.Sorted(maps.Keys(m)) }

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
