package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Probes (probes.go): the liveness, readiness and startup probes of the
// pods' running containers, as upstream's prober (pkg/kubelet/prober)
// runs them. The kubelet tells the probeManager which container runs for
// each of a pod's containers (Sync); the manager keeps one worker, a
// goroutine, per running container and probe, which probes every
// periodSeconds once initialDelaySeconds have passed since the container
// was first seen running, and turns the outcomes into a verdict with the
// thresholds:
//
//   - startup: not started until the probe succeeds; failureThreshold
//     failures in a row fail it. Either way the worker then stops. While
//     a container has not started, its other probes wait.
//   - readiness: not ready until successThreshold successes in a row,
//     unready again after failureThreshold failures; it never stops.
//   - liveness: healthy until failureThreshold failures in a row; the
//     worker then stops until the container is replaced (a new ID).
//
// Every failed probe records a Warning Unhealthy event ("Liveness probe
// failed: ..."). A verdict that changes calls Changed, so that the kubelet
// syncs the pod: it posts readiness and restarts a container whose
// liveness or startup failed (Failed). Workers never block the kubelet:
// Sync, Remove and the verdicts only look at memory and start or cancel
// goroutines; Stop cancels them all and waits for them.

// probeKind is one of a container's three probes.
type probeKind int

const (
	probeLiveness probeKind = iota
	probeReadiness
	probeStartup
)

var probeKinds = []probeKind{probeLiveness, probeReadiness, probeStartup}

// String is the kind as upstream's events word it.
func (k probeKind) String() string {
	switch k {
	case probeLiveness:
		return "Liveness"
	case probeReadiness:
		return "Readiness"
	}
	return "Startup"
}

// spec is the container's probe of kind k (nil: none).
func (k probeKind) spec(c *corev1.Container) *corev1.Probe {
	switch k {
	case probeLiveness:
		return c.LivenessProbe
	case probeReadiness:
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// maxProbeRetries is how often a probe that could not run (an error, not
// a failure) is tried again at once, as upstream.
const maxProbeRetries = 3

// probeConfig configures a probeManager.
type probeConfig struct {
	// Exec runs exec probes (podRuntime.Exec).
	Exec execFunc
	// Event records an event on the pod, e.g. Warning Unhealthy
	// "Liveness probe failed: ..." (nil: none).
	Event eventFunc
	// Changed is called, on a worker's goroutine, when a container's
	// readiness, startup or liveness verdict changes, so that the kubelet
	// syncs the pod again. It must not block for long (nil: not called).
	Changed func(uid types.UID)
	// Logger receives the probes' logs (default: discarded).
	Logger *slog.Logger

	// second is how long a second of the probes' periods and initial
	// delays lasts (default time.Second); tests shorten it. Timeouts
	// are always in real seconds.
	second time.Duration
}

// probeResult is what the probes say of one run of a container.
type probeResult struct {
	// Ready: the readiness probe succeeded successThreshold times (with
	// no readiness probe: true once started).
	Ready bool
	// Started: the startup probe passed (true without one).
	Started bool
	// LivenessFailed and StartupFailed: failureThreshold probes failed
	// in a row; Message is then the last probe's output.
	LivenessFailed, StartupFailed bool
	Message                       string
}

// probeManager runs the probes of the pods' running containers.
type probeManager struct {
	cfg    probeConfig
	runner *actionRunner
	log    *slog.Logger
	start  time.Time // for the jitter after a (re)start

	ctx    context.Context // ends with Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the workers

	mu   sync.Mutex
	pods map[types.UID]*probedPod
}

// probedPod is a pod as the last Sync gave it, with its workers.
type probedPod struct {
	pod     *corev1.Pod
	podIP   string
	workers map[workerKey]*probeWorker
}

type workerKey struct {
	container string
	kind      probeKind
}

// probeWorker probes one probe of one running container.
type probeWorker struct {
	m       *probeManager
	uid     types.UID
	c       *corev1.Container // the spec the worker was started with
	kind    probeKind
	spec    *corev1.Probe // kind's probe of c, defaulted
	id      string        // the running container's ID
	seen    time.Time     // when Sync first saw the container running
	cancel  context.CancelFunc
	trigger chan struct{} // a probe now, please (buffered)

	// Guarded by m.mu: the verdict, and the failing probe's output.
	verdict probeStatus // probeUnknown, probeSuccess or probeFailure
	message string

	// The worker's goroutine's alone.
	last   probeStatus // the last outcome, and how many in a row
	inARow int
	onHold bool // probe no more: the verdict is final for this container
}

// newProbeManager returns a manager with no pods.
func newProbeManager(cfg probeConfig) *probeManager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.second <= 0 {
		cfg.second = time.Second
	}
	m := &probeManager{
		cfg: cfg, log: cfg.Logger, start: time.Now(),
		runner: newActionRunner(cfg.Exec, cfg.Event, cfg.Logger),
		pods:   map[types.UID]*probedPod{},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

// probedContainers are the pod's containers that can have probes: the
// regular ones and the restartable init containers (sidecars).
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out = append(out, c)
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

func findProbedContainer(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range probedContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Sync starts a worker per probe of each of the pod's running containers
// (running maps a container's name to its running container's ID; a
// container not in it is not running) and stops the workers of
// containers no longer running or replaced. podIP is what httpGet,
// tcpSocket and grpc probes reach. It returns at once. The first Sync of
// a pod with running containers calls Changed, since what the verdicts
// said of the pod before it no longer holds.
func (m *probeManager) Sync(pod *corev1.Pod, podIP string, running map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return // stopped
	}
	p := m.pods[pod.UID]
	if p == nil {
		p = &probedPod{workers: map[workerKey]*probeWorker{}}
		m.pods[pod.UID] = p
		if len(running) > 0 && m.cfg.Changed != nil {
			// Asked before this first Sync, the verdicts said that nothing
			// was started or ready; now containers without startup or
			// readiness probes are. Changed runs on its own goroutine, as
			// the caller may hold its locks.
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.cfg.Changed(pod.UID)
			}()
		}
	}
	p.pod, p.podIP = pod, podIP

	want := map[workerKey]string{}
	specs := map[workerKey]*corev1.Container{}
	for _, c := range probedContainers(pod) {
		id := running[c.Name]
		if id == "" {
			continue
		}
		for _, kind := range probeKinds {
			if kind.spec(c) != nil {
				k := workerKey{c.Name, kind}
				want[k], specs[k] = id, c
			}
		}
	}
	for k, w := range p.workers {
		if want[k] != w.id {
			w.cancel()
			delete(p.workers, k)
		}
	}
	for k, id := range want {
		if p.workers[k] == nil {
			p.workers[k] = m.startWorker(pod.UID, specs[k], k.kind, id)
		}
	}
}

// startWorker starts a worker; m.mu is held.
func (m *probeManager) startWorker(uid types.UID, c *corev1.Container, kind probeKind, id string) *probeWorker {
	c = c.DeepCopy()
	spec := kind.spec(c)
	// The API server defaults these; a pod from elsewhere may not have them.
	if spec.PeriodSeconds <= 0 {
		spec.PeriodSeconds = 10
	}
	if spec.SuccessThreshold <= 0 {
		spec.SuccessThreshold = 1
	}
	if spec.FailureThreshold <= 0 {
		spec.FailureThreshold = 3
	}
	if spec.TimeoutSeconds <= 0 {
		spec.TimeoutSeconds = 1
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w := &probeWorker{
		m: m, uid: uid, c: c, kind: kind, spec: spec, id: id, seen: time.Now(),
		cancel: cancel, trigger: make(chan struct{}, 1),
	}
	// The verdict before the first probe: unready, alive, not started.
	switch kind {
	case probeReadiness:
		w.verdict = probeFailure
	case probeLiveness:
		w.verdict = probeSuccess
	}
	m.wg.Add(1)
	go w.run(ctx)
	return w
}

// Remove stops every worker of the pod with uid and forgets it.
func (m *probeManager) Remove(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.pods[uid]; p != nil {
		for _, w := range p.workers {
			w.cancel()
		}
		delete(m.pods, uid)
	}
}

// Stop stops every worker and waits for them (on the kubelet's
// shutdown); Sync does nothing after it.
func (m *probeManager) Stop() {
	m.mu.Lock()
	m.cancel()
	m.pods = map[types.UID]*probedPod{}
	m.mu.Unlock()
	m.wg.Wait()
}

// Result is what the probes say of the run of the pod's container with
// id. It answers for the pods Sync was given: for others, nothing is
// ready or started.
func (m *probeManager) Result(uid types.UID, container, id string) probeResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pods[uid]
	if p == nil {
		return probeResult{}
	}
	c := findProbedContainer(p.pod, container)
	if c == nil {
		return probeResult{}
	}
	// verdict is the kind's verdict for this run; a probe whose worker
	// has not started for it has none yet.
	verdict := func(kind probeKind) (probeStatus, *probeWorker) {
		w := p.workers[workerKey{container, kind}]
		if w == nil || w.id != id {
			return probeUnknown, nil
		}
		return w.verdict, w
	}
	r := probeResult{Started: true}
	if c.StartupProbe != nil {
		v, w := verdict(probeStartup)
		r.Started = v == probeSuccess
		if v == probeFailure {
			r.StartupFailed, r.Message = true, w.message
		}
	}
	if !r.Started {
		return r
	}
	r.Ready = true
	if c.ReadinessProbe != nil {
		v, w := verdict(probeReadiness)
		r.Ready = v == probeSuccess
		if !r.Ready && w != nil {
			w.poke() // as upstream: probe readiness now rather than at the next period
		}
	}
	if c.LivenessProbe != nil {
		if v, w := verdict(probeLiveness); v == probeFailure {
			r.LivenessFailed, r.Message = true, w.message
		}
	}
	return r
}

// Ready says whether the container's run with id is ready (started,
// and its readiness probe passed or it has none).
func (m *probeManager) Ready(uid types.UID, container, id string) bool {
	r := m.Result(uid, container, id)
	return r.Started && r.Ready
}

// Started says whether the container's run with id has started (its
// startup probe passed, or it has none).
func (m *probeManager) Started(uid types.UID, container, id string) bool {
	return m.Result(uid, container, id).Started
}

// Failed says whether the container's run with id failed its liveness or
// startup probe, with the message of the kubelet's Killing event:
// "Container c failed liveness probe, will be restarted" (without ", will
// be restarted" under restartPolicy Never).
func (m *probeManager) Failed(uid types.UID, container, id string) (string, bool) {
	r := m.Result(uid, container, id)
	var msg string
	switch {
	case r.LivenessFailed:
		msg = fmt.Sprintf("Container %s failed liveness probe", container)
	case r.StartupFailed:
		msg = fmt.Sprintf("Container %s failed startup probe", container)
	default:
		return "", false
	}
	m.mu.Lock()
	restart := true
	if p := m.pods[uid]; p != nil && p.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		restart = false
		// A sidecar restarts whatever the pod's policy.
		if c := findProbedContainer(p.pod, container); c != nil && c.RestartPolicy != nil {
			restart = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
	}
	m.mu.Unlock()
	if restart {
		msg += ", will be restarted"
	}
	return msg, true
}

// event records an event on pod, unless the config has no recorder.
func (m *probeManager) event(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	if m.cfg.Event != nil {
		m.cfg.Event(pod, eventType, reason, fmt.Sprintf(format, args...))
	}
}

// poke asks the worker for a probe now (it never blocks).
func (w *probeWorker) poke() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// run probes at once (after a jitter when the kubelet has just started,
// so that the adopted containers' probes do not all come at once), then
// every period and whenever poked, until ctx ends.
func (w *probeWorker) run(ctx context.Context) {
	defer w.m.wg.Done()
	period := time.Duration(w.spec.PeriodSeconds) * w.m.cfg.second
	if period > time.Since(w.m.start) {
		t := time.NewTimer(time.Duration(rand.Float64() * float64(period)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		w.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-w.trigger:
			ticker.Reset(period)
		}
	}
}

// probeOnce probes, when it is time to, and counts the outcome towards
// the thresholds.
func (w *probeWorker) probeOnce(ctx context.Context) {
	if w.onHold || ctx.Err() != nil {
		return
	}
	m := w.m
	m.mu.Lock()
	p := m.pods[w.uid]
	if p == nil || p.workers[workerKey{w.c.Name, w.kind}] != w {
		m.mu.Unlock()
		return // stopped
	}
	pod, podIP := p.pod, p.podIP
	started := true
	if w.kind != probeStartup && w.c.StartupProbe != nil {
		sw := p.workers[workerKey{w.c.Name, probeStartup}]
		started = sw != nil && sw.id == w.id && sw.verdict == probeSuccess
	}
	m.mu.Unlock()

	if pod.DeletionTimestamp != nil && (w.kind == probeLiveness || w.kind == probeStartup) {
		// The pod is going: no restarts while it stops.
		w.setVerdict(probeSuccess, "")
		w.onHold = true
		return
	}
	if int64(time.Since(w.seen)/m.cfg.second) < int64(w.spec.InitialDelaySeconds) {
		return
	}
	if !started {
		return // the startup probe has not passed yet
	}

	outcome, output, ok := w.probe(ctx, pod, podIP)
	if !ok {
		return // could not probe: the outcome does not count
	}
	if outcome == w.last {
		w.inARow++
	} else {
		w.last, w.inARow = outcome, 1
	}
	if outcome == probeFailure && w.inARow < int(w.spec.FailureThreshold) ||
		outcome == probeSuccess && w.inARow < int(w.spec.SuccessThreshold) {
		return
	}
	w.setVerdict(outcome, output)
	if w.kind == probeLiveness && outcome == probeFailure || w.kind == probeStartup {
		// Final for this container: a failed one is restarted (a new
		// worker probes the new one), a started one stays started.
		w.onHold = true
		w.inARow = 0
	}
}

// probe runs the probe (again at once when it could not run, up to
// maxProbeRetries) and records its events. It returns probeSuccess or
// probeFailure with the output, or !ok when the outcome does not count.
func (w *probeWorker) probe(ctx context.Context, pod *corev1.Pod, podIP string) (probeStatus, string, bool) {
	var (
		st     probeStatus
		output string
		err    error
	)
	for range maxProbeRetries {
		st, output, err = w.m.runner.probe(ctx, w.spec, w.c, w.id, podIP)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return probeUnknown, "", false // stopped meanwhile
	}
	m := w.m
	if err != nil {
		m.log.Debug("probe errored", "probe", w.kind, "pod", podDesc(pod), "container", w.c.Name, "err", err)
		m.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe errored and resulted in %s state: %s", w.kind, st, err)
		return probeUnknown, "", false
	}
	switch st {
	case probeSuccess:
		return probeSuccess, output, true
	case probeWarning:
		m.event(pod, corev1.EventTypeWarning, "ProbeWarning", "%s probe warning: %s", w.kind, output)
		return probeSuccess, output, true
	case probeFailure:
		m.log.Debug("probe failed", "probe", w.kind, "pod", podDesc(pod), "container", w.c.Name, "output", output)
		m.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", w.kind, output)
	}
	return probeFailure, output, true
}

// setVerdict records the worker's verdict and calls Changed when it
// changed.
func (w *probeWorker) setVerdict(v probeStatus, message string) {
	m := w.m
	m.mu.Lock()
	p := m.pods[w.uid]
	if p == nil || p.workers[workerKey{w.c.Name, w.kind}] != w {
		m.mu.Unlock()
		return // stopped meanwhile
	}
	changed := w.verdict != v
	w.verdict, w.message = v, message
	pod := podDesc(p.pod)
	m.mu.Unlock()
	if changed {
		m.log.Info("probe verdict changed", "probe", w.kind, "pod", pod, "container", w.c.Name, "verdict", v)
		if m.cfg.Changed != nil {
			m.cfg.Changed(w.uid)
		}
	}
}
