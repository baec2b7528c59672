package containerd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"labctl/internal/atomicfile"

	"labctl/internal/tomlstr"
)

// Namespace is the containerd namespace that holds labctl's images and
// containers (`ctr -n labctl ...` shows them). labctl does not use
// containerd's CRI plugin, whose namespace is k8s.io, so its own name keeps
// it apart from a kubelet's containers when --container-runtime-endpoint
// points at a system containerd.
const Namespace = "labctl"

// Defaults for the paths that do not depend on the data directory. The
// socket and state live under /run, as a system containerd's do, so that
// they vanish at reboot and the socket path stays short (a unix socket
// path must be under 108 bytes).
const (
	DefaultState   = "/run/labctl/containerd"
	DefaultAddress = "/run/labctl/containerd/containerd.sock"
	// DefaultSnapshotter is the snapshotter images are unpacked into.
	DefaultSnapshotter = "overlayfs"
)

// Default timings.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	// restartBackoffMin and restartBackoffMax bound the wait before
	// starting containerd again after it exited; a run longer than
	// restartBackoffReset starts the backoff over.
	restartBackoffMin   = time.Second
	restartBackoffMax   = 30 * time.Second
	restartBackoffReset = time.Minute
	// maxLogSize is the size at which the log is moved to <log>.1 when
	// containerd starts.
	maxLogSize = 10 << 20
)

// DisabledPlugins are the containerd plugins labctl turns off: the CRI
// plugin (labctl's kubelet talks to containerd's own API, and CRI costs
// about half of containerd's memory and most of its start-up time), the
// snapshotters that need filesystems these machines do not have, the
// restart monitor, the /opt plugin directory, tracing, NRI and the transfer
// service (containerd 1.7). The IDs are containerd 1.6's and 1.7's; an ID
// that a version does not know is ignored.
//
// What stays is what image pulls and containers use: content, metadata
// (bolt), the overlayfs and native snapshotters, the walking differ, the
// runc v2 shim (io.containerd.runtime.v2.task), GC, events, leases,
// namespaces, and the containers, content, diff, images, leases,
// namespaces, snapshots, tasks, events, introspection, healthcheck and
// version services. io.containerd.runtime.v1.linux stays too: containerd
// 1.6's tasks service refuses to load without it.
var DisabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.monitor.v1.cgroups",
	"io.containerd.internal.v1.restart",
	"io.containerd.internal.v1.opt",
	"io.containerd.internal.v1.tracing",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.nri.v1.nri",
	"io.containerd.grpc.v1.transfer",
	"io.containerd.transfer.v1.local",
}

// Config says which containerd to use: one that labctl starts and
// supervises (the default), or an existing one at Endpoint. Zero values
// mean the defaults that Defaults fills in.
type Config struct {
	// Endpoint, when set, is the socket of a containerd that someone else
	// runs (--container-runtime-endpoint, "unix:///run/containerd/containerd.sock"
	// or a plain path): labctl connects to it and starts nothing.
	Endpoint string

	// Binary is the containerd executable (default: `containerd` looked up
	// in $PATH).
	Binary string
	// Root is containerd's persistent state: content, snapshots, metadata
	// (<data-dir>/agent/containerd).
	Root string
	// State is containerd's runtime state (default DefaultState).
	State string
	// Address is the socket containerd serves (default DefaultAddress).
	Address string
	// ConfigFile is where the generated config.toml is written
	// (default <data-dir>/agent/etc/containerd/config.toml).
	ConfigFile string
	// LogFile receives containerd's output (default
	// <data-dir>/agent/containerd/containerd.log).
	LogFile string
	// RegistryConfigDir holds one hosts.toml per registry
	// (default <data-dir>/agent/etc/containerd/certs.d).
	RegistryConfigDir string
	// Debug makes containerd log at debug level.
	Debug bool

	// StartTimeout bounds the wait for containerd's socket to answer
	// (default DefaultStartTimeout).
	StartTimeout time.Duration
	// StopTimeout is how long containerd gets to exit after SIGTERM before
	// it is killed (default DefaultStopTimeout).
	StopTimeout time.Duration

	// Logger receives the supervisor's messages (default: discarded).
	Logger *slog.Logger
}

// Defaults returns the configuration of a containerd that labctl runs for
// the data directory dataDir.
func Defaults(dataDir string) Config {
	agent := filepath.Join(dataDir, "agent")
	return Config{
		Root:              filepath.Join(agent, "containerd"),
		State:             DefaultState,
		Address:           DefaultAddress,
		ConfigFile:        filepath.Join(agent, "etc", "containerd", "config.toml"),
		LogFile:           filepath.Join(agent, "containerd", "containerd.log"),
		RegistryConfigDir: filepath.Join(agent, "etc", "containerd", "certs.d"),
	}
}

// complete fills in the defaults that do not depend on the data directory
// and checks the rest.
func (c Config) complete() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.Endpoint != "" {
		c.Address = EndpointAddress(c.Endpoint)
		return c, nil
	}
	if c.State == "" {
		c.State = DefaultState
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.Root == "" {
		return c, errors.New("containerd: no root directory given (Config.Root, normally <data-dir>/agent/containerd)")
	}
	if c.ConfigFile == "" {
		c.ConfigFile = filepath.Join(c.Root, "config.toml")
	}
	if c.LogFile == "" {
		c.LogFile = filepath.Join(c.Root, "containerd.log")
	}
	if len(c.Address) >= 108 {
		return c, fmt.Errorf("containerd: socket path %s is %d bytes long; unix socket paths must be shorter than 108 bytes", c.Address, len(c.Address))
	}
	for name, p := range map[string]string{"root": c.Root, "state": c.State, "address": c.Address, "config file": c.ConfigFile, "log file": c.LogFile} {
		if !filepath.IsAbs(p) {
			return c, fmt.Errorf("containerd: the %s path %q is not absolute", name, p)
		}
	}
	if c.Binary == "" {
		c.Binary = "containerd"
	}
	if !strings.Contains(c.Binary, "/") {
		p, err := exec.LookPath(c.Binary)
		if err != nil {
			return c, fmt.Errorf("containerd: %s is not installed (not found in $PATH): install the containerd package (apt-get install containerd), or pass --container-runtime-endpoint", c.Binary)
		}
		c.Binary = p
	}
	return c, nil
}

// EndpointAddress turns a --container-runtime-endpoint value
// ("unix:///run/containerd/containerd.sock" or a plain path) into a socket
// path.
func EndpointAddress(endpoint string) string {
	return strings.TrimPrefix(endpoint, "unix://")
}

// renderConfig returns the config.toml (version 2) of labctl's containerd.
func (c Config) renderConfig() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by labctl at every start; edits are overwritten.\n")
	fmt.Fprintf(&b, "version = 2\n")
	fmt.Fprintf(&b, "root = %s\n", tomlstr.Quote(c.Root))
	fmt.Fprintf(&b, "state = %s\n", tomlstr.Quote(c.State))
	fmt.Fprintf(&b, "# Never below the current value: these machines lack CAP_SYS_RESOURCE.\n")
	fmt.Fprintf(&b, "oom_score = 0\n")
	fmt.Fprintf(&b, "# What labctl does not use, off to save memory and start-up time.\n")
	fmt.Fprintf(&b, "disabled_plugins = [\n")
	for _, p := range DisabledPlugins {
		fmt.Fprintf(&b, "  %s,\n", tomlstr.Quote(p))
	}
	fmt.Fprintf(&b, "]\n\n")
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n\n", tomlstr.Quote(c.Address))
	fmt.Fprintf(&b, "[ttrpc]\n  address = %s\n\n", tomlstr.Quote(c.Address+".ttrpc"))
	level := "info"
	if c.Debug {
		level = "debug"
	}
	fmt.Fprintf(&b, "[debug]\n  level = %s\n\n", tomlstr.Quote(level))
	if c.RegistryConfigDir != "" {
		fmt.Fprintf(&b, "[plugins]\n")
		fmt.Fprintf(&b, "  # Read only when the CRI plugin is on. labctl pulls images itself and\n")
		fmt.Fprintf(&b, "  # reads the same hosts.toml files, so both resolve registries alike.\n")
		fmt.Fprintf(&b, "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = %s\n", tomlstr.Quote(c.RegistryConfigDir))
	}
	return []byte(b.String())
}

// writeFileAtomic writes path atomically, making its directory first.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}
