package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"labctl/addons/coredns"
)

// Config is what labctl server tells the add-ons.
type Config struct {
	// Kubeconfig holds the add-ons' credentials (required).
	Kubeconfig string
	// CoreDNS runs cluster DNS; false (--disable coredns) removes the
	// kube-dns objects an earlier run left.
	CoreDNS bool
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
// returns nil; it returns an error when one of them cannot start.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("add-ons: read their kubeconfig: %w", err)
	}
	rc.UserAgent = "labctl-addons"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("add-ons: %w", err)
	}
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
