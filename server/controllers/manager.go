// Package controllers holds labctl's controllers: the loops that keep the
// cluster's objects as they should be (the course's
// kube-controller-manager). They run inside the server process but talk
// to the API only as a client does, through client-go over the loopback
// address with the controller manager's own certificate, with informers
// and the typed client, so they see and cause exactly what any client
// would: resourceVersion conflicts, watches, events.
//
// Manager runs them all while it holds the kube-controller-manager Lease
// in kube-system, so that two servers on one store never both act.
package controllers

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"labctl/server/scheduler"
)

// Config configures the controllers.
type Config struct {
	// REST reaches the API server as the controller manager; required.
	REST *rest.Config
	// Identity names this server in the Lease; a stable one (the node
	// name) lets a restarted server take the Lease back at once.
	Identity string
	// RootCA is the cluster CA certificate (PEM) published in every
	// namespace as the kube-root-ca.crt ConfigMap; empty skips it.
	RootCA []byte
	// ServiceAccountKey signs the tokens the tokens controller puts in
	// Secrets of type kubernetes.io/service-account-token; nil leaves
	// them empty.
	ServiceAccountKey crypto.Signer
	// Logger receives the controllers' logs; nil discards them.
	Logger *slog.Logger
	// LeaseDuration, RenewDeadline and RetryPeriod tune the Lease
	// (defaults 15 s, 10 s, 2 s, as kube-controller-manager's).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Clock is the time of the Job, CronJob and TTL-after-finished
	// controllers (their deadlines, schedules and expiries), for tests to
	// step; nil is the real clock.
	Clock clock.WithTickerAndDelayedExecution
	// JobBackoff and JobMaxBackoff bound the Job controller's delay before
	// it replaces a failed pod, doubling from the first to the second
	// (defaults 10 s and 10 min, as upstream's code).
	JobBackoff, JobMaxBackoff time.Duration
	// NodeMonitorPeriod, NodeMonitorGracePeriod, NodeStartupGracePeriod: node lifecycle (defaults 5 s, 50 s, 60 s).
	NodeMonitorPeriod, NodeMonitorGracePeriod, NodeStartupGracePeriod time.Duration
	// TerminatedPodGCThreshold: finished pods pod GC keeps (default 12500; negative: no limit).
	TerminatedPodGCThreshold int
	// PodGCPeriod, PodGCQuarantine: pod GC's pass and wait for a missing node (defaults 20 s, 40 s).
	PodGCPeriod, PodGCQuarantine time.Duration
	// ClusterCIDR: the range node IPAM gives each Node a /24 of as its spec.podCIDR (default 10.42.0.0/16).
	ClusterCIDR netip.Prefix
}

// controller is one loop: its constructor adds its event handlers to the
// informers (informerSet.addEventHandler), then it runs until ctx ends.
type controller interface {
	name() string
	run(ctx context.Context)
}

// Run runs the controllers while this server holds the Lease, until ctx
// ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.REST == nil {
		return fmt.Errorf("controllers: no REST config")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	rc := rest.CopyConfig(cfg.REST)
	rc.UserAgent = "labctl-controller-manager"
	// The API server is in this process: the client-side limits only
	// keep a runaway loop from flooding it (kube-controller-manager's
	// defaults, 20 and 30, would make a 1,000-replica rollout crawl).
	rc.QPS, rc.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta("kube-system", "kube-controller-manager"),
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.RenewDeadline,
		RetryPeriod:     cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "kube-controller-manager",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { runAll(ctx, cs, dyn, cfg) },
			OnStoppedLeading: func() { cfg.Logger.Info("controllers stopped: the lease is lost or released") },
		},
	})
	if err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	le.Run(ctx)
	return nil
}

// schedulerLoop runs server/scheduler among the controllers.
type schedulerLoop struct{ s *scheduler.Scheduler }

func (schedulerLoop) name() string              { return "scheduler" }
func (l schedulerLoop) run(ctx context.Context) { l.s.Run(ctx) }

// schedulerClient is the scheduler's own client, as kube-scheduler has
// one: its bindings must not wait behind the controllers' writes. It
// falls back to cs when the configuration does not make a client.
func schedulerClient(cfg *rest.Config, cs kubernetes.Interface) kubernetes.Interface {
	rc := rest.CopyConfig(cfg)
	rc.UserAgent = "labctl-scheduler"
	rc.QPS, rc.Burst = 2000, 4000
	if sc, err := kubernetes.NewForConfig(rc); err == nil {
		return sc
	}
	return cs
}

// runAll starts the informers and every controller, and waits for them.
func runAll(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, cfg Config) {
	cfg.Logger.Info("controllers starting", "identity", cfg.Identity)
	f := informerSet{informers.NewSharedInformerFactory(cs, 0), &eventHandlers{}}
	events := record.NewBroadcaster(record.WithContext(ctx))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer events.Shutdown()
	recorder := func(component string) record.EventRecorder {
		return events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	}
	ctrls := []controller{
		newServiceAccounts(cs, f, cfg.Logger),
		newServiceAccountTokens(cs, f, cfg),
		newReplicaSets(cs, f, replicaSetSource(cs, f), recorder("replicaset-controller"), cfg.Logger),
		newReplicaSets(cs, f, replicationControllerSource(cs, f), recorder("replication-controller"), cfg.Logger),
		newDeployments(cs, f, recorder("deployment-controller"), cfg.Logger),
		newEndpoints(cs, f, cfg.Logger),
		newServiceLB(cs, f, recorder("service-lb-controller"), cfg.Logger),
		newDaemonSets(cs, f, recorder("daemonset-controller"), cfg.Logger),
		newJobs(cs, f, recorder("job-controller"), cfg.Logger, cfg.Clock, cfg.JobBackoff, cfg.JobMaxBackoff),
		newCronJobs(cs, f, recorder("cronjob-controller"), cfg.Logger, cfg.Clock),
		newTTLAfterFinished(cs, f, cfg.Logger, cfg.Clock),
		newNodeLifecycle(cs, f, recorder("node-controller"), cfg),
		newTaintEviction(cs, f, recorder("taint-eviction-controller"), cfg.Logger),
		newPodGC(cs, f, cfg),
		newDisruption(cs, f, recorder("controllermanager"), cfg.Logger),
		newStatefulSets(cs, f, recorder("statefulset-controller"), cfg.Logger),
		newEphemeralVolumes(cs, f, recorder("ephemeral_volume"), cfg.Logger),
		newPersistentVolumes(cs, f, recorder("persistentvolume-controller"), cfg.Logger),
		newResourceQuotas(cs, dyn, f, cfg.Logger),
		newNodeIPAM(cs, f, recorder("cidrAllocator"), cfg),
		// The scheduler runs under the controller manager's Lease for now.
		schedulerLoop{scheduler.New(schedulerClient(cfg.REST, cs), f, f.addEventHandler, recorder(scheduler.Name), cfg.Logger)},
	}
	if gc, err := newGarbageCollector(dyn, f, cfg.Logger); err != nil {
		cfg.Logger.Error("the garbage collector cannot start", "err", err)
	} else {
		ctrls = append(ctrls, gc)
	}
	if len(cfg.RootCA) > 0 {
		ctrls = append(ctrls, newRootCA(cs, f, cfg.RootCA, cfg.Logger))
	}
	// Every handler is added by now: one per informer goes to client-go.
	if err := f.handlers.register(); err != nil {
		cfg.Logger.Error("the controllers' event handlers cannot be registered", "err", err)
	}
	f.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, c := range ctrls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx)
		}()
	}
	wg.Wait()
	f.Shutdown()
}
