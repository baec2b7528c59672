package kubelet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// New makes the kubelet and its parts (the pod runtime, volumes,
// environment, probes and hooks) from cfg.
func New(cfg Config) (*Kubelet, error) {
	if cfg.Containerd == nil || cfg.Images == nil || cfg.Root == "" {
		return nil, errors.New("kubelet: a containerd client, an images Manager and a root directory are required")
	}
	// The parts call back into the kubelet, which is made last.
	var self atomic.Pointer[Kubelet]
	enqueue := func(uid types.UID) {
		if k := self.Load(); k != nil {
			k.enqueue(uid)
		}
	}
	event := func(pod *corev1.Pod, eventType, reason, message string) {
		if k := self.Load(); k != nil {
			k.event(pod, eventType, reason, "%s", message)
		}
	}
	rc := runtimeConfig{
		Root: cfg.Root, LogDir: cfg.LogDir, CgroupParent: cfg.CgroupParent,
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, HostResolvConf: cfg.HostResolvConf, Logger: cfg.Logger,
		Exited: enqueue,
	}
	var pnet podNetwork
	if cfg.Network != nil {
		pnet = cfg.Network
	}
	rt, err := newPodRuntime(rc, cfg.Containerd, cfg.Images, pnet)
	if err != nil {
		return nil, err
	}
	cfg.runtime = rt
	objs := newAPIObjects(cfg.Client)
	cfg.volumes = newVolumeManager(volumeConfig{PodsDir: filepath.Join(cfg.Root, "pods"), Objects: objs,
		NodeName: cfg.NodeName, NodeAllocatable: func() corev1.ResourceList { return cfg.Allocatable }, Logger: cfg.Logger})
	cfg.env = func(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIPs, hostIPs []string) ([]string, error) {
		return containerEnvironment(ctx, objs, pod, c, podIPs, hostIPs, cfg.Allocatable)
	}
	cfg.probes = newProbeManager(probeConfig{Exec: rt.Exec, Event: event, Changed: enqueue, Logger: cfg.Logger})
	cfg.hooks = newActionRunner(rt.Exec, event, cfg.Logger)
	k, err := newKubelet(cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.ClientCA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.ClientCA) {
			return nil, errors.New("kubelet: the client CA holds no certificate")
		}
		ips := []net.IP{net.IPv4(127, 0, 0, 1)}
		if cfg.NodeIP.IsValid() {
			ips = append(ips, net.IP(cfg.NodeIP.AsSlice()))
		}
		cert, err := selfSignedServingCert(filepath.Join(cfg.Root, "tls"), cfg.NodeName, ips)
		if err != nil {
			return nil, fmt.Errorf("kubelet: serving certificate: %w", err)
		}
		k.cfg.server, err = newServer(serverConfig{Addr: cfg.ServerAddr, Cert: cert, ClientCAs: pool,
			Pods: k, Runtime: rt, NodeName: cfg.NodeName, Logger: k.log.With("component", "kubelet-server")})
		if err != nil {
			return nil, err
		}
	}
	self.Store(k)
	return k, nil
}
