package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"labctl/server"
)

// Settings come from four places. From strongest to weakest: the command
// line, LABCTL_* environment variables, the YAML config file, the flag's
// default. The cli package handles the first two (a flag set from its
// environment variable counts as set); applyConfigFile then fills in every
// flag still unset from the file.

// defaultConfigFile is read when it exists; naming another file that does
// not exist is an error.
const defaultConfigFile = "/etc/labctl/config.yaml"

// kubeletPort is the port the node agent's kubelet will listen on.
const kubeletPort = 10250

// envVar returns the environment variable for a flag: LABCTL_ and the
// flag's name in upper case with dashes as underscores.
func envVar(flag string) string {
	return "LABCTL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// The flag constructors below set EnvVars from the name, so that every flag
// has its environment variable. Each call makes a new flag: the cli package
// records in the flag itself whether it was set, so flags must not be shared
// between runs.

func stringFlag(name string, aliases []string, value, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Aliases: aliases, Value: value, Usage: usage, EnvVars: []string{envVar(name)}}
}

func intFlag(name string, value int, usage string) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{envVar(name)}}
}

func boolFlag(name, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: []string{envVar(name)}}
}

func sliceFlag(name, usage string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage, EnvVars: []string{envVar(name)}}
}

func configFlag() cli.Flag {
	return stringFlag("config", []string{"c"}, defaultConfigFile,
		"YAML file of settings, keys named like the flags (command line and environment win over it)")
}

func dataDirFlag() cli.Flag {
	return stringFlag("data-dir", []string{"d"}, server.DefaultDataDir, "directory for labctl's state")
}

func nodeNameFlag() cli.Flag {
	f := stringFlag("node-name", nil, "", "this machine's node name")
	f.DefaultText = "the hostname in lower case"
	return f
}

func nodeIPFlag() cli.Flag {
	return stringFlag("node-ip", nil, "", "this machine's node address")
}

func debugFlag() cli.Flag {
	return boolFlag("debug", "log at debug level")
}

func serverFlags() []cli.Flag {
	return []cli.Flag{
		configFlag(),
		dataDirFlag(),
		stringFlag("write-kubeconfig", []string{"o"}, server.DefaultKubeconfigPath, "where to write the admin kubeconfig"),
		stringFlag("write-kubeconfig-mode", nil, fmt.Sprintf("%04o", uint32(server.DefaultKubeconfigMode)), "file mode of the admin kubeconfig, in octal"),
		stringFlag("bind-address", nil, server.DefaultBindAddress, "address the API server listens on"),
		intFlag("https-listen-port", server.DefaultHTTPSPort, "port the API server listens on"),
		&cli.StringFlag{Name: "advertise-address", Usage: "address other nodes reach the API server at",
			DefaultText: "the node IP", EnvVars: []string{envVar("advertise-address")}},
		stringFlag("cluster-cidr", nil, server.DefaultClusterCIDR, "range of pod addresses"),
		stringFlag("service-cidr", nil, server.DefaultServiceCIDR, "range of service cluster IPs"),
		stringFlag("cluster-dns", nil, server.DefaultClusterDNS, "cluster IP of the DNS service, inside --service-cidr"),
		stringFlag("cluster-domain", nil, server.DefaultClusterDomain, "the cluster's DNS domain"),
		nodeNameFlag(),
		nodeIPFlag(),
		sliceFlag("disable", "add-ons not to deploy: "+strings.Join(server.Addons, ", ")+" (traefik names ingress too); repeat or separate with commas"),
		boolFlag("disable-agent", "run the control plane only, without a node on this machine"),
		runtimeEndpointFlag(),
		resolvConfFlag(),
		localStoragePathFlag(),
		&cli.StringFlag{Name: "datastore-endpoint", Usage: `datastore to use ("memory://" keeps it in memory, for tests)`,
			DefaultText: "the embedded bbolt file in the data directory", EnvVars: []string{envVar("datastore-endpoint")}},
		debugFlag(),
	}
}

func agentFlags() []cli.Flag {
	return []cli.Flag{
		configFlag(),
		dataDirFlag(),
		stringFlag("server", []string{"s"}, "", "https URL of the server to join, e.g. https://10.0.0.1:6443 (required)"),
		stringFlag("token", []string{"t"}, "", "token for joining the cluster"),
		nodeNameFlag(),
		nodeIPFlag(),
		stringFlag("cluster-cidr", nil, server.DefaultClusterCIDR, "range of pod addresses (the server's --cluster-cidr)"),
		stringFlag("cluster-dns", nil, server.DefaultClusterDNS, "cluster IP of the DNS service (the server's --cluster-dns)"),
		stringFlag("cluster-domain", nil, server.DefaultClusterDomain, "the cluster's DNS domain (the server's --cluster-domain)"),
		runtimeEndpointFlag(),
		resolvConfFlag(),
		localStoragePathFlag(),
		debugFlag(),
	}
}

func resolvConfFlag() cli.Flag {
	return stringFlag("resolv-conf", nil, "",
		"resolv.conf of the upstream resolvers, for CoreDNS and pods with dnsPolicy Default (default /etc/resolv.conf, or systemd-resolved's when that names only 127.0.0.53)")
}

// localStoragePathFlag is k3s's flag for the directory of the node's
// local-path volumes.
func localStoragePathFlag() *cli.StringFlag {
	f := stringFlag("default-local-storage-path", nil, "", "directory of this node's local-path volumes")
	f.DefaultText = "<data-dir>/storage"
	return f
}

func runtimeEndpointFlag() cli.Flag {
	return stringFlag("container-runtime-endpoint", nil, "",
		"socket of a containerd to use instead of labctl's own, e.g. unix:///run/containerd/containerd.sock")
}

func checkFlags() []cli.Flag {
	return []cli.Flag{
		configFlag(),
		intFlag("https-listen-port", server.DefaultHTTPSPort, "API server port that must be free"),
		debugFlag(),
	}
}

// flagNames returns the long names of flags.
func flagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		names = append(names, f.Names()[0])
	}
	return names
}

// allFlagNames is every flag name of every command: the keys a config file
// may hold. A key that belongs to another command is skipped, so that one
// file can serve `labctl server` and `labctl check`.
func allFlagNames() []string {
	var names []string
	for _, flags := range [][]cli.Flag{serverFlags(), agentFlags(), checkFlags()} {
		for _, n := range flagNames(flags) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names
}

// applyConfigFile reads the --config file and sets every flag of the
// command that is not set yet (on the command line or in the environment)
// from it. A missing file is fine at the default path only. It returns the
// keys it skipped because they are settings of another command.
func applyConfigFile(c *cli.Context) (skipped []string, err error) {
	path := c.String("config")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !c.IsSet("config") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	settings, err := parseConfigFile(path, data)
	if err != nil {
		return nil, err
	}

	own := map[string]cli.Flag{}
	for _, f := range c.Command.Flags {
		own[f.Names()[0]] = f
	}
	known := allFlagNames()
	for _, s := range settings {
		flag, ok := own[s.key]
		switch {
		case s.key == "config":
			return nil, s.errorf(path, "a config file cannot name another config file")
		case !ok && slices.Contains(known, s.key):
			skipped = append(skipped, s.key)
			continue
		case !ok:
			return nil, s.errorf(path, "unknown key %q: the keys are the flags of labctl server, agent and check without their dashes, e.g. data-dir", s.key)
		}
		if c.IsSet(s.key) {
			continue // the command line or the environment wins
		}
		if _, isList := flag.(*cli.StringSliceFlag); !isList && len(s.values) != 1 {
			return nil, s.errorf(path, "key %q takes one value, not a list", s.key)
		}
		for _, v := range s.values {
			if err := c.Set(s.key, v); err != nil {
				return nil, s.errorf(path, "key %q: invalid value %q (want %s): %w", s.key, v, valueKind(flag), err)
			}
		}
	}
	return skipped, nil
}

// valueKind describes the values a flag takes, for error messages.
func valueKind(f cli.Flag) string {
	switch f.(type) {
	case *cli.BoolFlag:
		return "true or false"
	case *cli.IntFlag:
		return "a whole number"
	}
	return "a string"
}

// setting is one key of a config file with its values, as written.
type setting struct {
	key    string
	values []string
	line   int
}

func (s setting) errorf(path, format string, args ...any) error {
	return fmt.Errorf("config file %s, line %d: %w", path, s.line, fmt.Errorf(format, args...))
}

// parseConfigFile reads a YAML mapping of flag names to a value or a list
// of values. Values are kept as written (so a mode of 0644 stays "0644",
// not the number 420) and handed to the flags as if typed on the command
// line. A key with no value (null) is skipped.
func parseConfigFile(path string, data []byte) ([]setting, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s, line %d: want a mapping of settings such as data-dir: /var/lib/labctl", path, root.Line)
	}
	var out []setting
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		s := setting{key: k.Value, line: k.Line}
		if k.Kind != yaml.ScalarNode {
			return nil, s.errorf(path, "keys must be flag names")
		}
		if seen[s.key] {
			return nil, s.errorf(path, "key %q appears twice", s.key)
		}
		seen[s.key] = true
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue
			}
			s.values = []string{v.Value}
		case yaml.SequenceNode:
			s.values = []string{} // an empty list is a value too
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, s.errorf(path, "key %q: list items must be plain values", s.key)
				}
				s.values = append(s.values, item.Value)
			}
		default:
			return nil, s.errorf(path, "key %q: want a value or a list of values", s.key)
		}
		out = append(out, s)
	}
	return out, nil
}

// agentConfig is what `labctl agent` is told. It becomes the agent
// package's Config when the node agent exists.
type agentConfig struct {
	// DataDir holds the agent's state (default /var/lib/labctl).
	DataDir string
	// Server is the https URL of the server to join; required.
	Server *url.URL
	// Token authenticates the join (default ""; not checked yet).
	Token string
	// NodeName is this machine's node name (default: the hostname in lower
	// case).
	NodeName string
	// NodeIP is this machine's node address (default: the address of the
	// default route's interface).
	NodeIP netip.Addr
	// ClusterCIDR, ClusterDNS and ClusterDomain repeat the server's.
	ClusterCIDR   netip.Prefix
	ClusterDNS    netip.Addr
	ClusterDomain string
	// ContainerRuntimeEndpoint is a containerd to use ("": labctl's own).
	ContainerRuntimeEndpoint string
}

// flagErrors collects what is wrong with the flags, to report all at once.
type flagErrors []error

func (e *flagErrors) add(flag, format string, args ...any) {
	*e = append(*e, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
}

func (e flagErrors) err() error { return errors.Join(e...) }

// serverConfigFrom turns the server command's flags into a server.Config,
// checking every value.
func serverConfigFrom(c *cli.Context) (server.Config, error) {
	var errs flagErrors
	cfg := server.Config{
		DataDir:           absDir(c, &errs, "data-dir"),
		KubeconfigPath:    c.String("write-kubeconfig"),
		ClusterCIDR:       parsePrefix(c, &errs, "cluster-cidr"),
		ServiceCIDR:       parsePrefix(c, &errs, "service-cidr"),
		ClusterDNS:        parseAddr(c, &errs, "cluster-dns"),
		BindAddress:       parseAddr(c, &errs, "bind-address"),
		AdvertiseAddress:  parseAddr(c, &errs, "advertise-address"),
		NodeIP:            parseAddr(c, &errs, "node-ip"),
		ClusterDomain:     c.String("cluster-domain"),
		NodeName:          nodeName(c, &errs),
		Disable:           c.StringSlice("disable"),
		DisableAgent:      c.Bool("disable-agent"),
		DatastoreEndpoint: c.String("datastore-endpoint"),
	}
	if cfg.KubeconfigPath == "" {
		errs.add("write-kubeconfig", "empty: give a file path")
	}
	if port := c.Int("https-listen-port"); port < 1 || port > 65535 {
		errs.add("https-listen-port", "%d is not a port: use 1-65535", port)
	} else {
		cfg.HTTPSPort = port
	}
	mode := strings.TrimPrefix(c.String("write-kubeconfig-mode"), "0o")
	if m, err := strconv.ParseUint(mode, 8, 32); err != nil || m > 0o777 {
		errs.add("write-kubeconfig-mode", "%q is not a file mode: give octal permissions such as 0600 or 0644", c.String("write-kubeconfig-mode"))
	} else {
		cfg.KubeconfigMode = fs.FileMode(m)
	}
	if cfg.BindAddress.IsValid() && cfg.BindAddress.Zone() != "" {
		errs.add("bind-address", "%s has a zone; give a plain address", cfg.BindAddress)
	}
	if len(errs) > 0 {
		return server.Config{}, errs.err()
	}
	if err := cfg.Validate(); err != nil {
		return server.Config{}, err
	}
	return cfg, nil
}

// agentConfigFrom turns the agent command's flags into an agentConfig,
// checking every value.
func agentConfigFrom(c *cli.Context) (agentConfig, error) {
	var errs flagErrors
	cfg := agentConfig{
		DataDir:  absDir(c, &errs, "data-dir"),
		Token:    c.String("token"),
		NodeName: nodeName(c, &errs),
		NodeIP:   parseAddr(c, &errs, "node-ip"),

		ClusterCIDR:              parsePrefix(c, &errs, "cluster-cidr"),
		ClusterDNS:               parseAddr(c, &errs, "cluster-dns"),
		ClusterDomain:            c.String("cluster-domain"),
		ContainerRuntimeEndpoint: c.String("container-runtime-endpoint"),
	}
	switch raw := c.String("server"); {
	case raw == "":
		errs.add("server", "required: give the server's https URL, e.g. --server https://10.0.0.1:6443")
	default:
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			errs.add("server", "%q is not a URL: %v", raw, err)
		case u.Scheme != "https" || u.Host == "":
			errs.add("server", "%q is not an https URL: write it as https://HOST:6443", raw)
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
			errs.add("server", "%q has more than a host and port: write it as https://HOST:6443", raw)
		default:
			u.Path = ""
			cfg.Server = u
		}
	}
	return cfg, errs.err()
}

// absDir returns the flag's directory as an absolute path.
func absDir(c *cli.Context, errs *flagErrors, flag string) string {
	dir := c.String(flag)
	if dir == "" {
		errs.add(flag, "empty: give a directory")
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		errs.add(flag, "cannot make %q absolute: %v", dir, err)
		return ""
	}
	return abs
}

// parsePrefix parses the flag as a CIDR range; empty is an error.
func parsePrefix(c *cli.Context, errs *flagErrors, flag string) netip.Prefix {
	s := c.String(flag)
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		errs.add(flag, "%q is not a CIDR range: write it as address/bits, e.g. 10.42.0.0/16", s)
	case p != p.Masked():
		errs.add(flag, "%s has host bits set: did you mean %s?", p, p.Masked())
	}
	return p
}

// parseAddr parses the flag as an IP address; empty means unset.
func parseAddr(c *cli.Context, errs *flagErrors, flag string) netip.Addr {
	s := c.String(flag)
	if s == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		errs.add(flag, "%q is not an IP address, e.g. 10.0.0.5", s)
	}
	return a
}

// nodeName returns --node-name, or else the hostname in lower case.
func nodeName(c *cli.Context, errs *flagErrors) string {
	if n := c.String("node-name"); n != "" {
		return n
	}
	h, err := os.Hostname()
	if err != nil {
		errs.add("node-name", "not given and the hostname cannot be read (%v): give one", err)
		return ""
	}
	return strings.ToLower(h)
}
