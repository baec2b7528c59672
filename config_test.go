package main

import (
	"bytes"
	"context"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"labctl/server"
)

// result is what one run of the labctl command line did.
type result struct {
	cfg    server.Config // what `labctl server` would run with
	ran    bool          // whether the server would have run
	stdout string
	stderr string
	err    error
}

// clearEnv unsets every LABCTL_* variable for the test (restored after).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LABCTL_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// run runs labctl with args (without the program name) and env, with a
// server that records its configuration instead of running.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	var res result
	var stdout, stderr bytes.Buffer
	app := newApp(&stdout, &stderr, func(_ context.Context, cfg server.Config) error {
		res.cfg, res.ran = cfg, true
		return nil
	})
	res.err = app.RunContext(context.Background(), append([]string{"labctl"}, args...))
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// configFile writes a config file and returns its path.
func configFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPrecedence: command line > environment > config file > default, for
// each kind of flag.
func TestPrecedence(t *testing.T) {
	type layers struct {
		file string            // config file content; the file is always named with --config
		env  map[string]string // environment
		args []string          // command-line flags
	}
	tests := []struct {
		name  string
		in    layers
		check func(server.Config) any
		want  any
	}{{
		name:  "string: default",
		check: func(c server.Config) any { return c.DataDir },
		want:  "/var/lib/labctl",
	}, {
		name:  "string: file over default",
		in:    layers{file: "data-dir: /from/file\n"},
		check: func(c server.Config) any { return c.DataDir },
		want:  "/from/file",
	}, {
		name:  "string: environment over file",
		in:    layers{file: "data-dir: /from/file\n", env: map[string]string{"LABCTL_DATA_DIR": "/from/env"}},
		check: func(c server.Config) any { return c.DataDir },
		want:  "/from/env",
	}, {
		name: "string: command line over environment and file",
		in: layers{file: "data-dir: /from/file\n", env: map[string]string{"LABCTL_DATA_DIR": "/from/env"},
			args: []string{"--data-dir", "/from/flag"}},
		check: func(c server.Config) any { return c.DataDir },
		want:  "/from/flag",
	}, {
		name:  "string: short alias on the command line",
		in:    layers{file: "data-dir: /from/file\n", args: []string{"-d", "/from/flag"}},
		check: func(c server.Config) any { return c.DataDir },
		want:  "/from/flag",
	}, {
		name:  "int: default",
		check: func(c server.Config) any { return c.HTTPSPort },
		want:  6443,
	}, {
		name:  "int: file",
		in:    layers{file: "https-listen-port: 7443\n"},
		check: func(c server.Config) any { return c.HTTPSPort },
		want:  7443,
	}, {
		name:  "int: environment over file",
		in:    layers{file: "https-listen-port: 7443\n", env: map[string]string{"LABCTL_HTTPS_LISTEN_PORT": "8443"}},
		check: func(c server.Config) any { return c.HTTPSPort },
		want:  8443,
	}, {
		name: "int: command line over environment",
		in: layers{file: "https-listen-port: 7443\n", env: map[string]string{"LABCTL_HTTPS_LISTEN_PORT": "8443"},
			args: []string{"--https-listen-port=9443"}},
		check: func(c server.Config) any { return c.HTTPSPort },
		want:  9443,
	}, {
		name:  "bool: file",
		in:    layers{file: "disable-agent: true\n"},
		check: func(c server.Config) any { return c.DisableAgent },
		want:  true,
	}, {
		name:  "bool: environment over file",
		in:    layers{file: "disable-agent: true\n", env: map[string]string{"LABCTL_DISABLE_AGENT": "false"}},
		check: func(c server.Config) any { return c.DisableAgent },
		want:  false,
	}, {
		name:  "bool: command line over file",
		in:    layers{file: "disable-agent: false\n", args: []string{"--disable-agent"}},
		check: func(c server.Config) any { return c.DisableAgent },
		want:  true,
	}, {
		name:  "list: default is empty",
		check: func(c server.Config) any { return c.Disable },
		want:  []string(nil),
	}, {
		name:  "list: file, as a YAML list",
		in:    layers{file: "disable: [coredns, traefik]\n"},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"coredns", "traefik"},
	}, {
		name:  "list: file, as a block list",
		in:    layers{file: "disable:\n  - coredns\n  - local-storage\n"},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"coredns", "local-storage"},
	}, {
		name:  "list: file, one value",
		in:    layers{file: "disable: coredns\n"},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"coredns"},
	}, {
		name:  "list: file, comma-separated",
		in:    layers{file: "disable: coredns,metrics-server\n"},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"coredns", "metrics-server"},
	}, {
		name:  "list: environment (comma-separated) replaces the file's",
		in:    layers{file: "disable: [coredns, traefik]\n", env: map[string]string{"LABCTL_DISABLE": "metrics-server,local-storage"}},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"metrics-server", "local-storage"},
	}, {
		name: "list: command line replaces environment and file",
		in: layers{file: "disable: [coredns]\n", env: map[string]string{"LABCTL_DISABLE": "metrics-server"},
			args: []string{"--disable", "traefik", "--disable", "local-storage"}},
		check: func(c server.Config) any { return c.Disable },
		want:  []string{"traefik", "local-storage"},
	}, {
		name:  "mode: unquoted octal in the file stays octal",
		in:    layers{file: "write-kubeconfig-mode: 0644\n"},
		check: func(c server.Config) any { return c.KubeconfigMode },
		want:  fs.FileMode(0o644),
	}, {
		name:  "mode: environment",
		in:    layers{env: map[string]string{"LABCTL_WRITE_KUBECONFIG_MODE": "640"}},
		check: func(c server.Config) any { return c.KubeconfigMode },
		want:  fs.FileMode(0o640),
	}, {
		name:  "empty list in the file leaves the default",
		in:    layers{file: "disable: []\n"},
		check: func(c server.Config) any { return c.Disable },
		want:  []string(nil),
	}, {
		name:  "null value in the file leaves the default",
		in:    layers{file: "data-dir:\ncluster-domain: ~\n"},
		check: func(c server.Config) any { return c.DataDir + " " + c.ClusterDomain },
		want:  "/var/lib/labctl cluster.local",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"server", "--config", configFile(t, tt.in.file)}, tt.in.args...)
			res := run(t, tt.in.env, args...)
			if res.err != nil {
				t.Fatalf("labctl %v: %v\nstderr: %s", args, res.err, res.stderr)
			}
			got := tt.check(res.cfg)
			if gs, ok := got.([]string); ok {
				ws, _ := tt.want.([]string)
				if !slices.Equal(gs, ws) {
					t.Errorf("got %q, want %q", gs, ws)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConfigFileNamedByEnvironment: LABCTL_CONFIG names the file like
// --config does, and the flag wins over it.
func TestConfigFileNamedByEnvironment(t *testing.T) {
	fromEnv := configFile(t, "cluster-domain: env.example\n")
	fromFlag := configFile(t, "cluster-domain: flag.example\n")

	res := run(t, map[string]string{"LABCTL_CONFIG": fromEnv}, "server")
	if res.err != nil || res.cfg.ClusterDomain != "env.example" {
		t.Errorf("LABCTL_CONFIG: domain %q, err %v; want env.example", res.cfg.ClusterDomain, res.err)
	}
	res = run(t, map[string]string{"LABCTL_CONFIG": fromEnv}, "server", "-c", fromFlag)
	if res.err != nil || res.cfg.ClusterDomain != "flag.example" {
		t.Errorf("-c over LABCTL_CONFIG: domain %q, err %v; want flag.example", res.cfg.ClusterDomain, res.err)
	}
}

// TestMissingDefaultConfigFile: without --config, a missing
// /etc/labctl/config.yaml is fine.
func TestMissingDefaultConfigFile(t *testing.T) {
	if _, err := os.Stat(defaultConfigFile); err == nil {
		t.Skipf("%s exists on this machine", defaultConfigFile)
	}
	res := run(t, nil, "server")
	if res.err != nil {
		t.Fatalf("labctl server with no config file: %v", res.err)
	}
	if !res.ran || res.cfg.DataDir != "/var/lib/labctl" || res.cfg.HTTPSPort != 6443 {
		t.Errorf("ran %v with %+v; want the defaults", res.ran, res.cfg)
	}
}

// TestOtherCommandsKeysSkipped: one file can hold the settings of several
// commands; each takes its own and skips the others'.
func TestOtherCommandsKeysSkipped(t *testing.T) {
	path := configFile(t, "token: secret\nserver: https://10.0.0.1:6443\nhttps-listen-port: 7443\ncluster-domain: lab.local\n")
	res := run(t, nil, "server", "--config", path, "--debug")
	if res.err != nil {
		t.Fatalf("server with agent keys in its file: %v", res.err)
	}
	if res.cfg.HTTPSPort != 7443 || res.cfg.ClusterDomain != "lab.local" {
		t.Errorf("server took port %d, domain %q from the file; want 7443, lab.local", res.cfg.HTTPSPort, res.cfg.ClusterDomain)
	}
	if !strings.Contains(res.stderr, "config file settings not used by this command") ||
		!strings.Contains(res.stderr, "keys=\"[token server]\"") {
		t.Errorf("no debug log of the skipped keys:\n%s", res.stderr)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // content; the file is named with --config
		env  map[string]string
		args []string // extra flags
		want []string // substrings of the error; "{file}" stands for the path
	}{{
		name: "unknown key",
		file: "data-dir: /x\ndata_dir: /y\n",
		want: []string{"config file {file}, line 2", `unknown key "data_dir"`},
	}, {
		name: "flag alias is not a key",
		file: "d: /x\n",
		want: []string{"{file}", `unknown key "d"`},
	}, {
		name: "YAML syntax error",
		file: "data-dir: [unclosed\n",
		want: []string{"config file {file} is not valid YAML"},
	}, {
		name: "not a mapping",
		file: "- data-dir\n",
		want: []string{"config file {file}, line 1", "want a mapping"},
	}, {
		name: "list for a single-valued key",
		file: "data-dir: [/a, /b]\n",
		want: []string{"{file}", `key "data-dir" takes one value, not a list`},
	}, {
		name: "mapping value",
		file: "disable:\n  coredns: true\n",
		want: []string{"{file}", `key "disable": want a value or a list of values`},
	}, {
		name: "bad number",
		file: "https-listen-port: lots\n",
		want: []string{"config file {file}, line 1", `key "https-listen-port": invalid value "lots"`},
	}, {
		name: "bad bool",
		file: "debug: maybe\n",
		want: []string{"{file}", `key "debug": invalid value "maybe"`},
	}, {
		name: "duplicate key",
		file: "data-dir: /a\ndata-dir: /b\n",
		want: []string{"line 2", `key "data-dir" appears twice`},
	}, {
		name: "config names a config",
		file: "config: /etc/other.yaml\n",
		want: []string{"{file}", "cannot name another config file"},
	}, {
		name: "bad value in the file is caught by validation",
		file: "cluster-cidr: 10.42.0.0/33\n",
		want: []string{`--cluster-cidr: "10.42.0.0/33" is not a CIDR range`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := configFile(t, tt.file)
			res := run(t, tt.env, append([]string{"server", "--config", path}, tt.args...)...)
			if res.err == nil {
				t.Fatalf("no error; want one containing %q", tt.want)
			}
			if res.ran {
				t.Error("the server ran despite the error")
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "{file}", path)
				if !strings.Contains(res.err.Error(), w) {
					t.Errorf("error %q does not contain %q", res.err, w)
				}
			}
		})
	}
}

func TestMissingNamedConfigFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	for name, res := range map[string]result{
		"--config":      run(t, nil, "server", "--config", missing),
		"LABCTL_CONFIG": run(t, map[string]string{"LABCTL_CONFIG": missing}, "server"),
	} {
		if res.err == nil || !strings.Contains(res.err.Error(), missing) || !strings.Contains(res.err.Error(), "no such file") {
			t.Errorf("%s naming a missing file: err %v; want it to name the file", name, res.err)
		}
	}
}

func TestServerFlagValues(t *testing.T) {
	path := configFile(t, "")
	res := run(t, nil, "server", "-c", path,
		"-d", "relative/dir", "-o", "/tmp/kube.yaml", "--write-kubeconfig-mode", "0640",
		"--bind-address", "127.0.0.1", "--https-listen-port", "7443",
		"--advertise-address", "192.0.2.10", "--cluster-cidr", "10.52.0.0/16",
		"--service-cidr", "10.53.0.0/16", "--cluster-dns", "10.53.0.10",
		"--cluster-domain", "lab.local", "--node-name", "node-a", "--node-ip", "192.0.2.11",
		"--disable", "coredns,traefik", "--disable-agent", "--datastore-endpoint", "memory://", "--debug")
	if res.err != nil {
		t.Fatal(res.err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	got := res.cfg
	if got.Logger == nil {
		t.Error("no logger passed to the server")
	}
	got.Logger = nil
	// The add-ons (their settings are the server's, checked here) run
	// through a hook main sets; the node does not (--disable-agent).
	if got.Addons == nil || got.Agent != nil {
		t.Errorf("hooks: add-ons set %v (want true), agent set %v (want false)", got.Addons != nil, got.Agent != nil)
	}
	got.Addons = nil
	want := server.Config{
		DataDir:           filepath.Join(wd, "relative/dir"),
		KubeconfigPath:    "/tmp/kube.yaml",
		KubeconfigMode:    0o640,
		BindAddress:       netip.MustParseAddr("127.0.0.1"),
		HTTPSPort:         7443,
		AdvertiseAddress:  netip.MustParseAddr("192.0.2.10"),
		ClusterCIDR:       netip.MustParsePrefix("10.52.0.0/16"),
		ServiceCIDR:       netip.MustParsePrefix("10.53.0.0/16"),
		ClusterDNS:        netip.MustParseAddr("10.53.0.10"),
		ClusterDomain:     "lab.local",
		NodeName:          "node-a",
		NodeIP:            netip.MustParseAddr("192.0.2.11"),
		Disable:           []string{"coredns", "traefik"},
		DisableAgent:      true,
		DatastoreEndpoint: "memory://",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("server config:\n got %+v\nwant %+v", got, want)
	}
}

func TestServerFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-cidr", "10.42.0.0"}, `--cluster-cidr: "10.42.0.0" is not a CIDR range: write it as address/bits, e.g. 10.42.0.0/16`},
		{[]string{"--service-cidr", "10.43.0.1/16"}, "--service-cidr: 10.43.0.1/16 has host bits set: did you mean 10.43.0.0/16?"},
		{[]string{"--cluster-dns", "10.43.0.300"}, `--cluster-dns: "10.43.0.300" is not an IP address`},
		{[]string{"--bind-address", "localhost"}, `--bind-address: "localhost" is not an IP address`},
		{[]string{"--node-ip", "10.0.0.1/24"}, `--node-ip: "10.0.0.1/24" is not an IP address`},
		{[]string{"--https-listen-port", "0"}, "--https-listen-port: 0 is not a port: use 1-65535"},
		{[]string{"--https-listen-port", "65536"}, "--https-listen-port: 65536 is not a port"},
		{[]string{"--https-listen-port", "https"}, "https-listen-port"},
		{[]string{"--write-kubeconfig-mode", "rw-r--r--"}, `--write-kubeconfig-mode: "rw-r--r--" is not a file mode: give octal permissions such as 0600 or 0644`},
		{[]string{"--write-kubeconfig-mode", "1777"}, `--write-kubeconfig-mode: "1777" is not a file mode`},
		{[]string{"--write-kubeconfig", ""}, "--write-kubeconfig: empty"},
		{[]string{"--data-dir", ""}, "--data-dir: empty: give a directory"},
		{[]string{"--cluster-dns", "10.99.0.10"}, "cluster DNS address (cluster-dns) 10.99.0.10 is outside the service CIDR (service-cidr) 10.43.0.0/16"},
		{[]string{"--disable", "traefk"}, `unknown add-on "traefk"`},
		{[]string{"--node-name", "My_Laptop"}, `node name (node-name) "My_Laptop"`},
	}
	path := configFile(t, "")
	for _, tt := range tests {
		res := run(t, nil, append([]string{"server", "-c", path}, tt.args...)...)
		switch {
		case res.err == nil:
			t.Errorf("labctl server %q: no error, want %q", tt.args, tt.want)
		case !strings.Contains(res.err.Error(), tt.want):
			t.Errorf("labctl server %q: error %q\nwant it to contain %q", tt.args, res.err, tt.want)
		case res.ran:
			t.Errorf("labctl server %q: the server ran despite the error", tt.args)
		}
	}
}

func TestServerReportsAllFlagErrors(t *testing.T) {
	res := run(t, nil, "server", "-c", configFile(t, ""), "--cluster-cidr", "x", "--cluster-dns", "y")
	if res.err == nil || !strings.Contains(res.err.Error(), "--cluster-cidr") || !strings.Contains(res.err.Error(), "--cluster-dns") {
		t.Errorf("error %v; want both bad flags named", res.err)
	}
}

func TestEnvVarNames(t *testing.T) {
	for flag, want := range map[string]string{
		"data-dir":              "LABCTL_DATA_DIR",
		"https-listen-port":     "LABCTL_HTTPS_LISTEN_PORT",
		"write-kubeconfig-mode": "LABCTL_WRITE_KUBECONFIG_MODE",
		"debug":                 "LABCTL_DEBUG",
	} {
		if got := envVar(flag); got != want {
			t.Errorf("envVar(%q) = %q, want %q", flag, got, want)
		}
	}
	// Every flag of every command has its variable.
	for _, flags := range [][]cli.Flag{serverFlags(), agentFlags(), checkFlags()} {
		for _, f := range flags {
			name := f.Names()[0]
			got := f.(cli.DocGenerationFlag).GetEnvVars()
			if !slices.Equal(got, []string{envVar(name)}) {
				t.Errorf("flag --%s reads %q, want %s", name, got, envVar(name))
			}
		}
	}
}
