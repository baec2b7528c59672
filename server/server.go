package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"labctl/datastore"
	"labctl/server/apiserver"
	"labctl/server/authn"
	"labctl/server/controllers"
	"labctl/server/join"
	"labctl/server/loopback"
	"labctl/server/pki"
)

// Defaults for the `labctl server` flags and for Config's zero values.
const (
	DefaultDataDir         = "/var/lib/labctl"
	DefaultKubeconfigPath  = "/etc/labctl/labctl.yaml"
	DefaultKubeconfigMode  = fs.FileMode(0o600)
	DefaultBindAddress     = "0.0.0.0"
	DefaultHTTPSPort       = 6443
	DefaultClusterCIDR     = "10.42.0.0/16"
	DefaultServiceCIDR     = "10.43.0.0/16"
	DefaultClusterDNS      = "10.43.0.10"
	DefaultClusterDomain   = "cluster.local"
	DefaultShutdownTimeout = 10 * time.Second
)

// Add-ons that Config.Disable can name.
const (
	AddonCoreDNS       = "coredns"
	AddonIngress       = "ingress" // "traefik" is accepted too: k3s's name for it
	AddonLocalStorage  = "local-storage"
	AddonMetricsServer = "metrics-server"
)

// addonAliases maps other accepted names to an add-on.
var addonAliases = map[string]string{"traefik": AddonIngress}

// Addons lists the add-ons the server deploys unless disabled.
var Addons = []string{AddonCoreDNS, AddonIngress, AddonLocalStorage, AddonMetricsServer}

// readyzTimeout bounds the datastore probe behind /readyz.
const readyzTimeout = 2 * time.Second

// Config is everything `labctl server` can be told. Zero values mean the
// defaults, except for DataDir, which is required, and HTTPSPort, where 0
// picks a free port. The field comments name the flag each field comes from
// where the name differs.
type Config struct {
	// DataDir holds the server's state; required (the command's default is
	// /var/lib/labctl).
	DataDir string
	// KubeconfigPath is where Run writes the admin kubeconfig, from
	// --write-kubeconfig (the command's default is /etc/labctl/labctl.yaml;
	// default "": none is written).
	KubeconfigPath string
	// KubeconfigMode is that file's mode, from --write-kubeconfig-mode
	// (default 0600).
	KubeconfigMode fs.FileMode
	// BindAddress is the address the HTTPS server listens on (default
	// 0.0.0.0: every IPv4 address).
	BindAddress netip.Addr
	// HTTPSPort is the HTTPS port, from --https-listen-port (the command's
	// default is 6443); 0 picks a free port, which Ready reports.
	HTTPSPort int
	// AdvertiseAddress is the address other nodes reach the server at
	// (default: NodeIP).
	AdvertiseAddress netip.Addr
	// ClusterCIDR is the range pod addresses come from (default
	// 10.42.0.0/16).
	ClusterCIDR netip.Prefix
	// ServiceCIDR is the range service cluster IPs come from (default
	// 10.43.0.0/16).
	ServiceCIDR netip.Prefix
	// ClusterDNS is the cluster DNS service's address, inside ServiceCIDR
	// (default 10.43.0.10).
	ClusterDNS netip.Addr
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// NodeName is this machine's node name (default: its hostname, in
	// lower case).
	NodeName string
	// NodeIP is this machine's node address (default: none yet; the agent
	// will pick the address of the default route's interface).
	NodeIP netip.Addr
	// Disable lists add-ons not to deploy, from Addons (default: none).
	Disable []string
	// DisableAgent runs the control plane without a node on this machine
	// (default false).
	DisableAgent bool
	// DatastoreEndpoint selects the datastore (default "": the embedded
	// bbolt file under DataDir; "memory://" keeps it in memory, for tests).
	DatastoreEndpoint string
	// ShutdownTimeout bounds how long requests in flight may take to finish
	// when Run stops (default 10 s).
	ShutdownTimeout time.Duration
	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
	// Ready, when not nil, is called once with the address the HTTPS server
	// listens on, as soon as it accepts connections (default nil).
	Ready func(addr net.Addr)
	// Agent, when not nil and DisableAgent is false, runs this machine's
	// node once the API answers, until ctx ends; kubeconfig is the node's
	// (system:node:<NodeName>, written under DataDir/agent), and transport
	// reaches the API in-process with the same identity (package
	// loopback), to use instead of the kubeconfig's TLS settings. The
	// server does not import the agent: main wires it, and the agent
	// reaches the API as any other node does.
	Agent func(ctx context.Context, kubeconfig string, transport http.RoundTripper) error
	// Addons, when not nil, runs the cluster add-ons (CoreDNS, ...) once
	// the API answers, until ctx ends; kubeconfig is theirs
	// (system:addons in group system:masters, written under
	// DataDir/server) and transport, as for Agent, reaches the API
	// in-process as system:addons. As for Agent, main wires it; Disable is
	// for it to read.
	Addons func(ctx context.Context, kubeconfig string, transport http.RoundTripper) error
}

// withDefaults fills in zero values.
func (c Config) withDefaults() Config {
	if c.KubeconfigMode == 0 {
		c.KubeconfigMode = DefaultKubeconfigMode
	}
	if !c.BindAddress.IsValid() {
		c.BindAddress = netip.MustParseAddr(DefaultBindAddress)
	}
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = netip.MustParsePrefix(DefaultClusterCIDR)
	}
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	if !c.ClusterDNS.IsValid() {
		c.ClusterDNS = netip.MustParseAddr(DefaultClusterDNS)
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	if c.NodeName == "" {
		if h, err := os.Hostname(); err == nil {
			c.NodeName = strings.ToLower(h)
		}
	}
	if !c.AdvertiseAddress.IsValid() {
		c.AdvertiseAddress = c.NodeIP
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration, with its zero values replaced by the
// defaults, and says what to change when something is wrong. Run calls it
// too; callers call it to fail before doing anything else.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.DataDir == "" {
		bad("no data directory (data-dir) given")
	}
	if c.KubeconfigMode&^fs.ModePerm != 0 {
		bad("kubeconfig mode (write-kubeconfig-mode) %#o has bits beyond the permissions; use e.g. 0600", uint32(c.KubeconfigMode))
	}
	if c.HTTPSPort < 0 || c.HTTPSPort > 65535 {
		bad("HTTPS port (https-listen-port) %d is out of range: use 1-65535", c.HTTPSPort)
	}
	for _, p := range []struct {
		name   string
		prefix netip.Prefix
	}{{"cluster CIDR (cluster-cidr)", c.ClusterCIDR}, {"service CIDR (service-cidr)", c.ServiceCIDR}} {
		if p.prefix != p.prefix.Masked() {
			bad("%s %s has host bits set: use %s", p.name, p.prefix, p.prefix.Masked())
		}
	}
	if c.ClusterCIDR.Overlaps(c.ServiceCIDR) {
		bad("cluster CIDR (cluster-cidr) %s overlaps service CIDR (service-cidr) %s: pick ranges that do not overlap, e.g. %s and %s",
			c.ClusterCIDR, c.ServiceCIDR, DefaultClusterCIDR, DefaultServiceCIDR)
	}
	switch svc := c.ServiceCIDR.Masked(); {
	case !svc.Contains(c.ClusterDNS):
		bad("cluster DNS address (cluster-dns) %s is outside the service CIDR (service-cidr) %s: pick an address inside it, such as the tenth one",
			c.ClusterDNS, svc)
	case c.ClusterDNS == svc.Addr() || c.ClusterDNS == svc.Addr().Next():
		bad("cluster DNS address (cluster-dns) %s is reserved: the first address of the service CIDR is the network and the second is the kubernetes service; use e.g. the tenth",
			c.ClusterDNS)
	}
	if err := checkDNSName(c.ClusterDomain); err != nil {
		bad("cluster domain (cluster-domain) %q: %w", c.ClusterDomain, err)
	}
	if c.NodeName == "" {
		bad("no node name (node-name) given and the hostname cannot be read")
	} else if err := checkDNSName(c.NodeName); err != nil {
		bad("node name (node-name) %q: %w", c.NodeName, err)
	}
	for _, a := range []struct {
		name string
		addr netip.Addr
	}{{"advertise address (advertise-address)", c.AdvertiseAddress}, {"node IP (node-ip)", c.NodeIP}} {
		if a.addr.IsValid() && (a.addr.IsUnspecified() || a.addr.IsMulticast()) {
			bad("%s %s cannot be reached by other nodes: give one of this machine's addresses", a.name, a.addr)
		}
	}
	for _, d := range c.Disable {
		if canonicalAddon(d) == "" {
			bad("unknown add-on %q to disable: the add-ons are %s (traefik is another name for ingress)",
				d, strings.Join(Addons, ", "))
		}
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown timeout %v is negative", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// Disabled reports whether add-on (one of Addons) is in c.Disable, under
// its own name or another accepted one.
func (c Config) Disabled(addon string) bool {
	return slices.ContainsFunc(c.Disable, func(d string) bool { return canonicalAddon(d) == addon })
}

// canonicalAddon returns the add-on that name means, or "".
func canonicalAddon(name string) string {
	if a, ok := addonAliases[name]; ok {
		return a
	}
	if slices.Contains(Addons, name) {
		return name
	}
	return ""
}

// checkDNSName checks that s is a lower-case DNS name (RFC 1123
// subdomain), as Kubernetes wants node names and the cluster domain.
func checkDNSName(s string) error {
	const help = "use lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit"
	if len(s) > 253 {
		return fmt.Errorf("longer than 253 characters")
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("each dot-separated part must have 1 to 63 characters; %s", help)
		}
		for i, r := range label {
			alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
			if !alnum && (r != '-' || i == 0 || i == len(label)-1) {
				return fmt.Errorf("%q is not allowed there; %s", r, help)
			}
		}
	}
	return nil
}

// Run runs the server until ctx ends, then shuts it down and returns nil.
// It returns an error when the configuration is invalid, when the data
// directory, the datastore or the listener cannot be set up, or when
// serving fails.
func Run(ctx context.Context, cfg Config) (err error) {
	start := time.Now()
	defer func() {
		// Cancelled while starting: whichever step noticed first, the
		// cause is the cancellation (a store call says "Timeout").
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %v", ctx.Err(), err)
		}
	}()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid server configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger

	dbDir := filepath.Join(cfg.DataDir, "server", "db")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return fmt.Errorf("create the datastore directory: %w", err)
	}
	// MkdirAll leaves an existing directory's mode alone; the datastore
	// holds every secret of the cluster.
	if err := os.Chmod(dbDir, 0o700); err != nil {
		return fmt.Errorf("restrict the datastore directory: %w", err)
	}

	store, err := datastore.Open(datastore.Config{
		Endpoint: cfg.DatastoreEndpoint,
		Dir:      dbDir,
		Logger:   log.With("component", "datastore"),
	})
	if err != nil {
		return fmt.Errorf("open the datastore in %s: %w", dbDir, err)
	}
	defer func() {
		if cerr := store.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the datastore: %w", cerr))
		}
	}()

	tlsDir := filepath.Join(cfg.DataDir, "server", "tls")
	certs, err := pki.Ensure(pki.Config{
		Dir:           tlsDir,
		NodeName:      cfg.NodeName,
		ClusterDomain: cfg.ClusterDomain,
		ServiceCIDR:   cfg.ServiceCIDR,
		// pki skips the invalid and unspecified ones.
		IPs:    []netip.Addr{cfg.BindAddress, cfg.AdvertiseAddress, cfg.NodeIP},
		Logger: log.With("component", "pki"),
	})
	if err != nil {
		return fmt.Errorf("set up the certificates in %q: %w", tlsDir, err)
	}
	// Until RBAC: the admins, labctl's own components, and nodes (which
	// upstream's Node authorizer will narrow to their own objects; the
	// local-path provisioner in each node's agent also creates, deletes
	// and reads PersistentVolumes and claims with the node's identity,
	// which a narrower authorizer must still allow).
	nodes := authn.AuthorizerFunc(func(_ context.Context, a authn.Attributes) (authn.Decision, string, error) {
		if a.User != nil && slices.Contains(a.User.Groups, "system:nodes") {
			return authn.DecisionAllow, "", nil
		}
		return authn.DecisionNoOpinion, "", nil
	})
	authorizer := authn.AuthorizerUnion{authn.Masters{}, authn.Users{pki.ControllerManagerUser, pki.SchedulerUser}, nodes,
		// What upstream's default RBAC bindings give every authenticated
		// user: discovery and "who am I" (kubectl auth whoami).
		authn.AuthenticatedDefaults{}}
	apiCtx, stopAPI := context.WithCancel(ctx)
	// Service account tokens, with k3s's issuer and audiences.
	saIssuer := "https://kubernetes.default.svc." + cfg.ClusterDomain
	api, err := apiserver.New(apiCtx, apiserver.Config{
		Store:       store,
		ServiceCIDR: cfg.ServiceCIDR,
		Authorizer:  authorizer,
		// The API server's identity towards the kubelets.
		KubeletClientCert: certs.KubeletClient.TLSCertificate(),
		ServiceAccounts: apiserver.ServiceAccountConfig{
			Key:          certs.ServiceAccountKey,
			Issuer:       saIssuer,
			APIAudiences: []string{saIssuer, "labctl"},
		},
		Logger: log.With("component", "apiserver"),
	})
	if err != nil {
		stopAPI()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("start the API: %w", err)
	}
	defer func() {
		stopAPI()
		api.Wait() // before the store closes (deferred above)
	}()
	handler, err := authn.NewHandler(authn.Config{
		// Client certificates first, then service account bearer tokens,
		// as kube-apiserver orders them.
		Authenticator: authn.Union{authn.X509{}, api.TokenAuthenticator()},
		Authorizer:    authorizer,
		Logger:        log.With("component", "authn"),
	}, newHandler(store, api, log))
	if err != nil {
		return err
	}

	// Joining nodes have no certificate yet: the join paths answer
	// before authentication, on the join token (package join).
	secret, err := join.EnsureSecret(filepath.Join(cfg.DataDir, "server", "token"))
	if err != nil {
		return err
	}
	top := http.NewServeMux()
	joinHandler := join.Handler(join.Config{CAPEM: certs.CA.CertPEM, Secret: secret, Signer: certs, Logger: log.With("component", "join")})
	top.Handle(join.CACertsPath, joinHandler)
	top.Handle(join.NodeCertificatePath, joinHandler)
	top.Handle("/", handler)
	handler = top

	// The clients in this process (the controllers here, the add-ons and
	// this machine's node below) call handler directly, each with its own
	// certificate, instead of going through TLS and HTTP/2 over loopback;
	// only protocol upgrades, which none of them makes, still would.
	inProcess := func(cert tls.Certificate, client string) (http.RoundTripper, error) {
		rt, err := loopback.New(loopback.Config{Handler: handler, Certificate: cert, CA: certs.CA.Cert,
			Logger: log.With("component", "loopback", "client", client)})
		if err != nil {
			return nil, fmt.Errorf("in-process transport for the %s: %w", client, err)
		}
		return rt, nil
	}
	controllersTransport, err := inProcess(certs.ControllerManager.TLSCertificate(), "controllers")
	if err != nil {
		return err
	}

	addr := netip.AddrPortFrom(cfg.BindAddress, uint16(cfg.HTTPSPort)).String()
	network := "tcp" // "::" listens on IPv6 and IPv4
	if cfg.BindAddress.Is4() {
		network = "tcp4" // 0.0.0.0 means IPv4 only, not Go's dual-stack socket
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}

	port := ln.Addr().(*net.TCPAddr).Port
	if err := api.EnsureKubernetesService(ctx, apiAddress(cfg), port); err != nil {
		_ = ln.Close()
		return err
	}

	if cfg.KubeconfigPath != "" {
		// The port actually bound: HTTPSPort may be 0.
		url := pki.LocalServerURL(cfg.BindAddress, ln.Addr().(*net.TCPAddr).Port)
		if err := pki.WriteKubeconfig(cfg.KubeconfigPath, cfg.KubeconfigMode, url,
			certs.CA.CertPEM, certs.Admin.CertPEM, certs.Admin.KeyPEM); err != nil {
			_ = ln.Close()
			return fmt.Errorf("write the admin kubeconfig: %w", err)
		}
		log.Info("wrote the admin kubeconfig", "path", cfg.KubeconfigPath, "server", url)
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{certs.Serving.TLSCertificate()},
			// Client certificates are how users authenticate, but health
			// checks come without one; authn refuses the rest.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  certs.CertPool(),
			MinVersion: tls.VersionTLS12,
		},
		// Clients that do not trust the cluster CA (curl without --cacert
		// or -k), or that offer a certificate from another CA, fail their
		// handshake; that is their business, so debug level.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()

	log.Info("server ready", "address", ln.Addr().String(),
		"took", time.Since(start).Round(time.Millisecond))

	// client-go's own logs (leader election, informers) join ours.
	klog.SetSlogLogger(log.With("component", "client-go"))
	// The controllers reach the API in-process as the controller manager.
	// The host is only named (upgrades would go there): client-go refuses
	// TLS options beside a transport of one's own, which has them already.
	localURL := pki.LocalServerURL(cfg.BindAddress, port)
	ctrlCtx, stopControllers := context.WithCancel(ctx)
	ctrlDone := make(chan struct{})
	go func() {
		defer close(ctrlDone)
		err := controllers.Run(ctrlCtx, controllers.Config{
			REST:              &rest.Config{Host: localURL, Transport: controllersTransport},
			Identity:          cfg.NodeName,
			RootCA:            certs.CA.CertPEM,
			ServiceAccountKey: certs.ServiceAccountKey,
			Logger:            log.With("component", "controllers"),
			ClusterCIDR:       cfg.ClusterCIDR,
		})
		if err != nil {
			log.Error("controllers stopped", "err", err)
		}
	}()
	defer func() {
		stopControllers()
		<-ctrlDone
	}()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	agentDone := make(chan struct{})
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	if cfg.Agent != nil && !cfg.DisableAgent {
		path, cert, err := writeNodeKubeconfig(cfg, certs, localURL)
		if err != nil {
			return fmt.Errorf("the node's credentials: %w", err)
		}
		transport, err := inProcess(cert, "agent")
		if err != nil {
			return err
		}
		go func() {
			defer close(agentDone)
			if err := cfg.Agent(agentCtx, path, transport); err != nil && agentCtx.Err() == nil {
				log.Error("the node agent stopped; this machine runs no pods (see the messages above)", "err", err)
			}
		}()
	} else {
		close(agentDone)
	}
	defer func() {
		stopAgent()
		<-agentDone
	}()
	addonsDone := make(chan struct{})
	addonsCtx, stopAddons := context.WithCancel(ctx)
	defer stopAddons()
	if cfg.Addons != nil {
		path, cert, err := writeClientKubeconfig(filepath.Join(cfg.DataDir, "server", "addons.kubeconfig"),
			certs, localURL, "system:addons", "system:masters")
		if err != nil {
			return fmt.Errorf("the add-ons' credentials: %w", err)
		}
		transport, err := inProcess(cert, "addons")
		if err != nil {
			return err
		}
		go func() {
			defer close(addonsDone)
			if err := cfg.Addons(addonsCtx, path, transport); err != nil && addonsCtx.Err() == nil {
				log.Error("the add-ons stopped (see the messages above)", "err", err)
			}
		}()
	} else {
		close(addonsDone)
	}
	defer func() {
		stopAddons()
		<-addonsDone
	}()

	select {
	case err := <-served:
		// ServeTLS only returns early on failure; it closed the listener.
		return fmt.Errorf("serve HTTPS on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	log.Info("server stopping")
	// The node first: it posts its last words through the API.
	stopAgent()
	<-agentDone
	stopAddons()
	<-addonsDone
	// The controllers first, while the API still answers them (the Lease
	// is released).
	stopControllers()
	<-ctrlDone
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still running after the timeout are cut off.
		log.Warn("HTTPS server did not stop in time; closing connections", "error", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTPS on %s: %w", ln.Addr(), err)
	}
	log.Info("server stopped")
	return nil
}

// apiAddress is where pods reach the API server, behind the kubernetes
// service: the advertise address, else this machine's first global IPv4
// address, else loopback.
func apiAddress(cfg Config) netip.Addr {
	if cfg.AdvertiseAddress.IsValid() && !cfg.AdvertiseAddress.IsUnspecified() {
		return cfg.AdvertiseAddress
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ip = ip.Unmap()
					if ip.Is4() && ip.IsGlobalUnicast() {
						return ip
					}
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

// newHandler serves the health endpoints, Go's profiles under
// /debug/pprof/ (for admins, as kube-apiserver's --profiling gives them),
// and the API on every other path.
func newHandler(store datastore.Interface, api http.Handler, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ok := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /livez", ok)
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		})
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
		defer cancel()
		if _, _, err := store.Revisions(ctx); err != nil {
			log.Warn("readyz: datastore does not answer", "error", err)
			http.Error(w, "datastore not ready", http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	return mux
}

// writeNodeKubeconfig gives this machine's node its credentials, as a
// joining node gets them: a client certificate for system:node:<name> in
// group system:nodes, in DataDir/agent/kubelet.kubeconfig.
func writeNodeKubeconfig(cfg Config, certs *pki.PKI, url string) (string, tls.Certificate, error) {
	return writeClientKubeconfig(filepath.Join(cfg.DataDir, "agent", "kubelet.kubeconfig"),
		certs, url, "system:node:"+cfg.NodeName, "system:nodes")
}

// writeClientKubeconfig writes to path a kubeconfig for url with a new
// client certificate for user in groups, and returns the path and that
// certificate with its key.
func writeClientKubeconfig(path string, certs *pki.PKI, url, user string, groups ...string) (string, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	certPEM, err := certs.SignClient(key.Public(), user, groups)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, keyPEM) // parses the leaf too
	if err != nil {
		return "", tls.Certificate{}, fmt.Errorf("the certificate issued for %q: %w", user, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", tls.Certificate{}, err
	}
	if err := pki.WriteKubeconfig(path, 0o600, url, certs.CA.CertPEM, certPEM, keyPEM); err != nil {
		return "", tls.Certificate{}, err
	}
	return path, cert, nil
}
