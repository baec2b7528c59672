package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"labctl/agent"
	"labctl/server"
	"labctl/server/join"
	"labctl/server/pki"
)

// runMainEnv makes the test binary run main() instead of the tests, so
// that tests can run labctl as a process without building it.
const runMainEnv = "GO_TEST_RUN_LABCTL_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// labctl returns a command that runs the test binary as labctl with args.
func labctl(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH")}
	return cmd
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestVersion(t *testing.T) {
	res := run(t, nil, "version")
	if res.err != nil {
		t.Fatal(res.err)
	}
	want := fmt.Sprintf("labctl version v0.1.0-dev (%s)\nkubernetes v1.37.2\n", runtime.Version())
	if res.stdout != want {
		t.Errorf("labctl version printed %q, want %q", res.stdout, want)
	}
}

func TestUnknownCommand(t *testing.T) {
	res := run(t, nil, "sever")
	if res.err == nil || !strings.Contains(res.err.Error(), `unknown command "sever"`) {
		t.Errorf("labctl sever: err %v, want an unknown command error", res.err)
	}
}

// TestServerProcess runs `labctl server` as a process with the in-memory
// datastore, waits for /healthz, sends SIGTERM and expects a clean exit.
func TestServerProcess(t *testing.T) {
	port := freePort(t)
	kubeconfig := filepath.Join(t.TempDir(), "admin.yaml")
	cmd := labctl(t, "server", "-c", configFile(t, "datastore-endpoint: memory://\ndisable-agent: true\n"),
		"-d", t.TempDir(), "--bind-address", "127.0.0.1", "--https-listen-port", strconv.Itoa(port),
		"--write-kubeconfig", kubeconfig,
		// Not CoreDNS on this machine's address, forwarding to its resolvers.
		"--disable", "coredns")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // self-signed until the cluster CA
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("labctl server exited before serving: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from %s after 20s: %v\nstderr:\n%s", url, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The built-in kubectl talks to it with the kubeconfig it wrote.
	out, err := labctl(t, "kubectl", "--kubeconfig", kubeconfig, "get", "namespaces", "-o", "name").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
		t.Errorf("labctl kubectl get namespaces: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("labctl server after SIGTERM: %v, want exit 0\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("labctl server still running 20s after SIGTERM\nstderr:\n%s", stderr.String())
	}
	for _, want := range []string{`msg="server ready" address=127.0.0.1:` + strconv.Itoa(port), `msg="server stopped"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestProcessExitCodes: errors go to stderr prefixed "labctl:" with exit
// status 1; output goes to stdout.
func TestProcessExitCodes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := labctl(t, "server", "-c", configFile(t, ""), "--cluster-cidr", "10.42.0.0/33")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("bad --cluster-cidr: %v, want exit status 1", err)
	}
	if !strings.HasPrefix(stderr.String(), "labctl: server: --cluster-cidr:") || stdout.Len() != 0 {
		t.Errorf("bad --cluster-cidr: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	cmd = labctl(t, "version")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("labctl version: %v", err)
	}
	if !strings.HasPrefix(stdout.String(), "labctl version ") || stderr.Len() != 0 {
		t.Errorf("labctl version: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestAgent(t *testing.T) {
	// A server that answers /healthz and the join paths, with a CA of
	// its own.
	certs, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/", join.Handler(join.Config{CAPEM: certs.CA.CertPEM, Secret: "s3cret", Signer: certs}))
	healthy := httptest.NewUnstartedServer(mux)
	healthy.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Serving.TLSCertificate()}}
	healthy.StartTLS()
	defer healthy.Close()
	token := join.Token{CAHash: join.CAHash(certs.CA.CertPEM), Secret: "s3cret"}.String()
	broken := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "datastore down", http.StatusInternalServerError)
	}))
	defer broken.Close()
	down := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))

	tests := []struct {
		name       string
		file       string
		args       []string
		wantServer string // the server line of the report
	}{{
		name:       "server answers",
		args:       []string{"-s", healthy.URL, "-t", token, "--node-name", "worker-1"},
		wantServer: "[ OK ] server: " + healthy.URL + "/healthz answered ok",
	}, {
		name:       "server and token from the config file",
		file:       "server: " + healthy.URL + "/\ntoken: s3cret\nnode-name: worker-1\n",
		wantServer: "[ OK ] server: " + healthy.URL + "/healthz answered ok",
	}, {
		name:       "server answers an error",
		args:       []string{"--server", broken.URL},
		wantServer: "[FAIL] server: GET " + broken.URL + `/healthz answered 500 Internal Server Error "datastore down"`,
	}, {
		name:       "nothing listens",
		args:       []string{"--server", down},
		wantServer: "[FAIL] server: GET " + down + "/healthz: ",
	}}
	var ran *agent.Config
	runAgent = func(_ context.Context, cfg agent.Config) error {
		ran = &cfg
		return nil
	}
	defer func() { runAgent = agent.Run }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = nil
			dataDir := t.TempDir()
			res := run(t, nil, append([]string{"agent", "-c", configFile(t, tt.file), "--data-dir", dataDir}, tt.args...)...)
			failed := strings.Count(res.stdout, "[FAIL]")
			if failed == 0 {
				// Joined: the node runs with its new credentials.
				want := filepath.Join(dataDir, "agent", "kubelet.kubeconfig")
				if res.err != nil || ran == nil || ran.Kubeconfig != want || ran.NodeName != "worker-1" || !ran.NodeIP.IsValid() {
					t.Errorf("labctl agent: err %v, ran %+v; want the node run with %s", res.err, ran, want)
				}
			} else if res.err == nil || !strings.Contains(res.err.Error(), "failed, see the fixes above") || ran != nil {
				t.Errorf("%d items failed, but the error %v (ran %v)", failed, res.err, ran != nil)
			}
			// It joins when every check passed (port 10250 may be taken by
			// a node another test runs at the same time).
			if joins := failed == 0; joins != strings.Contains(res.stdout, "joined: this node's credentials (system:node:worker-1) are in ") {
				t.Errorf("joined %v? report:\n%s", joins, res.stdout)
			}
			if !strings.Contains(res.stdout, "\n"+tt.wantServer) {
				t.Errorf("report lacks %q:\n%s", tt.wantServer, res.stdout)
			}
			for _, item := range []string{"] root: ", "] cgroup: ", "] containerd: ", "] port 10250: "} {
				if !strings.Contains(res.stdout, item) {
					t.Errorf("report lacks the %q item:\n%s", item, res.stdout)
				}
			}
			if strings.Contains(res.stdout, "port 6443") {
				t.Errorf("the agent checks the server's port:\n%s", res.stdout)
			}
		})
	}
}

func TestAgentFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--server: required: give the server's https URL"},
		{[]string{"-s", "http://10.0.0.1:6443"}, `--server: "http://10.0.0.1:6443" is not an https URL`},
		{[]string{"-s", "10.0.0.1:6443"}, `--server: "10.0.0.1:6443"`},
		{[]string{"-s", "https://10.0.0.1:6443/api"}, "has more than a host and port"},
		{[]string{"-s", "https://10.0.0.1:6443", "--node-ip", "ten"}, `--node-ip: "ten" is not an IP address`},
	}
	path := configFile(t, "")
	for _, tt := range tests {
		res := run(t, nil, append([]string{"agent", "-c", path}, tt.args...)...)
		if res.err == nil || !strings.Contains(res.err.Error(), tt.want) {
			t.Errorf("labctl agent %q: err %v, want %q", tt.args, res.err, tt.want)
		}
		if res.stdout != "" {
			t.Errorf("labctl agent %q: ran checks despite bad flags:\n%s", tt.args, res.stdout)
		}
	}
}

func TestCheck(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free := freePort(t)

	// The port comes from the server's settings in the config file; the
	// agent's keys there are skipped.
	res := run(t, nil, "check", "-c", configFile(t, fmt.Sprintf("https-listen-port: %d\nserver: https://x:6443\n", free)))
	if !strings.Contains(res.stdout, fmt.Sprintf("[ OK ] port %d: free\n", free)) {
		t.Errorf("report lacks the free port %d:\n%s", free, res.stdout)
	}
	if failed := strings.Contains(res.stdout, "[FAIL]"); failed != (res.err != nil) {
		t.Errorf("report has failures: %v, but the command returned %v", failed, res.err)
	}
	if !strings.Contains(res.stdout, "] port 10250: ") || !strings.Contains(res.stdout, " checks: ") {
		t.Errorf("report lacks the kubelet port or the summary:\n%s", res.stdout)
	}

	res = run(t, map[string]string{"LABCTL_HTTPS_LISTEN_PORT": strconv.Itoa(busyPort)}, "check", "-c", configFile(t, ""))
	if !strings.Contains(res.stdout, fmt.Sprintf("[FAIL] port %d: in use", busyPort)) {
		t.Errorf("report lacks the busy port %d:\n%s", busyPort, res.stdout)
	}
	if res.err == nil || !strings.Contains(res.err.Error(), "this machine cannot run a node yet") {
		t.Errorf("labctl check with a failure: err %v", res.err)
	}
}

// TestServerContext: the server runs until the command's context ends,
// and then the command returns nil (exit 0).
func TestServerContext(t *testing.T) {
	clearEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{}, func(ctx context.Context, _ server.Config) error {
		close(started)
		<-ctx.Done()
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- app.RunContext(ctx, []string{"labctl", "server", "-c", configFile(t, "")}) }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("labctl server returned before running the server: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("labctl server after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("labctl server did not return after its context ended")
	}
}
