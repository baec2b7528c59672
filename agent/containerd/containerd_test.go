package containerd

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"labctl/internal/tomlstr"
)

func TestRenderConfig(t *testing.T) {
	cfg := Defaults("/var/lib/labctl")
	cfg.Binary = "/usr/bin/containerd"
	cfg, err := cfg.complete()
	if err != nil {
		t.Fatal(err)
	}
	got := string(cfg.renderConfig())
	for _, want := range []string{
		"version = 2\n",
		`root = "/var/lib/labctl/agent/containerd"`,
		`state = "/run/labctl/containerd"`,
		`address = "/run/labctl/containerd/containerd.sock"`,
		`"io.containerd.grpc.v1.cri",`,
		`"io.containerd.snapshotter.v1.devmapper",`,
		`config_path = "/var/lib/labctl/agent/etc/containerd/certs.d"`,
		`level = "info"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config.toml lacks %q:\n%s", want, got)
		}
	}
	// What labctl needs must stay on.
	for _, keep := range []string{"overlayfs", "native", "runtime.v2", "runtime.v1.linux", "content", "metadata", "images", "leases", "tasks", "containers", "events", "namespaces", "diff", "gc"} {
		for _, p := range DisabledPlugins {
			if strings.HasSuffix(p, "."+keep) || strings.Contains(p, "."+keep+".") {
				t.Errorf("disabled plugin %s is one labctl needs (%s)", p, keep)
			}
		}
	}
	if cfg.ConfigFile != "/var/lib/labctl/agent/etc/containerd/config.toml" || cfg.LogFile != "/var/lib/labctl/agent/containerd/containerd.log" {
		t.Errorf("paths: config %s, log %s", cfg.ConfigFile, cfg.LogFile)
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:      `"/a/b"`,
		`a"b\c`:     `"a\"b\\c"`,
		"tab\there": `"tab\there"`,
		"\x01":      `"\u0001"`,
		"é":         `"é"`,
	} {
		if got := tomlstr.Quote(in); got != want {
			t.Errorf("tomlstr.Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := Defaults("/d")
	cfg.Address = "/" + strings.Repeat("x", 120) + "/c.sock"
	cfg.Binary = "/usr/bin/containerd"
	if _, err := cfg.complete(); err == nil || !strings.Contains(err.Error(), "shorter than 108 bytes") {
		t.Errorf("long socket path: %v", err)
	}
	cfg = Defaults("/d")
	cfg.Binary = "no-such-containerd-binary"
	if _, err := cfg.complete(); err == nil || !strings.Contains(err.Error(), "apt-get install containerd") {
		t.Errorf("missing binary: %v", err)
	}
	if _, err := (Config{}).complete(); err == nil {
		t.Error("no root: no error")
	}
	if got := EndpointAddress("unix:///run/containerd/containerd.sock"); got != "/run/containerd/containerd.sock" {
		t.Errorf("EndpointAddress = %s", got)
	}
}

// needContainerd skips a test that runs containerd when it cannot run.
func needContainerd(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run containerd")
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("containerd is not installed")
	}
	return bin
}

// testConfig returns a configuration under a short temporary directory
// (unix socket paths must stay under 108 bytes) that the test removes,
// checking that nothing is left mounted under it.
func testConfig(t *testing.T) Config {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "lcd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if mounts, err := os.ReadFile("/proc/mounts"); err == nil && strings.Contains(string(mounts), " "+dir+"/") {
			t.Errorf("mounts left under %s:\n%s", dir, mounts)
		}
		os.RemoveAll(dir)
	})
	cfg := Defaults(dir)
	cfg.State = filepath.Join(dir, "state")
	cfg.Address = filepath.Join(dir, "c.sock")
	cfg.StartTimeout = 20 * time.Second
	return cfg
}

func TestStartSuperviseStop(t *testing.T) {
	needContainerd(t)
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	rt, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd %s answered after %v", rt.Version(), time.Since(start))
	if rt.Version() == "" || !rt.Managed() || rt.Address() != cfg.Address {
		t.Errorf("version %q, managed %v, address %s", rt.Version(), rt.Managed(), rt.Address())
	}
	client := rt.Client()
	if ok, err := client.IsServing(ctx); !ok || err != nil {
		t.Fatalf("IsServing = %v, %v", ok, err)
	}
	// CRI is off, overlayfs is on.
	plugins, err := client.IntrospectionService().Plugins(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]bool{}
	for _, p := range plugins.Plugins {
		loaded[p.Type+"."+p.ID] = p.InitErr == nil
	}
	if loaded["io.containerd.grpc.v1.cri"] {
		t.Error("the CRI plugin is loaded")
	}
	for _, want := range []string{"io.containerd.snapshotter.v1.overlayfs", "io.containerd.runtime.v2.task", "io.containerd.grpc.v1.tasks", "io.containerd.grpc.v1.images", "io.containerd.gc.v1.scheduler"} {
		if !loaded[want] {
			t.Errorf("plugin %s is not loaded", want)
		}
	}
	if b, err := os.ReadFile(cfg.ConfigFile); err != nil || !strings.Contains(string(b), cfg.RegistryConfigDir) {
		t.Errorf("config file: %v\n%s", err, b)
	}

	// Killed, it comes back, and the same client works again.
	pid := rt.PID()
	if pid == 0 {
		t.Fatal("no pid")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(15 * time.Second)
	for rt.PID() == 0 || rt.PID() == pid {
		if time.Now().After(deadline) {
			t.Fatal("containerd was not started again")
		}
		time.Sleep(50 * time.Millisecond)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	if ok, err := client.IsServing(sctx); !ok || err != nil {
		t.Fatalf("after restart: IsServing = %v, %v", ok, err)
	}
	scancel()

	// An endpoint client can use the same containerd.
	ectx, ecancel := context.WithCancel(ctx)
	ert, err := Start(ectx, Config{Endpoint: "unix://" + cfg.Address})
	if err != nil {
		t.Fatal(err)
	}
	if ert.Managed() || ert.Version() != rt.Version() {
		t.Errorf("endpoint runtime: managed %v, version %q", ert.Managed(), ert.Version())
	}
	ecancel()
	<-ert.Done()

	pid = rt.PID()
	cancel()
	select {
	case <-rt.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("containerd did not stop")
	}
	if alive(pid) {
		t.Errorf("containerd (pid %d) still runs", pid)
	}
	if _, err := os.Stat(filepath.Join(cfg.State, "labctl-containerd.pid")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}

func TestStartReplacesLeftover(t *testing.T) {
	bin := needContainerd(t)
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A containerd that an earlier labctl started and did not stop.
	full, err := cfg.complete()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{full.State, full.Root} {
		os.MkdirAll(d, 0o711)
	}
	if err := writeFileAtomic(full.ConfigFile, full.renderConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	old := exec.Command(bin, "--config", full.ConfigFile)
	old.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	oldDone := make(chan struct{})
	go func() { old.Wait(); close(oldDone) }()
	defer func() {
		old.Process.Kill()
		<-oldDone
	}()
	os.WriteFile(filepath.Join(full.State, "labctl-containerd.pid"), []byte(strconv.Itoa(old.Process.Pid)), 0o644)
	for probe(full.Address) != nil {
		select {
		case <-oldDone:
			t.Fatal("the leftover containerd exited")
		case <-time.After(20 * time.Millisecond):
		}
	}

	rt, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-oldDone:
	default:
		t.Error("the leftover containerd still runs")
	}
	if rt.PID() == old.Process.Pid {
		t.Error("the leftover was adopted")
	}
	cancel()
	<-rt.Done()
}

func TestStartRefusesForeignSocket(t *testing.T) {
	needContainerd(t)
	cfg := testConfig(t)
	os.MkdirAll(filepath.Dir(cfg.Address), 0o755)
	l, err := net.Listen("unix", cfg.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "that labctl did not start") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	needContainerd(t)
	cfg := testConfig(t)
	// A binary that fails at once, as containerd does with a bad config.
	script := filepath.Join(filepath.Dir(cfg.Address), "fake-containerd")
	os.WriteFile(script, []byte("#!/bin/sh\necho 'containerd: failed to load TOML: bad' >&2\nexit 3\n"), 0o755)
	cfg.Binary = script
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "exited while starting (exit status 3)") ||
		!strings.Contains(err.Error(), "failed to load TOML: bad") {
		t.Fatalf("err = %v", err)
	}

	// Nothing at the endpoint.
	_, err = Start(context.Background(), Config{Endpoint: "unix://" + cfg.Address + ".none"})
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("endpoint: err = %v", err)
	}
	_, err = Dial(context.Background(), cfg.Address+".none")
	if !errors.Is(err, ErrNotServing) {
		t.Fatalf("Dial: err = %v", err)
	}
}
