package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// controllerScenario measures the controllers and the scheduler as
// BENCHMARKS.md reports them: 100 Node objects whose Leases are renewed
// every 10 s as kubelets renew them (no pods run), a Deployment of 1,000
// replicas from creation until every pod is bound, then the server's CPU
// and memory while it holds those 1,000 pods and does nothing else.
func controllerScenario(ctx context.Context, cfg *rest.Config, pid int, cpuProfile string) error {
	cs, err := client(cfg, "application/vnd.kubernetes.protobuf", 64)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base, err := idleCPU(pid, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("idle, empty cluster: server CPU %.2f%% of a core over 30s\n", base)
	const nodes = 100
	if err := registerNodes(ctx, cs, nodes); err != nil {
		return err
	}
	fmt.Printf("registered %d nodes with Lease heartbeats every 10 s\n", nodes)

	// Fan-out: create to the last pod bound.
	const replicas = 1000
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=fan"})
	if err != nil {
		return err
	}
	defer w.Stop()
	labels := map[string]string{"app": "fan"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fan"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}}}}},
		},
	}
	start := time.Now()
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	created, bound := map[string]time.Time{}, map[string]bool{}
	var waits latencies // each pod's creation (as the watch saw it) to its binding
	var firstBound time.Duration
	deadline := time.After(5 * time.Minute)
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	for len(bound) < replicas {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("the pod watch ended after %d of %d pods bound", len(bound), replicas)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			if _, seen := created[p.Name]; !seen {
				created[p.Name] = time.Now()
			}
			if p.Spec.NodeName != "" && !bound[p.Name] {
				bound[p.Name] = true
				waits = append(waits, time.Since(created[p.Name]))
				if len(bound) == 1 {
					firstBound = time.Since(start)
				}
			}
		case <-progress.C:
			fmt.Fprintf(os.Stderr, "  %v: %d pods created, %d bound\n", time.Since(start).Round(time.Second), len(created), len(bound))
		case <-deadline:
			return fmt.Errorf("after 5 minutes %d of %d pods are bound", len(bound), replicas)
		}
	}
	total := time.Since(start)
	fmt.Printf("Deployment of %d replicas on %d nodes, create to all pods bound: %v (first bound after %v; %.0f pods/s overall)\n",
		replicas, nodes, total.Round(time.Millisecond), firstBound.Round(time.Millisecond), float64(replicas)/total.Seconds())
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	fmt.Printf("scheduling latency, pod created to bound: p50 %v p99 %v\n", waits.p(50).Round(time.Millisecond), waits.p(99).Round(time.Millisecond))

	// Idle with the 1,000 pods, their ReplicaSet and Deployment, and the
	// nodes' heartbeats.
	time.Sleep(20 * time.Second)
	const window = 60 * time.Second
	before, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		// The server's own profile of the window, from /debug/pprof.
		raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(int(window.Seconds()))).Timeout(window + 30*time.Second).DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
		if err := os.WriteFile(cpuProfile, raw, 0o644); err != nil {
			return err
		}
		fmt.Printf("the server's CPU profile of the idle window: go tool pprof %s\n", cpuProfile)
	} else {
		time.Sleep(window)
	}
	after, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	share := float64(after-before) / ticksPerSecond / window.Seconds() * 100
	fmt.Printf("idle with %d pods and %d nodes heartbeating: server CPU %.2f%% of a core over %v; RSS %s\n",
		replicas, nodes, share, window, rss(pid))
	return nil
}

const ticksPerSecond = 100 // USER_HZ on Linux

// idleCPU is the share of a core process pid uses over window, in percent.
func idleCPU(pid int, window time.Duration) (float64, error) {
	before, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(window)
	after, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / ticksPerSecond / window.Seconds() * 100, nil
}

// registerNodes creates n Ready nodes and renews their Leases until ctx
// ends.
func registerNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("node-%03d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": fmt.Sprintf("zone-%d", i%3)}}}
		created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		all := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"), corev1.ResourcePods: resource.MustParse("110")}
		created.Status = corev1.NodeStatus{Capacity: all, Allocatable: all, Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("node-%03d", i)
			leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
			now := metav1.NewMicroTime(time.Now())
			l, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now}}, metav1.CreateOptions{})
			if err != nil {
				return
			}
			// Spread the renewals over the period, as kubelets' are.
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					now := metav1.NewMicroTime(time.Now())
					l.Spec.RenewTime = &now
					if next, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err == nil {
						l = next
					}
				}
			}
		}()
	}
	go func() { <-ctx.Done(); wg.Wait() }()
	return nil
}

// cpuTicks is the user plus system CPU time of process pid, in clock
// ticks (/proc/<pid>/stat fields 14 and 15).
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its end.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime, err
}
