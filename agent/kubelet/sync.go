package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"labctl/agent/images"
)

// Pod workers and the sync of one pod (sync.go). A sync reads the pod's
// containers from containerd and does the next steps the spec asks for:
// volumes, the sandbox, the init containers one after another, the
// containers, restarts with CrashLoopBackOff, liveness kills; then it
// posts the status. A pod being deleted gets its containers stopped with
// its grace period, a final status and its API object deleted; a pod
// gone from the API gets everything removed.

// podWorker serializes the syncs of one pod.
type podWorker struct {
	uid     types.UID
	trigger chan struct{}
}

// syncResult says what a worker does after a sync.
type syncResult struct {
	// done: the pod is gone; the worker ends.
	done bool
	// after: sync again then (0: on the next trigger only).
	after time.Duration
}

// enqueue asks the pod's worker for a sync, starting one if needed.
func (k *Kubelet) enqueue(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ctx == nil || k.ctx.Err() != nil {
		return
	}
	w := k.workers[uid]
	if w == nil {
		w = &podWorker{uid: uid, trigger: make(chan struct{}, 1)}
		k.workers[uid] = w
		k.wg.Add(1)
		go k.runWorker(k.ctx, w)
	}
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

func (k *Kubelet) runWorker(ctx context.Context, w *podWorker) {
	defer k.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.trigger:
		case <-timer.C:
		}
		res := k.syncPod(ctx, w.uid)
		if res.done {
			k.mu.Lock()
			select {
			case <-w.trigger:
				// Something new came meanwhile: look again.
				k.mu.Unlock()
				w.trigger <- struct{}{}
				continue
			default:
			}
			delete(k.workers, w.uid)
			k.mu.Unlock()
			return
		}
		if res.after > 0 {
			timer.Reset(res.after)
		}
	}
}

// syncPod does what the pod with uid needs now.
func (k *Kubelet) syncPod(ctx context.Context, uid types.UID) syncResult {
	pod, ok := k.desired(uid)
	rec := k.record(uid)
	if !ok {
		k.mu.Lock()
		synced := k.synced
		k.mu.Unlock()
		if !synced {
			return syncResult{after: time.Second}
		}
		if err := k.teardown(ctx, uid, rec); err != nil {
			k.log.Warn("removing a pod", "uid", uid, "err", err)
			return syncResult{after: 5 * time.Second}
		}
		return syncResult{done: true}
	}
	rec.lastPod = pod
	if isStaticPod(pod) {
		k.ensureMirrorPod(ctx, pod)
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return k.syncTerminating(ctx, pod, rec)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		// Finished: nothing restarts; the network goes, the containers
		// (and their logs) stay until the pod is deleted.
		k.releaseNetwork(ctx, pod)
		return syncResult{}
	}
	return k.syncRunning(ctx, pod, rec)
}

// syncRunning brings a live pod one step closer to its spec.
func (k *Kubelet) syncRunning(ctx context.Context, pod *corev1.Pod, rec *podRecord) syncResult {
	if rec.startTime.IsZero() {
		rec.startTime = time.Now()
		if pod.Status.StartTime != nil {
			rec.startTime = pod.Status.StartTime.Time
		}
	}
	if k.cfg.volumes != nil {
		if err := k.cfg.volumes.SetUp(ctx, pod); err != nil {
			k.event(pod, corev1.EventTypeWarning, "FailedMount", "%v", err)
			k.postStatus(ctx, pod, rec, nil, nil)
			return syncResult{after: 5 * time.Second}
		}
	}
	sb, err := k.rt.loadSandbox(string(pod.UID))
	if err != nil {
		if sb, err = k.rt.RunSandbox(ctx, pod); err != nil {
			k.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			k.postStatus(ctx, pod, rec, nil, nil)
			return syncResult{after: 5 * time.Second}
		}
	}
	states, err := k.containerStates(ctx, pod)
	if err != nil {
		k.log.Warn("reading a pod's containers", "pod", podFullName(pod), "err", err)
		return syncResult{after: 2 * time.Second}
	}
	if len(states) == 0 {
		// Show the sandbox (and the pod's IP) before the first pull.
		k.postStatus(ctx, pod, rec, sb, states)
	}

	var after time.Duration
	later := func(d time.Duration) {
		if d > 0 && (after == 0 || d < after) {
			after = d
		}
	}
	changed := false
	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st, has := states[c.Name]
		if has && st.Terminated != nil && st.Terminated.ExitCode == 0 {
			continue
		}
		initDone = false
		if has && st.Terminated == nil {
			break // running (or being created): wait for it
		}
		restart := int32(0)
		if has {
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				break // the pod has failed
			}
			if d, wait := k.crashLoop(pod, rec, c, st); wait {
				later(d)
				break
			}
			restart = st.RestartCount + 1
		}
		k.startContainer(ctx, pod, rec, c, sb, true, restart)
		changed = true
		break
	}
	if initDone {
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			st, has := states[c.Name]
			switch {
			case !has:
				k.startContainer(ctx, pod, rec, c, sb, false, 0)
				changed = true
			case st.Running != nil:
				if k.cfg.probes == nil {
					continue
				}
				if msg, failed := k.cfg.probes.Failed(pod.UID, c.Name, st.ID); failed {
					k.event(pod, corev1.EventTypeNormal, "Killing", "%s", msg)
					k.stopContainer(ctx, pod, c, st.ID, sb, terminationGrace(pod))
					changed = true
					later(10 * time.Millisecond) // restart it by the policy
				}
			case st.Terminated != nil:
				if !restarts(pod.Spec.RestartPolicy, st.Terminated.ExitCode) {
					continue
				}
				if d, wait := k.crashLoop(pod, rec, c, st); wait {
					later(d)
					continue
				}
				k.startContainer(ctx, pod, rec, c, sb, false, st.RestartCount+1)
				changed = true
			}
		}
	}
	if changed {
		if states, err = k.containerStates(ctx, pod); err != nil {
			return syncResult{after: time.Second}
		}
	}
	if k.cfg.probes != nil {
		running := map[string]string{}
		for name, st := range states {
			if st.Running != nil {
				running[name] = st.ID
			}
		}
		k.cfg.probes.Sync(pod, sb.IP, running)
		// The verdicts read above came before the probe manager knew a
		// container just started: read them again, so that a container
		// without probes is started and ready in this status already,
		// not in a second write.
		k.applyProbeVerdicts(pod, states)
	}
	k.postStatus(ctx, pod, rec, sb, states)
	for _, w := range rec.waiting {
		if w.Reason == images.ErrImagePull.Error() || w.Reason == images.ErrImagePullBackOff.Error() ||
			w.Reason == ReasonCreateContainerConfig || w.Reason == "CreateContainerError" {
			later(2 * time.Second)
		}
	}
	return syncResult{after: after}
}

// restarts says whether a container that exited with code restarts.
func restarts(policy corev1.RestartPolicy, code int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// crashLoop applies upstream's restart back-off to a container that
// exited: the first restart is at once, then 10 s doubling to 5 min
// after each exit. It tells whether to wait, and how long.
func (k *Kubelet) crashLoop(pod *corev1.Pod, rec *podRecord, c *corev1.Container, st containerState) (time.Duration, bool) {
	key := string(pod.UID) + "/" + c.Name
	finished := st.Terminated.FinishedAt.Time
	if k.backoff.IsInBackOffSince(key, finished) {
		delay := k.backoff.Get(key)
		if rec.waiting[c.Name] == nil || rec.waiting[c.Name].Reason != ReasonCrashLoopBackOff {
			k.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.Name, podFullName(pod))
		}
		rec.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: crashLoopMessage(delay, c.Name, pod)}
		return time.Until(finished.Add(delay)) + 10*time.Millisecond, true
	}
	k.backoff.Next(key, finished)
	return 0, false
}

// startContainer starts run restart of the container; what keeps it
// from starting becomes its waiting reason.
func (k *Kubelet) startContainer(ctx context.Context, pod *corev1.Pod, rec *podRecord, c *corev1.Container, sb *sandbox, init bool, restart int32) {
	fail := func(reason string, err error) {
		rec.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
		k.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
	}
	opts := startOptions{Init: init, RestartCount: restart,
		Events: func(e images.Event) { k.event(pod, e.Type, e.Reason, "%s", e.Message) }}
	if k.cfg.env != nil {
		env, err := k.cfg.env(ctx, pod, c, podIPs(pod, sb, k.cfg.NodeIP.String()), []string{k.cfg.NodeIP.String()})
		if err != nil {
			fail(ReasonCreateContainerConfig, err)
			return
		}
		opts.Env = env
	}
	if k.cfg.volumes != nil {
		mounts, err := k.cfg.volumes.Mounts(pod, c)
		if err != nil {
			fail(ReasonCreateContainerConfig, err)
			return
		}
		opts.Mounts = mounts
	}
	opts.PullSecrets = k.pullSecrets(ctx, pod)
	id, err := k.rt.StartContainer(ctx, pod, c, sb, opts)
	if err != nil {
		var pe *images.PullError
		switch {
		case errors.As(err, &pe):
			// The images Manager recorded the pull's events; the kubelet
			// adds its own, as upstream's ("Error: ErrImagePull").
			rec.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: pe.Reason.Error(), Message: pe.Message}
			k.event(pod, corev1.EventTypeWarning, "Failed", "Error: %s", pe.Reason.Error())
		case id != "":
			// Created, failed to start: its StartError shows in its state.
			delete(rec.waiting, c.Name)
			k.event(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
			k.event(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		default:
			fail("CreateContainerError", err)
		}
		return
	}
	delete(rec.waiting, c.Name)
	k.event(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	k.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil && k.cfg.hooks != nil {
		if msg, err := k.cfg.hooks.PostStart(ctx, pod, c, id, sb.IP); err != nil {
			if msg == "" {
				msg = err.Error()
			}
			k.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "%s", msg)
			k.stopContainer(ctx, pod, c, id, sb, terminationGrace(pod))
		}
	}
}

// stopContainer runs the container's preStop hook and stops it, all
// within grace.
func (k *Kubelet) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, sb *sandbox, grace time.Duration) {
	start := time.Now()
	if c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && k.cfg.hooks != nil && grace > 0 {
		ip := ""
		if sb != nil {
			ip = sb.IP
		}
		if msg, err := k.cfg.hooks.PreStop(ctx, pod, c, id, ip, grace); err != nil {
			if msg == "" {
				msg = err.Error()
			}
			k.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "%s", msg)
		}
	}
	left := grace - time.Since(start)
	if left < 2*time.Second && grace > 0 {
		left = 2 * time.Second // upstream's minimum after a preStop hook
	}
	if grace <= 0 {
		left = 0
	}
	if err := k.rt.StopContainer(ctx, id, left); err != nil {
		k.log.Warn("stopping a container", "pod", podFullName(pod), "container", id, "err", err)
	}
}

// terminationGrace is the pod's grace period for stopping containers.
func terminationGrace(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// syncTerminating stops a pod being deleted, posts its final status and
// deletes its API object; the teardown follows when the object is gone.
func (k *Kubelet) syncTerminating(ctx context.Context, pod *corev1.Pod, rec *podRecord) syncResult {
	sb, _ := k.rt.loadSandbox(string(pod.UID))
	if !rec.killed {
		if k.cfg.probes != nil {
			k.cfg.probes.Remove(pod.UID)
		}
		k.killContainers(ctx, pod, sb, terminationGrace(pod))
		rec.killed = true
	}
	states, err := k.containerStates(ctx, pod)
	if err != nil {
		return syncResult{after: time.Second}
	}
	for name := range rec.waiting {
		delete(rec.waiting, name)
	}
	k.postStatus(ctx, pod, rec, sb, states)
	if isStaticPod(pod) {
		return syncResult{}
	}
	if !rec.deleted {
		err := k.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			k.log.Warn("deleting a terminated pod", "pod", podFullName(pod), "err", err)
			return syncResult{after: 2 * time.Second}
		}
		rec.deleted = true
	}
	return syncResult{after: 10 * time.Second}
}

// killContainers stops all the pod's running containers at once.
func (k *Kubelet) killContainers(ctx context.Context, pod *corev1.Pod, sb *sandbox, grace time.Duration) {
	runs, err := k.rt.podContainers(ctx, pod.UID)
	if err != nil {
		k.log.Warn("listing a pod's containers", "pod", podFullName(pod), "err", err)
		return
	}
	specs := map[string]*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		specs[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
	}
	for i := range pod.Spec.Containers {
		specs[pod.Spec.Containers[i].Name] = &pod.Spec.Containers[i]
	}
	var wg sync.WaitGroup
	for name, rs := range runs {
		last := rs[len(rs)-1]
		st, err := k.rt.ContainerState(ctx, last.ID)
		if err != nil || st.Running == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
			k.stopContainer(ctx, pod, specs[name], last.ID, sb, grace)
		}()
	}
	wg.Wait()
}

// teardown removes everything of a pod gone from the API: its
// containers, volumes, sandbox and cgroup. The logs stay (upstream's
// kubelet removes them with the containers; labctl keeps them for
// students to read).
func (k *Kubelet) teardown(ctx context.Context, uid types.UID, rec *podRecord) error {
	if k.cfg.probes != nil {
		k.cfg.probes.Remove(uid)
	}
	grace := 2 * time.Second
	if p := rec.lastPod; p != nil {
		if !rec.killed {
			sb, _ := k.rt.loadSandbox(string(uid))
			k.killContainers(ctx, p, sb, min(terminationGrace(p), 2*time.Second))
		}
		grace = 0
	}
	runs, err := k.rt.podContainers(ctx, uid)
	if err != nil {
		return err
	}
	var errs []error
	for _, rs := range runs {
		for _, c := range rs {
			errs = append(errs, k.rt.RemoveContainer(ctx, c.ID, grace))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if k.cfg.volumes != nil {
		if err := k.cfg.volumes.TearDown(uid); err != nil {
			return err
		}
	}
	if err := k.rt.KillPod(ctx, uid, 0); err != nil {
		return err
	}
	if p := rec.lastPod; p != nil && isStaticPod(p) {
		// Its manifest went: so does its mirror pod.
		k.mu.Lock()
		mirror := k.mirrors[p.Namespace+"/"+p.Name]
		k.mu.Unlock()
		if mirror != nil {
			err := k.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &mirror.UID}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("delete the mirror pod %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
	}
	k.mu.Lock()
	delete(k.records, uid)
	k.mu.Unlock()
	return nil
}

// releaseNetwork gives back a finished pod's address (once: a marker in
// the pod's directory remembers it).
func (k *Kubelet) releaseNetwork(ctx context.Context, pod *corev1.Pod) {
	sb, err := k.rt.loadSandbox(string(pod.UID))
	if err != nil || sb.HostNetwork || k.rt.net == nil {
		return
	}
	marker := filepath.Join(sb.Dir, "network-released")
	if _, err := os.Stat(marker); err == nil {
		return
	}
	if k.cfg.probes != nil {
		k.cfg.probes.Remove(pod.UID)
	}
	k.killContainers(ctx, pod, sb, 0)
	if err := k.rt.net.Teardown(ctx, sb.UID, k.rt.net.NetNSPath(sb.UID)); err != nil {
		k.log.Warn("releasing a finished pod's network", "pod", podFullName(pod), "err", err)
		return
	}
	os.WriteFile(marker, nil, 0o644)
}

// containerStates reads the state of each of the pod's containers' last
// run, with the run before's end as LastTerminated, and the probes'
// verdicts.
func (k *Kubelet) containerStates(ctx context.Context, pod *corev1.Pod) (map[string]containerState, error) {
	runs, err := k.rt.podContainers(ctx, pod.UID)
	if err != nil {
		return nil, err
	}
	out := map[string]containerState{}
	for name, rs := range runs {
		last := rs[len(rs)-1]
		st, err := k.rt.ContainerState(ctx, last.ID)
		if errdefs.IsNotFound(err) {
			k.rt.containers.forget(last.ID)
			continue
		} else if err != nil {
			return nil, err
		}
		if len(rs) > 1 {
			if prev, err := k.rt.ContainerState(ctx, rs[len(rs)-2].ID); err == nil {
				st.LastTerminated = prev.Terminated
			}
		}
		out[name] = st
	}
	k.applyProbeVerdicts(pod, out)
	return out, nil
}

// applyProbeVerdicts sets whether each running container has started and
// is ready, by its probes' verdicts (both true for a container without
// probes once the probe manager knows its pod).
func (k *Kubelet) applyProbeVerdicts(pod *corev1.Pod, states map[string]containerState) {
	if k.cfg.probes == nil {
		return
	}
	for name, st := range states {
		if st.Running == nil {
			continue
		}
		st.Started = k.cfg.probes.Started(pod.UID, name, st.ID)
		st.Ready = st.Started && k.cfg.probes.Ready(pod.UID, name, st.ID)
		states[name] = st
	}
}

// podContainers are the pod's containers in containerd by name, each
// name's runs by restart count.
func (r *podRuntime) podContainers(ctx context.Context, uid types.UID) (map[string][]runtimeContainer, error) {
	cs, loaded := r.containers.pod(uid)
	if !loaded {
		all, err := r.managedContainers(ctx, fmt.Sprintf("labels.%q==true", labelManaged))
		if err != nil {
			return nil, err
		}
		r.containers.load(all)
		cs, _ = r.containers.pod(uid)
	}
	out := map[string][]runtimeContainer{}
	for _, c := range cs {
		out[c.Name] = append(out[c.Name], c)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].RestartCount < rs[j].RestartCount })
	}
	return out, nil
}

// podIPs are the pod's addresses: its sandbox's, or the node's for
// hostNetwork pods.
func podIPs(pod *corev1.Pod, sb *sandbox, nodeIP string) []string {
	if pod.Spec.HostNetwork {
		return []string{nodeIP}
	}
	if sb != nil && sb.IP != "" {
		return []string{sb.IP}
	}
	return nil
}

// buildStatus is the pod's status from its containers' states and the
// kubelet's own knowledge (why a container waits).
func (k *Kubelet) buildStatus(pod *corev1.Pod, rec *podRecord, sb *sandbox, states map[string]containerState) corev1.PodStatus {
	ps := podState{SandboxReady: sb != nil, StartTime: rec.startTime,
		Init: map[string]containerState{}, Containers: map[string]containerState{}}
	if k.cfg.NodeIP.IsValid() {
		ps.HostIPs = []string{k.cfg.NodeIP.String()}
	}
	if sb != nil {
		ps.PodIPs = podIPs(pod, sb, k.cfg.NodeIP.String())
	}
	fill := func(cs []corev1.Container, into map[string]containerState) {
		for _, c := range cs {
			st := states[c.Name]
			if w := rec.waiting[c.Name]; w != nil && st.Running == nil {
				if st.Terminated != nil {
					st.LastTerminated = st.Terminated
					st.Terminated = nil
				}
				st.Waiting = w
			}
			into[c.Name] = st
		}
	}
	fill(pod.Spec.InitContainers, ps.Init)
	fill(pod.Spec.Containers, ps.Containers)
	st := podStatus(pod, ps, time.Now())
	if pod.DeletionTimestamp != nil && rec.killed && st.Phase != corev1.PodSucceeded && st.Phase != corev1.PodFailed {
		// Stopped for its deletion: terminal, as upstream's kubelet makes it.
		st.Phase = corev1.PodFailed
		if allSucceeded(st) {
			st.Phase = corev1.PodSucceeded
		}
	}
	return st
}

func allSucceeded(st corev1.PodStatus) bool {
	for _, c := range st.ContainerStatuses {
		if c.State.Terminated == nil || c.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return len(st.ContainerStatuses) > 0
}

// postStatus posts the pod's status when it changed (to the mirror pod
// for static pods).
func (k *Kubelet) postStatus(ctx context.Context, pod *corev1.Pod, rec *podRecord, sb *sandbox, states map[string]containerState) {
	target := pod
	if isStaticPod(pod) {
		k.mu.Lock()
		target = k.mirrors[pod.Namespace+"/"+pod.Name]
		k.mu.Unlock()
		if target == nil {
			return
		}
		// The mirror pod holds the status the conditions' times continue.
		withStatus := *pod
		withStatus.Status = target.Status
		pod = &withStatus
	}
	status := k.buildStatus(pod, rec, sb, states)
	if equality.Semantic.DeepEqual(target.Status, status) {
		rec.posted = &status
		return
	}
	for attempt := 0; attempt < 3; attempt++ {
		next := target.DeepCopy()
		next.Status = status
		updated, err := k.cfg.Client.CoreV1().Pods(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			rec.posted = &updated.Status
			k.mu.Lock()
			if isStaticPod(pod) {
				k.mirrors[pod.Namespace+"/"+pod.Name] = updated
			} else if _, ok := k.api[pod.UID]; ok {
				k.api[pod.UID] = updated
			}
			k.mu.Unlock()
			return
		}
		if !apierrors.IsConflict(err) {
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				k.log.Warn("posting a pod's status", "pod", podFullName(pod), "err", err)
			}
			return
		}
		fresh, err := k.cfg.Client.CoreV1().Pods(target.Namespace).Get(ctx, target.Name, metav1.GetOptions{})
		if err != nil || fresh.UID != target.UID {
			return
		}
		target = fresh
	}
}

// pullSecrets reads the pod's imagePullSecrets; missing ones are
// skipped, as upstream's kubelet skips them.
func (k *Kubelet) pullSecrets(ctx context.Context, pod *corev1.Pod) []images.PullSecret {
	var out []images.PullSecret
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := k.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			k.log.Warn("cannot read an image pull secret", "pod", podFullName(pod), "secret", ref.Name, "err", err)
			continue
		}
		out = append(out, images.PullSecret{Name: s.Name,
			DockerConfigJSON: s.Data[corev1.DockerConfigJsonKey], Dockercfg: s.Data[corev1.DockerConfigKey]})
	}
	return out
}
