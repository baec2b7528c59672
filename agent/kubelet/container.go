package kubelet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctrd "github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/moby/sys/signal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"labctl/agent/images"
)

// Containers (container.go): one containerd container per run of a pod's
// container, its ID derived from the pod's UID, the container's name and
// the restart count (containerID), its root filesystem a snapshot of the
// same ID, its OCI spec built from the image's config and the container's
// spec, in the sandbox's namespaces, under the pod's cgroup.

// runningContainer is a container whose output this process copies to
// its log; its waiter records the exit.
type runningContainer struct {
	task           ctrd.Task
	log            *criLog
	stdout, stderr *criStream
	done           chan struct{} // closed when the exit is recorded and the task deleted
	// fifoDir holds the FIFOs of the container's output.
	fifoDir string
	// podUID is the pod's, for the Exited callback.
	podUID types.UID
	// attach is its stdin and attached clients (attach.go); set under
	// the runtime's mu.
	attach *attachIO
}

// containerID is the ID of run restart of the pod's container name: 64
// hex digits, as CRI runtimes' IDs look.
func containerID(uid types.UID, name string, restart int32) string {
	h := sha256.Sum256([]byte(string(uid) + "/" + name + "/" + strconv.Itoa(int(restart))))
	return hex.EncodeToString(h[:])
}

// startOptions are StartContainer's details.
type startOptions struct {
	Init         bool
	RestartCount int32
	PullSecrets  []images.PullSecret
	// Events receives the image events for the pod.
	Events func(images.Event)
	// Env is the container's environment as the kubelet resolved it
	// (valueFrom, envFrom, the services' variables), NAME=value entries
	// in order; nil means the spec's plain values only.
	Env []string
	// Mounts are the container's volume mounts, beside the sandbox's
	// managed /etc files.
	Mounts []specs.Mount
}

// StartContainer makes sure of the container's image (by its pull
// policy), creates the container in the pod's sandbox and starts it. It
// returns the container's ID; its state is ContainerState's.
func (r *podRuntime) StartContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, sb *sandbox, opts startOptions) (_ string, err error) {
	res, err := r.images.Ensure(ctx, images.EnsureRequest{
		Image:       c.Image,
		PullPolicy:  images.PullPolicy(c.ImagePullPolicy),
		PullSecrets: opts.PullSecrets,
		BackOffKey:  string(pod.UID) + "_" + c.Image,
		Events:      opts.Events,
	})
	if err != nil {
		return "", err
	}
	img, err := r.client.GetImage(ctx, res.Image.Name)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", res.Image.Name, err)
	}
	ispec, err := img.Spec(ctx)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", res.Image.Name, err)
	}

	id := containerID(pod.UID, c.Name, opts.RestartCount)
	if old, err := r.client.LoadContainer(ctx, id); err == nil {
		// Left by an attempt that failed half-way (or a run not yet
		// removed): start afresh.
		if err := r.removeContainer(ctx, old, 0); err != nil {
			return "", err
		}
	}

	logPath := containerLogPath(r.cfg.LogDir, pod.Namespace, pod.Name, pod.UID, c.Name, opts.RestartCount)
	clog, err := openCRILog(logPath)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			clog.Close()
		}
	}()

	env := containerEnv(c, sb, opts.Env)
	args := expandAll(processArgs(ispec.Config.Entrypoint, ispec.Config.Cmd, c.Command, c.Args), env)
	if len(args) == 0 {
		return "", fmt.Errorf("container %s: no command given and the image has none", c.Name)
	}
	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(env),
		oci.WithHostname(sb.Hostname),
		oci.WithMounts(append(r.sandboxMounts(sb), opts.Mounts...)),
		oci.WithCgroup(filepath.Join(r.podCgroup(pod.UID), id)),
		withOOMScoreAdj(oomScoreAdj(pod, r.cfg.MemoryCapacity, currentOOMScoreAdj())),
		oci.WithAnnotations(map[string]string{shimGroupAnnotation: shimGroup(pod.UID)}),
	}
	if c.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(c.WorkingDir))
	}
	if c.TTY {
		specOpts = append(specOpts, oci.WithTTY)
	}
	specOpts = append(specOpts, namespaceOpts(sb)...)
	specOpts = append(specOpts, resourceOpts(c)...)
	specOpts = append(specOpts, securityOpts(pod, c)...)

	labels := containerLabels(pod, c, opts.Init, opts.RestartCount)
	labels[labelImageID] = res.Image.RepoDigest
	labels[labelLogPath] = logPath
	if ispec.Config.StopSignal != "" {
		labels[labelStopSignal] = ispec.Config.StopSignal
	}
	cont, err := r.client.NewContainer(ctx, id,
		ctrd.WithImage(img),
		ctrd.WithSnapshotter(r.cfg.Snapshotter),
		ctrd.WithNewSnapshot(id, img),
		ctrd.WithRuntime("io.containerd.runc.v2", nil),
		ctrd.WithNewSpec(specOpts...),
		ctrd.WithContainerLabels(labels),
	)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", c.Name, err)
	}
	r.containers.add(newRuntimeContainer(id, labels))
	keep := false // a container that failed to start stays, to show its StartError
	defer func() {
		if err != nil && !keep {
			if cont.Delete(context.WithoutCancel(ctx), ctrd.WithSnapshotCleanup) == nil {
				r.containers.forget(id)
			}
		}
	}()

	rc := &runningContainer{log: clog, stdout: clog.stream("stdout"), stderr: clog.stream("stderr"), done: make(chan struct{}), podUID: pod.UID}
	stdin := newAttachIO(rc, c.Stdin, c.StdinOnce, c.TTY)
	defer func() {
		if err != nil {
			rc.attach.close()
		}
	}()
	// The FIFOs are made here rather than by cio.NewCreator, whose Close
	// removes them: Close must leave them for the next agent to attach to.
	rc.fifoDir = filepath.Join(r.cfg.Root, "fifo", id)
	creator := func(string) (cio.IO, error) {
		if err := os.MkdirAll(rc.fifoDir, 0o700); err != nil {
			return nil, err
		}
		fc := cio.Config{Stdout: filepath.Join(rc.fifoDir, "stdout"), Terminal: c.TTY}
		if !c.TTY {
			fc.Stderr = filepath.Join(rc.fifoDir, "stderr")
		}
		if stdin != nil {
			fc.Stdin = filepath.Join(rc.fifoDir, "stdin")
		}
		return cio.NewAttach(cio.WithStreams(stdin, rc.stdout, rc.stderr))(cio.NewFIFOSet(fc, nil))
	}
	release, err := r.createSlot(ctx, pod.UID)
	if err != nil {
		return "", err
	}
	task, err := cont.NewTask(ctx, creator)
	for try := 1; err != nil && try < 3 && shimWentAway(err); try++ {
		// The group's shim exited between its start and this create,
		// which deleteTask prevents for labctl's own deletions (not for
		// a shim that was killed): a new one starts now.
		r.cfg.Logger.Info("the shim went away while creating a task; trying again", "container", id, "err", err)
		task, err = cont.NewTask(ctx, creator)
	}
	release()
	if err != nil {
		// runc reports here what keeps the process from starting (such
		// as a command not found): a StartError, as upstream shows it.
		os.RemoveAll(rc.fifoDir)
		keep = r.recordStartError(ctx, cont, "failed to create containerd task: "+err.Error())
		if keep {
			return id, fmt.Errorf("create task of container %s: %w", c.Name, err)
		}
		return "", fmt.Errorf("create task of container %s: %w", c.Name, err)
	}
	rc.task = task
	exitCh, err := task.Wait(r.ctx)
	if err != nil {
		r.deleteTask(context.WithoutCancel(ctx), pod.UID, task, ctrd.WithProcessKill)
		os.RemoveAll(rc.fifoDir)
		return "", err
	}
	if err := task.Start(ctx); err != nil {
		r.deleteTask(context.WithoutCancel(ctx), pod.UID, task, ctrd.WithProcessKill)
		os.RemoveAll(rc.fifoDir)
		keep = r.recordStartError(ctx, cont, "failed to start containerd task: "+err.Error())
		if keep {
			return id, fmt.Errorf("start container %s: %w", c.Name, err)
		}
		return "", fmt.Errorf("start container %s: %w", c.Name, err)
	}
	if _, err := cont.SetLabels(ctx, map[string]string{labelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		r.cfg.Logger.Warn("cannot record the start time", "container", id, "err", err)
	}
	r.mu.Lock()
	r.running[id] = rc
	r.mu.Unlock()
	go r.wait(cont, rc, exitCh)
	return id, nil
}

// Containers share containerd's runc shims (containerd-shim-runc-v2, the
// process that runs runc for a container, holds its output pipes and
// reaps it) through the shim's group annotation: the containers of a pod
// always share one, as upstream's CRI groups a sandbox's containers, and
// the node's pods spread over shimGroups shims rather than one each. A
// shim is a Go process of some 2.5 MiB of its own memory and wakes up
// many times a second; on these machines 100 pods took 267 MiB of PSS in
// 100 shims, against 29 MiB in four (BENCHMARKS.md, "The node"). A shim
// creates one container at a time, which bounds how many of a group's
// containers are being created at once; two shims a core keep the cores
// busy.
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// shimGroups is how many shims the node's containers spread over.
var shimGroups = uint32(max(4, 2*runtime.NumCPU()))

// shimGroup names the shim group of a pod's containers.
func shimGroup(uid types.UID) string {
	return fmt.Sprintf("labctl-shim-%d", shimGroupIndex(uid))
}

func shimGroupIndex(uid types.UID) uint32 {
	h := fnv.New32a()
	h.Write([]byte(uid))
	return h.Sum32() % shimGroups
}

// newShimSlots makes podRuntime.creating: a slot for each shim group.
func newShimSlots() []chan struct{} {
	slots := make([]chan struct{}, shimGroups)
	for i := range slots {
		slots[i] = make(chan struct{}, 1)
	}
	return slots
}

// createSlot waits until no other task of the pod's shim group is being
// created or deleted by this runtime and returns the function that lets
// the next one go. The shim would make creates wait anyway, holding the
// starts of the containers it has created behind every create queued
// before them: with 100 pods at once, no pod ran before all were
// created. Deletes take the slot too (deleteTask).
func (r *podRuntime) createSlot(ctx context.Context, uid types.UID) (func(), error) {
	if r.creating == nil {
		return func() {}, nil
	}
	slot := r.creating[shimGroupIndex(uid)]
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// deleteTask deletes a container's task in its shim group's slot
// (createSlot): deleting a group's last task ends the group's shim, which
// must not happen while a create in the group has found that shim
// running and is about to use it.
func (r *podRuntime) deleteTask(ctx context.Context, uid types.UID, task ctrd.Task, opts ...ctrd.ProcessDeleteOpts) (*ctrd.ExitStatus, error) {
	release, err := r.createSlot(ctx, uid)
	if err != nil {
		return nil, err
	}
	defer release()
	return task.Delete(ctx, opts...)
}

// shimWentAway tells whether a task's creation failed because its shim
// exited meanwhile: between containerd's start of the shim, which found
// the group's shim running, and the create that would have kept it.
func shimWentAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "ttrpc: closed") || strings.Contains(msg, "connection reset by peer") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection refused")
}

// wait waits for the container's exit and records it. When containerd
// goes away meanwhile (labctl's supervisor restarts it), it waits again
// once containerd is back; when the runtime is closed, it gives up and
// leaves the container to the next agent's Adopt.
func (r *podRuntime) wait(cont ctrd.Container, rc *runningContainer, exitCh <-chan ctrd.ExitStatus) {
	for {
		var st ctrd.ExitStatus
		select {
		case st = <-exitCh:
		case <-r.closed:
			return
		}
		if st.Error() == nil {
			r.finish(context.Background(), cont, rc, &st)
			return
		}
		for {
			select {
			case <-r.closed:
				return
			case <-time.After(time.Second):
			}
			ch, err := rc.task.Wait(r.ctx)
			if err == nil {
				exitCh = ch
				break
			}
			if errdefs.IsNotFound(err) {
				// Someone else deleted the task: nothing to record.
				r.finish(context.Background(), cont, rc, nil)
				return
			}
		}
	}
}

// labelStopSignal is the image's stop signal, when it has one;
// labelStartError the error that kept the container from starting.
const (
	labelStopSignal = "labctl.io/stop-signal"
	labelStartError = "labctl.io/start-error"
)

// recordStartError records that the container could not start, as
// upstream's StartError (exit code 128); it tells whether it could.
func (r *podRuntime) recordStartError(ctx context.Context, cont ctrd.Container, msg string) bool {
	_, err := cont.SetLabels(context.WithoutCancel(ctx), map[string]string{
		labelExitCode:   "128",
		labelStartError: msg,
		labelFinishedAt: time.Now().UTC().Format(time.RFC3339Nano),
	})
	return err == nil
}

// finish records a container's exit in its labels, deletes its task
// (which waits for its output to be copied) and closes its log.
// st nil means that the task is gone already.
func (r *podRuntime) finish(ctx context.Context, cont ctrd.Container, rc *runningContainer, st *ctrd.ExitStatus) {
	if st != nil {
		r.recordExit(ctx, cont, *st)
		if _, err := r.deleteTask(ctx, rc.podUID, rc.task); err != nil && !errdefs.IsNotFound(err) {
			r.cfg.Logger.Warn("cannot delete a task", "container", cont.ID(), "err", err)
		}
	} else if rc.task.IO() != nil {
		rc.task.IO().Close()
	}
	if rc.fifoDir != "" {
		os.RemoveAll(rc.fifoDir)
	}
	rc.stdout.flush()
	rc.stderr.flush()
	rc.log.Close()
	r.mu.Lock()
	delete(r.running, cont.ID())
	attached := rc.attach
	r.mu.Unlock()
	attached.close()
	close(rc.done)
	if r.cfg.Exited != nil && rc.podUID != "" {
		r.cfg.Exited(rc.podUID)
	}
}

// recordExit writes the exit code, the time and whether the kernel
// killed the container for memory into its labels, before its task (and
// with it its cgroup) goes.
func (r *podRuntime) recordExit(ctx context.Context, cont ctrd.Container, st ctrd.ExitStatus) {
	code, _, _ := st.Result()
	at := st.ExitTime()
	if at.IsZero() {
		at = time.Now()
	}
	labels := map[string]string{
		labelExitCode:   strconv.Itoa(int(code)),
		labelFinishedAt: at.UTC().Format(time.RFC3339Nano),
	}
	if cg, err := r.containerCgroup(ctx, cont); err == nil && cgroupOOMKilled(cg) {
		labels[labelOOMKilled] = "true"
	}
	if _, err := cont.SetLabels(ctx, labels); err != nil && !errdefs.IsNotFound(err) {
		r.cfg.Logger.Warn("cannot record a container's exit", "container", cont.ID(), "err", err)
	}
}

// containerCgroup is the cgroup path in the container's spec.
func (r *podRuntime) containerCgroup(ctx context.Context, cont ctrd.Container) (string, error) {
	s, err := cont.Spec(ctx)
	if err != nil {
		return "", err
	}
	if s.Linux == nil || s.Linux.CgroupsPath == "" {
		return "", errors.New("no cgroup path")
	}
	return s.Linux.CgroupsPath, nil
}

// StopContainer stops the container: its stop signal (SIGTERM unless
// the image names another), then SIGKILL after grace. It returns when the
// exit is recorded and the task deleted; a container already stopped (or
// gone) is left as it is.
func (r *podRuntime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	cont, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	return r.stop(ctx, cont, grace)
}

func (r *podRuntime) stop(ctx context.Context, cont ctrd.Container, grace time.Duration) error {
	id := cont.ID()
	r.mu.Lock()
	rc := r.running[id]
	r.mu.Unlock()

	var task ctrd.Task
	var done <-chan struct{}
	var exitCh <-chan ctrd.ExitStatus
	if rc != nil {
		task, done = rc.task, rc.done
	} else {
		t, err := cont.Task(ctx, nil)
		if errdefs.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		task = t
		if exitCh, err = task.Wait(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	// The labels give the pod (whose shim group the task's deletion
	// waits for) and the image's stop signal; nil if they cannot be read.
	labels, _ := cont.Labels(ctx)
	// wait waits at most d for the exit (and its recording, for ours).
	wait := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-done:
		case st := <-exitCh:
			r.recordExit(context.WithoutCancel(ctx), cont, st)
			if _, err := r.deleteTask(context.WithoutCancel(ctx), types.UID(labels[labelPodUID]), task); err != nil && !errdefs.IsNotFound(err) {
				r.cfg.Logger.Warn("cannot delete a task", "container", id, "err", err)
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
		return true
	}

	sig := syscall.SIGTERM
	if labels[labelStopSignal] != "" {
		if s, err := signal.ParseSignal(labels[labelStopSignal]); err == nil {
			sig = s
		}
	}
	// kill sends a signal; one that fails because the task is exiting
	// anyway (its shim goes) is no error once the exit is seen.
	kill := func(sig syscall.Signal, opts ...ctrd.KillOpts) error {
		err := task.Kill(ctx, sig, opts...)
		if err == nil || errdefs.IsNotFound(err) || wait(5*time.Second) {
			return nil
		}
		return fmt.Errorf("signal %d to container %s: %w", sig, id, err)
	}
	if s, err := task.Status(ctx); err == nil && s.Status == ctrd.Stopped || errdefs.IsNotFound(err) {
		// Exited already: only the recording is left.
		if wait(30 * time.Second) {
			return nil
		}
	}
	if grace > 0 {
		if err := kill(sig); err != nil {
			return err
		}
		if wait(grace) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := kill(syscall.SIGKILL, ctrd.WithKillAll); err != nil {
		return err
	}
	if !wait(30 * time.Second) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	}
	return nil
}

// RemoveContainer stops the container (with grace) and deletes it and its
// snapshot; a container already gone is no error.
func (r *podRuntime) RemoveContainer(ctx context.Context, id string, grace time.Duration) error {
	cont, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		r.containers.forget(id)
		return nil
	} else if err != nil {
		return err
	}
	return r.removeContainer(ctx, cont, grace)
}

func (r *podRuntime) removeContainer(ctx context.Context, cont ctrd.Container, grace time.Duration) error {
	if err := r.stop(ctx, cont, grace); err != nil {
		return err
	}
	if err := cont.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", cont.ID(), err)
	}
	r.containers.forget(cont.ID())
	return nil
}

// ContainerState reads the container's state for podStatus: running with
// its start time, or terminated with the exit code, the reason (OOMKilled,
// Completed or Error) and the times.
func (r *podRuntime) ContainerState(ctx context.Context, id string) (containerState, error) {
	cont, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return containerState{}, err
	}
	info, err := cont.Info(ctx, ctrd.WithoutRefreshedMetadata)
	if err != nil {
		return containerState{}, err
	}
	labels := info.Labels
	n, _ := strconv.Atoi(labels[labelRestartCount])
	st := containerState{ID: id, ImageID: labels[labelImageID], RestartCount: int32(n)}
	startedAt := labelTime(labels[labelStartedAt], info.CreatedAt)

	s, err := r.taskStatus(ctx, id)
	if errdefs.IsNotFound(err) {
		// The task may have exited and its exit been recorded in the
		// labels since they were read: read them again.
		if fresh, ierr := cont.Info(ctx); ierr == nil {
			info, labels = fresh, fresh.Labels
		}
	}
	switch {
	case err == nil:
		switch s.Status {
		case ctrd.Running, ctrd.Paused, ctrd.Pausing:
			st.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}
			// No probes yet: running means ready and started.
			st.Ready, st.Started = true, true
		case ctrd.Stopped:
			oom := false
			if cg, err := r.containerCgroup(ctx, cont); err == nil {
				oom = cgroupOOMKilled(cg)
			}
			// The cgroup goes with the task, after the exit is recorded
			// in the labels: read them after it.
			if l, err := cont.Labels(ctx); !oom && err == nil {
				oom = l[labelOOMKilled] == "true"
			}
			st.Terminated = terminated(int32(s.ExitStatus), oom, startedAt, s.ExitTime)
		default: // created, not yet started
			st.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
		}
	case errdefs.IsNotFound(err):
		code, cerr := strconv.Atoi(labels[labelExitCode])
		if cerr != nil {
			// Created, never started (or its exit was never recorded).
			st.Waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
			break
		}
		st.Terminated = terminated(int32(code), labels[labelOOMKilled] == "true", startedAt,
			labelTime(labels[labelFinishedAt], info.UpdatedAt))
		if msg, ok := labels[labelStartError]; ok {
			st.Terminated.Reason, st.Terminated.Message = ReasonStartError, msg
			st.Terminated.StartedAt = metav1.NewTime(time.Unix(0, 0).UTC())
		}
	default:
		return containerState{}, err
	}
	if st.Terminated != nil {
		st.Terminated.ContainerID = "containerd://" + id
	}
	return st, nil
}

// taskStatus is the status of the container's task, in one call to
// containerd (the client's Task and Status make one each);
// errdefs.ErrNotFound when it has no task.
func (r *podRuntime) taskStatus(ctx context.Context, id string) (ctrd.Status, error) {
	resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if err != nil {
		return ctrd.Status{}, errdefs.FromGRPC(err)
	}
	p := resp.GetProcess()
	return ctrd.Status{
		Status:     ctrd.ProcessStatus(strings.ToLower(p.GetStatus().String())),
		ExitStatus: p.GetExitStatus(),
		ExitTime:   p.GetExitedAt().AsTime(),
	}, nil
}

func terminated(code int32, oom bool, started, finished time.Time) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:   code,
		Reason:     terminatedReason(code, oom),
		StartedAt:  metav1.NewTime(started),
		FinishedAt: metav1.NewTime(finished),
	}
}

func labelTime(s string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return fallback
}

// processArgs is the container's command line by upstream's rules: the
// container's command replaces the image's ENTRYPOINT (and then its CMD
// is dropped), its args replace the image's CMD.
func processArgs(entrypoint, cmd, command, args []string) []string {
	if len(command) > 0 {
		return append(append([]string(nil), command...), args...)
	}
	if len(args) > 0 {
		return append(append([]string(nil), entrypoint...), args...)
	}
	return append(append([]string(nil), entrypoint...), cmd...)
}

// containerEnv is the container's environment beyond the image's:
// HOSTNAME (as containerd's CRI sets it), then resolved (the kubelet's
// resolution of valueFrom, envFrom and the services' variables) when it
// is not nil, else the spec's env with plain values, each expanded
// ($(VAR)) against the ones before it.
func containerEnv(c *corev1.Container, sb *sandbox, resolved []string) []string {
	out := []string{"HOSTNAME=" + sb.Hostname}
	if resolved != nil {
		return append(out, resolved...)
	}
	vals := map[string]string{"HOSTNAME": sb.Hostname}
	add := func(k, v string) {
		vals[k] = v
		out = append(out, k+"="+v)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue
		}
		add(e.Name, expand(e.Value, vals))
	}
	return out
}

// expandAll expands $(VAR) in each arg against env (NAME=value entries).
func expandAll(args, env []string) []string {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expand(a, vals)
	}
	return out
}

// expand is upstream's $(VAR) expansion: a defined $(VAR) is replaced,
// an undefined one left as it is, $$ gives $.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// sandboxMounts bind-mounts the pod's managed files.
func (r *podRuntime) sandboxMounts(sb *sandbox) []specs.Mount {
	var out []specs.Mount
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		out = append(out, specs.Mount{
			Destination: "/etc/" + f, Type: "bind", Source: sb.etcFile(f),
			Options: []string{"rbind", "rprivate", "rw"},
		})
	}
	return out
}

// namespaceOpts put the container in the sandbox's namespaces.
func namespaceOpts(sb *sandbox) []oci.SpecOpts {
	join := func(t specs.LinuxNamespaceType, path string) oci.SpecOpts {
		if path == "" {
			return oci.WithHostNamespace(t)
		}
		return oci.WithLinuxNamespace(specs.LinuxNamespace{Type: t, Path: path})
	}
	return []oci.SpecOpts{
		join(specs.NetworkNamespace, sb.NetNS),
		join(specs.IPCNamespace, sb.IPC),
		join(specs.UTSNamespace, sb.UTS),
	}
}

// resourceOpts turn the container's resources into cgroup limits as
// upstream's kubelet does: CPU shares from the request (2 without one),
// a CFS quota from the limit (100 ms periods), the memory limit.
func resourceOpts(c *corev1.Container) []oci.SpecOpts {
	var out []oci.SpecOpts
	req, lim := c.Resources.Requests, c.Resources.Limits
	cpuReq, hasReq := req[corev1.ResourceCPU]
	cpuLim, hasLim := lim[corev1.ResourceCPU]
	if !hasReq && hasLim {
		cpuReq, hasReq = cpuLim, true
	}
	var milli int64
	if hasReq {
		milli = cpuReq.MilliValue()
	}
	out = append(out, oci.WithCPUShares(cpuShares(milli)))
	if hasLim {
		out = append(out, oci.WithCPUCFS(cpuQuota(cpuLim.MilliValue()), cpuPeriod))
	}
	if m, ok := lim[corev1.ResourceMemory]; ok && m.Value() > 0 {
		out = append(out, oci.WithMemoryLimit(uint64(m.Value())))
	}
	return out
}

const cpuPeriod = 100000 // µs

// cpuShares is upstream's MilliCPUToShares.
func cpuShares(milli int64) uint64 {
	if milli == 0 {
		return 2
	}
	s := milli * 1024 / 1000
	if s < 2 {
		s = 2
	}
	if s > 262144 {
		s = 262144
	}
	return uint64(s)
}

// cpuQuota is upstream's MilliCPUToQuota.
func cpuQuota(milli int64) int64 {
	if milli == 0 {
		return 0
	}
	q := milli * cpuPeriod / 1000
	if q < 1000 {
		q = 1000
	}
	return q
}

// securityOpts apply the basics of the security contexts: runAsUser and
// runAsGroup, allowPrivilegeEscalation (no_new_privs when false, as
// upstream: it is allowed by default), readOnlyRootFilesystem and added
// or dropped capabilities.
func securityOpts(pod *corev1.Pod, c *corev1.Container) []oci.SpecOpts {
	var out []oci.SpecOpts
	var uid, gid *int64
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	sc := c.SecurityContext
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	switch {
	case uid != nil && gid != nil:
		out = append(out, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		out = append(out, oci.WithUserID(uint32(*uid)))
	}
	if sc == nil {
		return out
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		out = append(out, oci.WithNoNewPrivileges)
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		out = append(out, oci.WithRootFSReadonly())
	}
	if caps := sc.Capabilities; caps != nil {
		capNames := func(cs []corev1.Capability) []string {
			var out []string
			for _, c := range cs {
				n := strings.ToUpper(string(c))
				if n == "ALL" {
					out = append(out, n)
					continue
				}
				if !strings.HasPrefix(n, "CAP_") {
					n = "CAP_" + n
				}
				out = append(out, n)
			}
			return out
		}
		if len(caps.Add) > 0 {
			out = append(out, oci.WithAddedCapabilities(capNames(caps.Add)))
		}
		if len(caps.Drop) > 0 {
			out = append(out, oci.WithDroppedCapabilities(capNames(caps.Drop)))
		}
	}
	return out
}

// withOOMScoreAdj sets the process's oom_score_adj.
func withOOMScoreAdj(v int) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.OOMScoreAdj = &v
		return nil
	}
}

// currentOOMScoreAdj is this process's oom_score_adj (0 if unreadable).
func currentOOMScoreAdj() int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return v
}

// oomScoreAdj is upstream's GetContainerOOMScoreAdjust (Guaranteed -997,
// BestEffort 1000, Burstable by its memory request), raised to floor:
// without CAP_SYS_RESOURCE a container cannot go below its parent's
// value (runc then fails with "can't get final child's PID from pipe").
func oomScoreAdj(pod *corev1.Pod, memCapacity int64, floor int) int {
	var v int
	switch podQOS(pod) {
	case corev1.PodQOSGuaranteed:
		v = -997
	case corev1.PodQOSBestEffort:
		v = 1000
	default:
		var req int64
		for _, c := range pod.Spec.Containers {
			if m, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
				req += m.Value()
			} else if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				req += m.Value()
			}
		}
		v = 999
		if memCapacity > 0 {
			v = int(1000 - 1000*req/memCapacity)
		}
		if v < 3 {
			v = 3
		}
		if v >= 1000 {
			v = 999
		}
	}
	return max(v, floor)
}

// podQOS is the pod's QoS class: the one the API server gave it, or
// upstream's rule over its containers' requests and limits.
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			r, hasReq := c.Resources.Requests[res]
			l, hasLim := c.Resources.Limits[res]
			if hasReq && !r.IsZero() || hasLim && !l.IsZero() {
				any = true
			}
			if !hasLim || hasReq && r.Cmp(l) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}
