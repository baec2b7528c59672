// Package containerd runs the node's container runtime: labctl's own
// containerd (the machine's binary, with config, socket, root and state of
// its own, so that it never disturbs a system containerd or Docker), or a
// containerd that someone else runs at --container-runtime-endpoint. Either
// way the caller gets a client whose default namespace is labctl's
// (Namespace).
//
// labctl's containerd gets a generated config.toml that turns off the
// plugins labctl does not use (above all CRI: labctl's kubelet speaks
// containerd's own API) and points the registry configuration at a
// directory of hosts.toml files. Start runs it, waits until its socket
// answers, starts it again (with backoff) whenever it exits, and stops it
// (SIGTERM, then SIGKILL) when the context ends.
//
// Containers outlive containerd: each runs under its runc v2 shim, which is
// not containerd's child once started. So labctl stops its containerd when
// it stops (the process is also killed if labctl dies, through the parent
// death signal, so no containerd is left behind holding the socket), and
// the next labctl starts containerd again, which finds the running
// containers in its state directory and reconnects to their shims:
// restarting labctl does not restart containers. The state directory is
// under /run, so a reboot clears it along with the containers. containerd
// runs in a process group of its own, so a Ctrl-C in labctl's terminal
// reaches labctl, which then stops containerd in order.
package containerd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
)

// ErrNotServing means that nothing answers at a containerd socket.
var ErrNotServing = errors.New("containerd is not serving")

// Runtime is a connection to containerd and, when labctl runs containerd
// itself, the supervisor that keeps it running.
type Runtime struct {
	cfg     Config
	client  *ctrd.Client
	managed bool
	version string
	done    chan struct{}

	mu   sync.Mutex
	proc *process // the running containerd (managed only)
}

// process is one run of the containerd binary.
type process struct {
	cmd       *exec.Cmd
	started   time.Time
	logOffset int64         // size of the log file when this run started
	exited    chan struct{} // closed when the process has exited
	err       error         // the exit status; read after exited is closed
}

// Start returns a client of the containerd cfg describes. Without
// cfg.Endpoint it writes containerd's configuration, starts containerd,
// waits until it serves its socket (at most cfg.StartTimeout), and then
// supervises it until ctx ends, when it stops containerd and closes the
// client; Done tells when that is over. With cfg.Endpoint it only connects
// (and closes the client when ctx ends).
func Start(ctx context.Context, cfg Config) (*Runtime, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, managed: cfg.Endpoint == "", done: make(chan struct{})}
	if !r.managed {
		return r, r.connectEndpoint(ctx)
	}

	for _, dir := range []string{cfg.Root, cfg.State, filepath.Dir(cfg.Address), filepath.Dir(cfg.LogFile)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if cfg.RegistryConfigDir != "" {
		if err := os.MkdirAll(cfg.RegistryConfigDir, 0o755); err != nil {
			return nil, fmt.Errorf("containerd: %w", err)
		}
	}
	if err := writeFileAtomic(cfg.ConfigFile, cfg.renderConfig(), 0o644); err != nil {
		return nil, fmt.Errorf("containerd: write its configuration: %w", err)
	}
	if err := r.replaceLeftover(); err != nil {
		return nil, err
	}

	proc, err := r.startProcess()
	if err != nil {
		return nil, err
	}
	if err := r.waitReady(ctx, proc); err != nil {
		r.stopProcess(proc)
		return nil, err
	}
	client, err := ctrd.New(cfg.Address, ctrd.WithDefaultNamespace(Namespace), ctrd.WithTimeout(cfg.StartTimeout))
	if err != nil {
		r.stopProcess(proc)
		return nil, fmt.Errorf("containerd: connect to %s: %w", cfg.Address, err)
	}
	r.client = client
	if err := r.readVersion(ctx); err != nil {
		client.Close()
		r.stopProcess(proc)
		return nil, err
	}
	cfg.Logger.Info("containerd is running", "version", r.version, "pid", proc.cmd.Process.Pid,
		"address", cfg.Address, "log", cfg.LogFile)
	go r.supervise(ctx, proc)
	return r, nil
}

// Client returns the containerd client; its default namespace is Namespace.
func (r *Runtime) Client() *ctrd.Client { return r.client }

// Address returns the socket containerd serves.
func (r *Runtime) Address() string { return r.cfg.Address }

// Managed tells whether labctl runs this containerd itself.
func (r *Runtime) Managed() bool { return r.managed }

// Version returns containerd's version, such as "1.6.20~ds1"; a node
// reports it as containerd://<version>.
func (r *Runtime) Version() string { return r.version }

// PID returns the process id of the containerd labctl runs, or 0 (when it
// is not running, or not labctl's).
func (r *Runtime) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	select {
	case <-r.proc.exited:
		return 0
	default:
		return r.proc.cmd.Process.Pid
	}
}

// Done is closed once the context given to Start has ended, the containerd
// labctl runs has stopped and the client is closed.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Dial connects to the containerd serving address, in labctl's namespace.
// When nothing answers there the error wraps ErrNotServing.
func Dial(ctx context.Context, address string) (*ctrd.Client, error) {
	address = EndpointAddress(address)
	if err := probe(address); err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNotServing, address, err)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	client, err := ctrd.New(address, ctrd.WithDefaultNamespace(Namespace), ctrd.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	return client, nil
}

// probe tells whether something accepts connections on the unix socket.
func probe(address string) error {
	conn, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Err != nil {
			return opErr.Err
		}
		return err
	}
	return conn.Close()
}

func (r *Runtime) connectEndpoint(ctx context.Context) error {
	addr := r.cfg.Address
	if err := probe(addr); err != nil {
		return fmt.Errorf("container runtime endpoint %s does not answer (%v): start containerd there, or leave --container-runtime-endpoint out and labctl runs its own", r.cfg.Endpoint, err)
	}
	client, err := ctrd.New(addr, ctrd.WithDefaultNamespace(Namespace), ctrd.WithTimeout(r.cfg.StartTimeout))
	if err != nil {
		return fmt.Errorf("container runtime endpoint %s: %w", r.cfg.Endpoint, err)
	}
	r.client = client
	if err := r.readVersion(ctx); err != nil {
		client.Close()
		return err
	}
	r.cfg.Logger.Info("using containerd at the container runtime endpoint", "endpoint", r.cfg.Endpoint, "version", r.version)
	go func() {
		<-ctx.Done()
		client.Close()
		close(r.done)
	}()
	return nil
}

func (r *Runtime) readVersion(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StartTimeout)
	defer cancel()
	v, err := r.client.Version(ctx)
	if err != nil {
		return fmt.Errorf("containerd at %s does not answer its version service: %w", r.cfg.Address, err)
	}
	r.version = v.Version
	return nil
}

// pidFile records the pid of the containerd labctl started, so that a
// later labctl can recognise a leftover.
func (r *Runtime) pidFile() string { return filepath.Join(r.cfg.State, "labctl-containerd.pid") }

// replaceLeftover deals with whatever serves the socket before labctl
// starts containerd: a containerd that an earlier labctl started with the
// same configuration is stopped (its containers keep running), anything
// else is an error; a dead socket file is removed.
func (r *Runtime) replaceLeftover() error {
	addr := r.cfg.Address
	if err := probe(addr); err != nil {
		for _, p := range []string{addr, addr + ".ttrpc"} {
			if fi, statErr := os.Lstat(p); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
				os.Remove(p)
			}
		}
		return nil
	}
	pid := 0
	if b, err := os.ReadFile(r.pidFile()); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid <= 0 || !r.isOurContainerd(pid) {
		return fmt.Errorf("containerd: something already serves %s that labctl did not start: stop it, "+
			"or use it with --container-runtime-endpoint=unix://%s", addr, addr)
	}
	r.cfg.Logger.Warn("stopping the containerd an earlier labctl left running (its containers keep running)", "pid", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("containerd: stop the leftover containerd (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(r.cfg.StopTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(r.cfg.StopTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// isOurContainerd tells whether pid runs containerd with this
// configuration file.
func (r *Runtime) isOurContainerd(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i, a := range args {
		if a == "--config" && i+1 < len(args) && args[i+1] == r.cfg.ConfigFile {
			return true
		}
	}
	return false
}

// alive tells whether the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// startProcess starts the containerd binary with its output appended to
// the log file.
func (r *Runtime) startProcess() (*process, error) {
	cfg := r.cfg
	if fi, err := os.Stat(cfg.LogFile); err == nil && fi.Size() > maxLogSize {
		os.Rename(cfg.LogFile, cfg.LogFile+".1")
	}
	logFile, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("containerd: open its log: %w", err)
	}
	defer logFile.Close()
	var offset int64
	if fi, err := logFile.Stat(); err == nil {
		offset = fi.Size()
	}

	cmd := exec.Command(cfg.Binary, "--config", cfg.ConfigFile)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = childEnv(cfg.Binary)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A process group of its own: a Ctrl-C meant for labctl does not
		// reach containerd, which labctl stops in order.
		Setpgid: true,
		// If labctl dies without stopping it, containerd dies too (the
		// shims, and so the containers, live on).
		Pdeathsig: syscall.SIGKILL,
	}
	// Pdeathsig follows the thread that forked the child, not the
	// process: had a goroutine started containerd on a thread the Go
	// runtime later ends (as it ends a thread a goroutine left locked, such
	// as one that entered a network namespace), containerd would be killed
	// then. So containerd is started and waited for on a thread of its own,
	// locked, that lives exactly as long as containerd.
	p := &process{started: time.Now(), logOffset: offset, exited: make(chan struct{})}
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		p.cmd = cmd
		startErr <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := <-startErr; err != nil {
		return nil, fmt.Errorf("containerd: start %s: %w", cfg.Binary, err)
	}
	if err := writeFileAtomic(r.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		cfg.Logger.Warn("cannot record containerd's pid", "err", err)
	}
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	cfg.Logger.Debug("started containerd", "pid", cmd.Process.Pid, "config", cfg.ConfigFile)
	return p, nil
}

// childEnv is labctl's environment with the containerd binary's directory
// in PATH, where containerd looks for its shim (containerd-shim-runc-v2).
func childEnv(binary string) []string {
	dir := filepath.Dir(binary)
	env := os.Environ()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range filepath.SplitList(v) {
				if d == dir {
					return env
				}
			}
			env[i] = "PATH=" + v + string(filepath.ListSeparator) + dir
			return env
		}
	}
	return append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:"+dir)
}

// waitReady waits until containerd accepts connections on its socket and
// its health service says it serves.
func (r *Runtime) waitReady(ctx context.Context, p *process) error {
	deadline := time.NewTimer(r.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("containerd exited while starting (%v)%s", p.err, r.logTail(p))
		case <-ctx.Done():
			return fmt.Errorf("containerd: gave up waiting for it to start: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("containerd did not answer on %s within %v of starting%s", r.cfg.Address, r.cfg.StartTimeout, r.logTail(p))
		case <-tick.C:
			if probe(r.cfg.Address) == nil {
				return nil
			}
		}
	}
}

// logTail returns the last lines containerd wrote in this run, for error
// messages.
func (r *Runtime) logTail(p *process) string {
	const maxBytes, maxLines = 16 << 10, 20
	f, err := os.Open(r.cfg.LogFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	start := p.logOffset
	if fi, err := f.Stat(); err == nil && fi.Size()-start > maxBytes {
		start = fi.Size() - maxBytes
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return ""
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > maxLines {
			lines = lines[1:]
		}
	}
	if len(lines) == 0 {
		return fmt.Sprintf("; its log %s has nothing from this run", r.cfg.LogFile)
	}
	return fmt.Sprintf("; the end of its log %s:\n  %s", r.cfg.LogFile, strings.Join(lines, "\n  "))
}

// supervise restarts containerd whenever it exits, until ctx ends; then it
// stops containerd and closes the client.
func (r *Runtime) supervise(ctx context.Context, p *process) {
	log := r.cfg.Logger
	defer close(r.done)
	backoff := restartBackoffMin
	lastStart := p.started
	for {
		select {
		case <-ctx.Done():
			r.client.Close()
			r.stopProcess(p)
			os.Remove(r.pidFile())
			log.Info("containerd stopped")
			return
		case <-p.exited:
		}
		if time.Since(lastStart) > restartBackoffReset {
			backoff = restartBackoffMin
		}
		log.Error("containerd exited; starting it again", "err", p.err, "in", backoff,
			"log", strings.TrimPrefix(r.logTail(p), "; "))
		select {
		case <-ctx.Done():
			r.client.Close()
			os.Remove(r.pidFile())
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartBackoffMax)
		lastStart = time.Now()
		next, err := r.startProcess()
		if err != nil {
			log.Error("cannot start containerd", "err", err)
			continue // p has exited: wait the backoff and try again
		}
		p = next
		if err := r.waitReady(ctx, p); err != nil {
			log.Error("containerd did not come back", "err", err)
			r.stopProcess(p)
			continue
		}
		log.Info("containerd is running again", "pid", p.cmd.Process.Pid)
	}
}

// stopProcess sends containerd SIGTERM, and SIGKILL if it has not exited
// after the stop timeout; it returns once the process has exited. Only the
// containerd process is signalled, never its process group.
func (r *Runtime) stopProcess(p *process) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(r.cfg.StopTimeout):
		r.cfg.Logger.Warn("containerd did not stop after SIGTERM; killing it", "after", r.cfg.StopTimeout)
		p.cmd.Process.Kill()
		<-p.exited
	}
}
