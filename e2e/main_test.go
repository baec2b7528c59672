// Package e2e drives a real `labctl server --disable-agent` with stock
// kubectl binaries, as students do, and checks that kubectl behaves as it
// does against an upstream cluster.
//
// TestMain builds labctl once (E2E_LABCTL_BIN names a binary to use
// instead). Each test function starts its own server (startCluster) and
// runs its checks once per kubectl version, in parallel (forVersions): 1.27
// and 1.33 by default, or the comma-separated list in E2E_KUBECTL_VERSIONS.
// The kubectl binaries are looked up as kubectl.<minor version> next to the
// file the `kubectl` on PATH resolves to, or in E2E_KUBECTL_DIR; a missing
// one skips that version's checks. -short skips everything.
//
// The checks assert upstream's behaviour, so a failure is a difference from
// a real cluster. Checks that can pass only once the server publishes
// OpenAPI live in TestOpenAPIDependent (openapi_test.go).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"labctl/internal/syncbuf"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// labctlBin is the labctl binary TestMain built.
var labctlBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "e2e: -short: the end-to-end tests are skipped")
		os.Exit(m.Run())
	}
	if bin := os.Getenv("E2E_LABCTL_BIN"); bin != "" {
		// A labctl built elsewhere (another commit, a release).
		labctlBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "labctl-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	labctlBin = filepath.Join(dir, "labctl")
	build := exec.Command("bash", "scripts/build.sh", labctlBin)
	build.Dir = ".." // the repository root: this package is <root>/e2e
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build labctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- the server

// cluster is one running `labctl server --disable-agent`.
type cluster struct {
	dir        string // the test's temporary directory
	kubeconfig string
	addr       string // 127.0.0.1:port
	client     *http.Client
	bin        string   // the labctl executable
	args       []string // the server's command line
	stopped    bool     // stop was called
	cmd        *exec.Cmd
	stderr     *syncbuf.Buffer
	exited     chan struct{} // closed when the process has exited
	exitErr    error         // set before exited closes
}

// startCluster starts a server for t on a free port, waits until /readyz
// answers, and stops it when t ends: first checking /healthz (the server
// must survive every test), then SIGTERM, then SIGKILL if it lingers. The
// server's log goes to the test log when t failed.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	return startClusterWith(t, clusterOptions{})
}

// clusterOptions say how startClusterWith starts the server.
type clusterOptions struct {
	// agent runs the server with its node (the embedded agent), as
	// `labctl server` does by default.
	agent bool
	// prepare is called with the data directory before the start.
	prepare func(dataDir string)
	// resolvConf, when set, turns CoreDNS on with the upstream resolvers
	// in this file (the tests' own, on loopback). Without it, CoreDNS is
	// off: its start-up probe would go to the machine's resolvers.
	resolvConf string
	// binary, when set, is the labctl executable to run instead of
	// labctlBin (a copy under another name, for the killall test).
	binary string
}

func startClusterWith(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := tryStartCluster(t, opts)
		if err == nil {
			t.Cleanup(func() { c.checkHealthy(t) })
			return c
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("start labctl server: %v", lastErr)
	return nil
}

func tryStartCluster(t *testing.T, opts clusterOptions) (*cluster, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &cluster{
		dir:        dir,
		bin:        labctlBin,
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		stderr:     &syncbuf.Buffer{},
	}
	if opts.binary != "" {
		c.bin = opts.binary
	}
	// The machine's /etc/labctl/config.yaml and LABCTL_* variables must
	// not change the server under test: an explicit config file of our
	// own, and no LABCTL_ variables.
	c.args = []string{"server",
		"--data-dir", filepath.Join(dir, "data"),
		"--write-kubeconfig", c.kubeconfig,
		"--https-listen-port", strconv.Itoa(port)}
	if !opts.agent {
		// A node's pods reach the API server at the node's address (the
		// kubernetes Service): only then must it listen beyond loopback.
		c.args = append(c.args, "--bind-address", "127.0.0.1")
	}
	if opts.resolvConf != "" {
		c.args = append(c.args, "--resolv-conf", opts.resolvConf)
	} else {
		c.args = append(c.args, "--disable", "coredns")
	}
	if opts.agent {
		c.args = append(c.args, "--config", writeFile(t, dir, "config.yaml", "\n"), "--node-name", nodeName)
	} else {
		c.args = append(c.args, "--disable-agent", "--config", writeFile(t, dir, "config.yaml", "disable-agent: true\n"))
	}
	if opts.prepare != nil {
		opts.prepare(filepath.Join(dir, "data"))
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			t.Logf("labctl server log (%s):\n%s", c.addr, c.stderr.String())
		}
	})
	if err := c.waitReady(30 * time.Second); err != nil {
		c.stop(t)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, c.stderr.String())
	}
	return c, nil
}

// start starts the server process with c.args.
func (c *cluster) start() error {
	c.cmd = exec.Command(c.bin, c.args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LABCTL_") {
			c.cmd.Env = append(c.cmd.Env, e)
		}
	}
	c.cmd.Stdout = c.stderr
	c.cmd.Stderr = c.stderr
	// Should the test binary die, the server goes with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.exited = make(chan struct{})
	c.stopped = false
	if err := c.cmd.Start(); err != nil {
		return err
	}
	exited := c.exited
	cmd := c.cmd
	go func() {
		err := cmd.Wait()
		c.exitErr = err
		close(exited)
	}()
	return nil
}

// stop ends the server: SIGTERM, then SIGKILL after 20 s. It is safe to
// call more than once.
func (c *cluster) stop(t *testing.T) {
	c.stopped = true
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("labctl server did not stop within 20 s of SIGTERM; killing it")
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// kubeconfigFile is the part of the admin kubeconfig the harness reads.
type kubeconfigFile struct {
	Clusters []struct {
		Cluster struct {
			Server string `yaml:"server"`
			CA     string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		User struct {
			Cert string `yaml:"client-certificate-data"`
			Key  string `yaml:"client-key-data"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// httpClient builds a client that authenticates as the kubeconfig's user.
func httpClient(kubeconfig string) (*http.Client, string, error) {
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, "", err
	}
	var kc kubeconfigFile
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, "", err
	}
	if len(kc.Clusters) == 0 || len(kc.Users) == 0 {
		return nil, "", errors.New("kubeconfig has no cluster or no user (yet)")
	}
	dec := func(s string) []byte { b, _ := base64.StdEncoding.DecodeString(s); return b }
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(dec(kc.Clusters[0].Cluster.CA)) {
		return nil, "", errors.New("kubeconfig: no CA certificate")
	}
	cert, err := tls.X509KeyPair(dec(kc.Users[0].User.Cert), dec(kc.Users[0].User.Key))
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: client certificate: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, kc.Clusters[0].Cluster.Server, nil
}

// waitReady waits for the kubeconfig, then for /readyz to answer 200.
func (c *cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("labctl server exited before it was ready: %v", c.exitErr)
		default:
		}
		if c.client == nil {
			client, server, err := httpClient(c.kubeconfig)
			if err != nil {
				last = err
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if want := "https://" + c.addr; server != want {
				return fmt.Errorf("the kubeconfig names server %q, want %q", server, want)
			}
			c.client = client
		}
		code, body, err := c.get("/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("/readyz: %d %q %v", code, body, err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("labctl server not ready after %v: %v", timeout, last)
}

// get sends GET path to the server with the admin's certificate.
func (c *cluster) get(path string) (int, string, error) {
	resp, err := c.client.Get("https://" + c.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// checkHealthy fails t unless the server is running and /healthz says ok.
func (c *cluster) checkHealthy(t testing.TB) {
	t.Helper()
	if c.stopped {
		return // stopped by the test
	}
	select {
	case <-c.exited:
		t.Errorf("labctl server died during the test: %v", c.exitErr)
		return
	default:
	}
	code, body, err := c.get("/healthz")
	if err != nil || code != http.StatusOK || body != "ok" {
		t.Errorf("labctl server unhealthy at the end of the test: GET /healthz = %d %q, %v", code, body, err)
	}
}

// ---- kubectl

// versions are the kubectl minor versions every check runs with.
func versions() []string {
	if v := os.Getenv("E2E_KUBECTL_VERSIONS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"1.27", "1.33"}
}

// kubectlDir is where the kubectl.<version> binaries are.
func kubectlDir() string {
	if d := os.Getenv("E2E_KUBECTL_DIR"); d != "" {
		return d
	}
	path, err := exec.LookPath("kubectl")
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return filepath.Dir(path)
}

// kubectl runs one kubectl version against a cluster.
type kubectl struct {
	c        *cluster
	version  string // "1.27"
	minor    int    // 27
	bin      string
	cacheDir string
	env      []string // extra environment variables (KEY=value)
}

// kubectl returns the runner for version, skipping t when that binary is
// missing, and checks at the end of t that the server is still healthy.
func (c *cluster) kubectl(t *testing.T, version string) *kubectl {
	t.Helper()
	dir := kubectlDir()
	bin := filepath.Join(dir, "kubectl."+version)
	if dir == "" {
		t.Skipf("kubectl %s: no kubectl on PATH and E2E_KUBECTL_DIR is unset", version)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("kubectl %s is not installed: %s is missing (CI has kubectl.1.27 to kubectl.1.33 next to the kubectl on PATH; or set E2E_KUBECTL_DIR)", version, bin)
	}
	minor, _ := strconv.Atoi(strings.TrimPrefix(version, "1."))
	t.Cleanup(func() { c.checkHealthy(t) })
	return &kubectl{c: c, version: version, minor: minor, bin: bin,
		cacheDir: filepath.Join(c.dir, "kubectl-cache-"+version)}
}

// withEnv returns a copy of k that adds env (KEY=value) to kubectl's
// environment.
func (k *kubectl) withEnv(env ...string) *kubectl {
	k2 := *k
	k2.env = append(append([]string(nil), k.env...), env...)
	return &k2
}

// result is what one kubectl run gave.
type result struct {
	version string // kubectl's, "1.33"
	args    []string
	stdout  string
	stderr  string
	code    int // exit code; -1 when it could not run or was killed
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit code %d\n[stdout]\n%s\n[stderr]\n%s", r.cmdline(), r.code, clip(r.stdout), clip(r.stderr))
}

func (r result) cmdline() string {
	return "kubectl." + r.version + " " + strings.Join(quoteArgs(r.args), " ")
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " '\"{}[]()*$!&|;<>\\\n") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = clip(a)
	}
	return out
}

func clip(s string) string {
	const max = 4000
	if len(s) > max {
		return s[:max] + fmt.Sprintf("... (%d bytes more)\n", len(s)-max)
	}
	return s
}

// command builds the exec.Cmd for kubectl args.
func (k *kubectl) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--kubeconfig", k.c.kubeconfig, "--cache-dir", k.cacheDir}, args...)
	cmd := exec.CommandContext(ctx, k.bin, full...)
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") && !strings.HasPrefix(e, "KUBE_EDITOR=") && !strings.HasPrefix(e, "EDITOR=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, k.env...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// run runs kubectl with args (60 s at most), logs the command line to t
// and returns what it gave.
func (k *kubectl) run(t testing.TB, args ...string) result {
	t.Helper()
	return k.runStdin(t, "", args...)
}

// runStdin runs kubectl with stdin as its standard input.
func (k *kubectl) runStdin(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := k.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	r := result{version: k.version, args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		r.code = exit.ExitCode()
	default:
		r.code = -1
		r.stderr += fmt.Sprintf("\n[e2e: kubectl did not finish: %v]\n", err)
	}
	t.Logf("%s → exit %d (%v)", r.cmdline(), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// stream is a kubectl process whose output lines arrive on a channel.
type stream struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	lines  chan string
	seen   []string
	stderr *syncbuf.Buffer
	done   chan struct{}
}

// start starts a long-running kubectl (such as get -w), killed when t ends
// or after 60 s.
func (k *kubectl) start(t testing.TB, args ...string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	s := &stream{cancel: cancel, lines: make(chan string, 100), stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = k.command(ctx, args...)
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("kubectl %v: %v", args, err)
	}
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("kubectl %v: %v", args, err)
	}
	t.Logf("kubectl.%s %s &", k.version, strings.Join(quoteArgs(args), " "))
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)
	return s
}

// waitFor returns the first line (from now on) for which match is true, or
// "", false after timeout or when the process ends.
func (s *stream) waitFor(timeout time.Duration, match func(string) bool) (string, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return "", false
			}
			s.seen = append(s.seen, line)
			if match(line) {
				return line, true
			}
		case <-timer.C:
			return "", false
		}
	}
}

func (s *stream) stop() {
	s.cancel()
	<-s.done
}

func (s *stream) output() string {
	return strings.Join(s.seen, "\n") + "\n[stderr]\n" + s.stderr.String()
}

// ---- running checks per version

// forVersions runs fn once per kubectl version, in parallel subtests named
// after the version.
func forVersions(t *testing.T, c *cluster, fn func(t *testing.T, k *kubectl)) {
	t.Helper()
	for _, v := range versions() {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			fn(t, c.kubectl(t, v))
		})
	}
}

// nsFor is a namespace name unique to a test and kubectl version.
func nsFor(prefix string, k *kubectl) string {
	return fmt.Sprintf("%s-%d", prefix, k.minor)
}

// writeFile writes content to name in a new temporary directory of t and
// returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
