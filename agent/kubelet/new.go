package kubelet

import (
	"errors"
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
		ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain, Logger: cfg.Logger,
		Exited: enqueue,
	}
	var net podNetwork
	if cfg.Network != nil {
		net = cfg.Network
	}
	rt, err := newPodRuntime(rc, cfg.Containerd, cfg.Images, net)
	if err != nil {
		return nil, err
	}
	cfg.runtime = rt
	cfg.probes = newProbeManager(probeConfig{Exec: rt.Exec, Event: event, Changed: enqueue, Logger: cfg.Logger})
	cfg.hooks = newActionRunner(rt.Exec, event, cfg.Logger)
	k, err := newKubelet(cfg)
	if err != nil {
		return nil, err
	}
	self.Store(k)
	return k, nil
}
