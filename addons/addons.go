package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"labctl/addons/coredns"
	"labctl/addons/localpath"
)

// Config is what labctl server tells the add-ons.
type Config struct {
	// Kubeconfig holds the add-ons' credentials (required).
	Kubeconfig string
	// Transport, when not nil, carries the add-ons' API requests instead of
	// the kubeconfig's TLS settings (the kubeconfig still names the
	// server): labctl server's in-process transport, as system:addons
	// (server/loopback). CoreDNS's kubernetes plugin reads the kubeconfig
	// on its own and keeps to the network.
	Transport http.RoundTripper
	// CoreDNS runs cluster DNS; false (--disable coredns) removes the
	// kube-dns objects an earlier run left.
	CoreDNS bool
	// LocalStorage keeps the local-path StorageClass, whose volumes each
	// node's agent provisions; false (--disable local-storage) removes
	// the class an earlier run made.
	LocalStorage bool
	// NodeIP is the server's node address, where CoreDNS listens
	// (required with CoreDNS).
	NodeIP netip.Addr
	// ClusterDNS and ClusterDomain are the server's --cluster-dns and
	// --cluster-domain.
	ClusterDNS    netip.Addr
	ClusterDomain string
	// ResolvConf lists CoreDNS's upstream resolvers (--resolv-conf;
	// default /etc/resolv.conf).
	ResolvConf string
	// Logger receives the add-ons' logs, each with its "addon" attribute
	// (default: discarded).
	Logger *slog.Logger
}

// Run runs the add-ons that are not disabled until ctx ends, then
// returns nil; it returns an error when one of them cannot start. The
// local-path StorageClass is kept beside CoreDNS, whatever becomes of it.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("add-ons: read their kubeconfig: %w", err)
	}
	if cfg.Transport != nil {
		// client-go refuses TLS options beside a transport of one's own.
		rc.TLSClientConfig, rc.Transport = rest.TLSClientConfig{}, cfg.Transport
	}
	rc.UserAgent = "labctl-addons"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("add-ons: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { localStorage(ctx, cs, cfg.LocalStorage, cfg.Logger.With("addon", "local-storage")) })
	if !cfg.CoreDNS {
		if err := coredns.Remove(ctx, cs); err != nil && !errors.Is(err, context.Canceled) {
			cfg.Logger.Warn("could not remove the kube-dns service of an earlier run with CoreDNS", "err", err)
		}
		return nil
	}
	return coredns.Run(ctx, coredns.Config{
		Kubeconfig: cfg.Kubeconfig, Client: cs,
		ListenIP: cfg.NodeIP, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		ResolvConf: cfg.ResolvConf, Logger: cfg.Logger.With("addon", "coredns"),
	})
}

// localStorage creates the local-path StorageClass (or, when disabled,
// removes the one an earlier run made), trying again until it can or ctx
// ends: the add-ons start with the API, which may not answer yet.
func localStorage(ctx context.Context, cs kubernetes.Interface, enabled bool, log *slog.Logger) {
	do, failed := localpath.EnsureStorageClass,
		"could not create the local-path storage class; retrying (claims of no class stay Pending meanwhile; --disable local-storage turns the add-on off)"
	if !enabled {
		do, failed = localpath.RemoveStorageClass,
			"could not remove the local-path storage class of an earlier run; retrying (kubectl delete storageclass local-path removes it by hand)"
	}
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		err := do(ctx, cs)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn(failed, "err", err, "retry", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
