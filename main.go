// Command labctl is a Kubernetes cluster in one binary, for learning
// Kubernetes: `labctl server` runs the control plane, `labctl agent` adds a
// node, `labctl check` tells whether a machine can run a node and `labctl
// version` says what was built.
//
// Every flag can also be set in the YAML file given by --config (default
// /etc/labctl/config.yaml; keys are flag names without dashes) and in an
// environment variable LABCTL_<FLAG> (upper case, dashes as underscores, e.g.
// LABCTL_DATA_DIR). The command line wins over the environment, which wins
// over the file, which wins over the default. See config.go.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"labctl/addons"
	"labctl/agent"
	agentjoin "labctl/agent/join"
	"labctl/agent/preflight"
	"labctl/internal/memtrim"
	"labctl/server"
)

// Build information; release builds set them with
// -ldflags "-X main.version=v0.2.0 -X main.kubernetesVersion=v1.37.2".
var (
	// version is labctl's own version.
	version = "v0.1.0-dev"
	// kubernetesVersion is the Kubernetes API version labctl targets.
	kubernetesVersion = "v1.37.2"
)

// healthTimeout bounds the agent's request to the server's /healthz.
const healthTimeout = 10 * time.Second

func main() {
	app := newApp(os.Stdout, os.Stderr, server.Run)
	if err := app.RunContext(context.Background(), os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
		os.Exit(1)
	}
}

// commands holds what the commands need from outside; tests replace
// runServer so that they can see the configuration the command builds.
type commands struct {
	stdout, stderr io.Writer
	runServer      func(context.Context, server.Config) error
}

// newApp builds the labctl command line. Output goes to stdout, logs and
// errors to stderr; `labctl server` hands its configuration to runServer.
func newApp(stdout, stderr io.Writer, runServer func(context.Context, server.Config) error) *cli.App {
	cmds := &commands{stdout: stdout, stderr: stderr, runServer: runServer}
	return &cli.App{
		Name:        "labctl",
		Usage:       "a Kubernetes cluster in one binary, for learning Kubernetes",
		HideVersion: true, // `labctl version` says it
		Writer:      stdout,
		ErrWriter:   stderr,
		// Errors come back from Run; main prints them and picks the exit
		// code, and tests can look at them.
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unknown command %q: the commands are server, agent, check, token, images, kubectl, killall, uninstall and version (see: labctl --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{{
			Name:         "server",
			Usage:        "run the control plane (and, later, a node) on this machine",
			Flags:        serverFlags(),
			Before:       cmds.loadConfigFile,
			Action:       cmds.server,
			OnUsageError: usageError("server"),
		}, {
			Name:         "agent",
			Usage:        "join this machine to a cluster as a node",
			Flags:        agentFlags(),
			Before:       cmds.loadConfigFile,
			Action:       cmds.agent,
			OnUsageError: usageError("agent"),
		}, {
			Name:         "check",
			Usage:        "check whether this machine can run a node, and say how to fix what is missing",
			Flags:        checkFlags(),
			Before:       cmds.loadConfigFile,
			Action:       cmds.check,
			OnUsageError: usageError("check"),
		}, tokenCommand(cmds), imagesCommand(cmds), kubectlCommand(), killallCommand(cmds), uninstallCommand(cmds), {
			Name:   "version",
			Usage:  "print labctl's version and the Kubernetes version it targets",
			Action: cmds.version,
		}},
	}
}

// usageError returns an OnUsageError hook that returns the error with a
// pointer to the command's help, instead of printing the whole help.
func usageError(command string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		return fmt.Errorf("%w (see: labctl %s --help)", err, command)
	}
}

// newLogger logs text to w, at debug level when debug is set.
func newLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func (cmds *commands) logger(c *cli.Context) *slog.Logger {
	return newLogger(cmds.stderr, c.Bool("debug"))
}

// loadConfigFile is every command's Before hook: it fills unset flags from
// the config file.
func (cmds *commands) loadConfigFile(c *cli.Context) error {
	skipped, err := applyConfigFile(c)
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		cmds.logger(c).Debug("config file settings not used by this command",
			"file", c.String("config"), "keys", skipped)
	}
	return nil
}

func (cmds *commands) version(c *cli.Context) error {
	_, err := fmt.Fprintf(cmds.stdout, "labctl version %s (%s)\nkubernetes %s\n",
		version, runtime.Version(), kubernetesVersion)
	return err
}

// server runs the control plane until SIGINT or SIGTERM.
func (cmds *commands) server(c *cli.Context) error {
	cfg, err := serverConfigFrom(c)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	log := cmds.logger(c)
	cfg.Logger = log
	if !cfg.NodeIP.IsValid() && !cfg.DisableAgent {
		if cfg.NodeIP, err = agent.DefaultNodeIP(); err != nil {
			return fmt.Errorf("server: %w", err)
		}
	}
	resolvConf := c.String("resolv-conf")
	storageDir, err := localStoragePath(c)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if !cfg.DisableAgent {
		endpoint := c.String("container-runtime-endpoint")
		cfg.Agent = func(ctx context.Context, kubeconfig string, transport http.RoundTripper) error {
			return agent.Run(ctx, agent.Config{
				DataDir: cfg.DataDir, Kubeconfig: kubeconfig, Transport: transport,
				NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, ControlPlane: true,
				ContainerRuntimeEndpoint: endpoint, ResolvConf: resolvConf, StorageDir: storageDir,
				ClusterCIDR: cfg.ClusterCIDR, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
				Logger: log.With("component", "agent"),
			})
		}
	}
	// CoreDNS answers at the node IP (another node's proxy sends the
	// cluster DNS address there): without a node here, the address the
	// other nodes reach the server at.
	dnsIP := cfg.NodeIP
	if !dnsIP.IsValid() {
		dnsIP = cfg.AdvertiseAddress
	}
	cfg.Addons = func(ctx context.Context, kubeconfig string, transport http.RoundTripper) error {
		if !dnsIP.IsValid() && !cfg.Disabled(server.AddonCoreDNS) {
			ip, err := agent.DefaultNodeIP()
			if err != nil {
				return fmt.Errorf("coredns: %w (give --node-ip, or --disable coredns)", err)
			}
			dnsIP = ip
		}
		return addons.Run(ctx, addons.Config{
			Kubeconfig: kubeconfig,
			Transport:  transport,
			CoreDNS:    !cfg.Disabled(server.AddonCoreDNS), LocalStorage: !cfg.Disabled(server.AddonLocalStorage),
			NodeIP: dnsIP, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
			ResolvConf: resolvConf, Logger: log.With("component", "addons"),
		})
	}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)

	log.Info("starting labctl server", "version", version, "data-dir", cfg.DataDir,
		"node-name", cfg.NodeName)
	go memtrim.AfterStartup(ctx, startupPagesKept, log)
	go memtrim.WhenIdle(ctx, idleCheck, idleAllocation)
	if err := cmds.runServer(ctx, cfg); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// agent checks the machine and the server, joins the cluster and runs
// this machine's node until SIGINT or SIGTERM.
func (cmds *commands) agent(c *cli.Context) error {
	cfg, err := agentConfigFrom(c)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	storageDir, err := localStoragePath(c)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	log := cmds.logger(c)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	report := preflight.Run(preflight.Config{Ports: []int{kubeletPort}})
	report = append(report, checkServerHealth(ctx, cfg.Server))
	if _, err := report.WriteTo(cmds.stdout); err != nil {
		return err
	}
	if n := report.Count(preflight.Fail); n > 0 {
		return fmt.Errorf("agent: %s failed, see the fixes above", pluralChecks(n))
	}
	if cfg.Token == "" {
		return errors.New("agent: --token is required: print it on the server with `labctl token`")
	}
	path, err := joinCluster(ctx, cfg)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	fmt.Fprintf(cmds.stdout, "joined: this node's credentials (system:node:%s) are in %s\n", cfg.NodeName, path)
	if !cfg.NodeIP.IsValid() {
		if cfg.NodeIP, err = agent.DefaultNodeIP(); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	log.Info("starting labctl agent", "version", version, "server", cfg.Server.String(), "node-name", cfg.NodeName, "node-ip", cfg.NodeIP)
	go memtrim.AfterStartup(ctx, startupPagesKept, log)
	go memtrim.WhenIdle(ctx, idleCheck, idleAllocation)
	err = runAgent(ctx, agent.Config{
		DataDir: cfg.DataDir, Kubeconfig: path, NodeName: cfg.NodeName, NodeIP: cfg.NodeIP,
		ContainerRuntimeEndpoint: cfg.ContainerRuntimeEndpoint, ResolvConf: c.String("resolv-conf"), StorageDir: storageDir,
		ClusterCIDR: cfg.ClusterCIDR, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		Logger: log.With("component", "agent"),
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// localStoragePath is --default-local-storage-path as an absolute path;
// "" leaves the agent's default, <data-dir>/storage.
func localStoragePath(c *cli.Context) (string, error) {
	dir := c.String("default-local-storage-path")
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--default-local-storage-path: cannot make %q absolute: %w", dir, err)
	}
	if abs == "/" {
		return "", errors.New("--default-local-storage-path: not /: give a directory for the volumes, such as /var/lib/labctl/storage")
	}
	return abs, nil
}

// startupPagesKept is how long after launch the server and the agent
// keep the pages of the executable that start-up touched (see
// internal/memtrim): by then the node is up and what is used again is
// used.
const startupPagesKept = 10 * time.Second

// A server or agent that allocated less than idleAllocation in the last
// idleCheck is at rest: it gives its free heap back (memtrim.WhenIdle).
// An idle server allocates about 2 MB a minute (leases, controllers'
// resyncs); one serving requests or starting pods, far more.
const (
	idleCheck      = time.Minute
	idleAllocation = 8 << 20
)

// runAgent runs the node; tests replace it.
var runAgent = agent.Run

// joinCluster gets the node's certificate from the server with the join
// token, writes the node's kubeconfig under the data directory, and
// checks that the API accepts it.
func joinCluster(ctx context.Context, cfg agentConfig) (string, error) {
	creds, err := agentjoin.Join(ctx, cfg.Server, cfg.Token, cfg.NodeName)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cfg.DataDir, "agent", "kubelet.kubeconfig")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := agentjoin.WriteKubeconfig(path, creds); err != nil {
		return "", err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", err
	}
	if _, err := cs.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("the API does not accept the node's new credentials: %w", err)
	}
	return path, nil
}

// checkServerHealth asks the server for /healthz and reports the outcome as
// a check result.
func checkServerHealth(ctx context.Context, serverURL *url.URL) preflight.Result {
	res := preflight.Result{Name: "server"}
	target := strings.TrimSuffix(serverURL.String(), "/") + "/healthz"
	client := &http.Client{
		Timeout: healthTimeout,
		Transport: &http.Transport{
			// The server's certificate is self-signed until the cluster CA
			// exists. A later issue pins the CA from the join token; until
			// then this request only says whether something answers.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			Proxy:           http.ProxyFromEnvironment,
		},
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		res.Status, res.Detail = preflight.Fail, fmt.Sprintf("bad URL %s: %v", target, err)
		return res
	}
	resp, err := client.Do(req)
	if err != nil {
		res.Status = preflight.Fail
		res.Detail = fmt.Sprintf("GET %s: %v", target, err)
		res.Fix = "check --server and that labctl server runs there and its port is reachable"
		return res
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		res.Status, res.Detail = preflight.Fail, fmt.Sprintf("GET %s: read the answer: %v", target, err)
		return res
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		res.Status = preflight.Fail
		res.Detail = fmt.Sprintf("GET %s answered %s %q", target, resp.Status, strings.TrimSpace(string(body)))
		res.Fix = "check --server points at a labctl server, and the server's logs"
		return res
	}
	res.Detail = fmt.Sprintf("%s answered ok", target)
	return res
}

// check runs the preflight and fails when any item fails.
func (cmds *commands) check(c *cli.Context) error {
	port := c.Int("https-listen-port")
	if port < 1 || port > 65535 {
		return fmt.Errorf("check: --https-listen-port: %d is not a port: use 1-65535", port)
	}
	report := preflight.Run(preflight.Config{Ports: []int{port, kubeletPort}})
	if _, err := report.WriteTo(cmds.stdout); err != nil {
		return err
	}
	if n := report.Count(preflight.Fail); n > 0 {
		return errors.New("check: this machine cannot run a node yet: " + pluralChecks(n) + " failed; see the fixes above")
	}
	return nil
}

func pluralChecks(n int) string {
	if n == 1 {
		return "1 check"
	}
	return fmt.Sprintf("%d checks", n)
}
