package controllers_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"labctl/internal/apitest"
	"labctl/server/scheduler"
)

// schedBenchNodes is 100 nodes in 5 zones, 32 CPUs and 64 GiB each.
func schedBenchNodes() []*corev1.Node {
	var out []*corev1.Node
	for i := range 100 {
		name := fmt.Sprintf("node-%03d", i)
		out = append(out, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				corev1.LabelHostname: name, corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%5)}},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")}},
		})
	}
	return out
}

// schedBenchPods is 1000 pods of 10 apps, interleaved, each spread over zones
// (maxSkew 1, DoNotSchedule) and hostnames (maxSkew 2, ScheduleAnyway):
// app-0 with required anti-affinity to itself by hostname (one to a node),
// apps 1-4 preferring the zones of app-0, apps 5-9 preferring not to share
// a node with their own kind.
func schedBenchPods() []*corev1.Pod {
	term := func(app, key string) corev1.PodAffinityTerm {
		return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
	}
	var out []*corev1.Pod
	for i := range 1000 {
		app := fmt.Sprintf("app-%d", i%10)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%03d", app, i/10), Namespace: "default", Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}}}},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
					{MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
					{MaxSkew: 2, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
				},
			},
		}
		switch n := i % 10; {
		case n == 0:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term(app, corev1.LabelHostname)}}}
		case n < 5:
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
				{Weight: 50, PodAffinityTerm: term("app-0", corev1.LabelTopologyZone)}}}}
		default:
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
				{Weight: 100, PodAffinityTerm: term(app, corev1.LabelHostname)}}}}
		}
		out = append(out, p)
	}
	return out
}

// BenchmarkSchedule1000PodsOn100Nodes measures the scheduler end to end:
// an API server over the in-memory store holds 100 nodes and 1000 pending
// pods with spreading and affinity rules; the clock runs from the
// scheduler's start (informer sync included) until the API has all 1000
// bound. The scheduler gets a client of its own, without client-side rate
// limiting, as it has under controllers.Run (where its limit is 2,000
// requests a second).
func BenchmarkSchedule1000PodsOn100Nodes(b *testing.B) {
	// Quiet: events still queued when an iteration's API server stops
	// are logged as lost.
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	defer func() {
		time.Sleep(200 * time.Millisecond) // the last event writers give up
		klog.ClearLogger()
	}()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		cfg, stop := schedBenchAPI(b)
		cs := kubernetes.NewForConfigOrDie(cfg)
		schedBenchCreate(b, cs)
		b.StartTimer()
		d := schedBenchSchedule(b, cfg)
		b.StopTimer()
		total += d
		stop()
	}
	b.ReportMetric(float64(1000*b.N)/total.Seconds(), "pods/s")
}

// The benchmark's pods, scheduled through the API, end up where their
// rules say: app-0 one to a node, each app 20 to a zone.
func TestSchedulerBenchmarkWorkload(t *testing.T) {
	cfg, stop := schedBenchAPI(t)
	defer stop()
	cs := kubernetes.NewForConfigOrDie(cfg)
	schedBenchCreate(t, cs)
	d := schedBenchSchedule(t, cfg)
	t.Logf("1000 pods on 100 nodes in %v: %.0f pods/s", d, 1000/d.Seconds())
	pods, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{}
	for _, n := range schedBenchNodes() {
		zones[n.Name] = n.Labels[corev1.LabelTopologyZone]
	}
	perZone := map[string]int{}
	app0 := map[string]string{}
	for _, p := range pods.Items {
		app := p.Labels["app"]
		perZone[app+"/"+zones[p.Spec.NodeName]]++
		if app == "app-0" {
			if other, ok := app0[p.Spec.NodeName]; ok {
				t.Errorf("%s and %s both on %s", p.Name, other, p.Spec.NodeName)
			}
			app0[p.Spec.NodeName] = p.Name
		}
	}
	for k, n := range perZone {
		if n != 20 {
			t.Errorf("%s: %d pods, want 20", k, n)
		}
	}
}

// schedBenchAPI serves the API over an in-memory store.
func schedBenchAPI(tb testing.TB) (*rest.Config, func()) {
	cfg, stop := apitest.Serve(tb)
	cfg.QPS = -1
	defaultServiceAccount(tb, cfg)
	return cfg, stop
}

// schedBenchCreate creates the nodes and pods, 16 at a time.
func schedBenchCreate(tb testing.TB, cs kubernetes.Interface) {
	ctx := context.Background()
	for _, n := range schedBenchNodes() {
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
	pods := schedBenchPods()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods))
	work := make(chan *corev1.Pod)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, p := range pods {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// schedBenchSchedule runs a scheduler until the API has every pod bound, and
// returns how long that took.
func schedBenchSchedule(tb testing.TB, cfg *rest.Config) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(cfg)
	list, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Stop()

	start := time.Now()
	f := informers.NewSharedInformerFactory(cs, 0)
	events := record.NewBroadcaster(record.WithContext(ctx))
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer events.Shutdown()
	s := scheduler.New(cs, f, nil, events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: scheduler.Name}), nil)
	f.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() { cancel(); <-done; f.Shutdown() }()

	bound := map[string]bool{}
	timeout := time.After(2 * time.Minute)
	for len(bound) < len(list.Items) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				tb.Fatal("watch closed")
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified && p.Spec.NodeName != "" {
				bound[p.Name] = true
			}
		case <-timeout:
			tb.Fatalf("%d of %d pods bound after 2 minutes", len(bound), len(list.Items))
		}
	}
	return time.Since(start)
}

// BenchmarkScheduleLatency measures each pod's wait: the scheduler runs
// over the 100 nodes while the benchmark's 1,000 pods (the same rules)
// are created one after another at about 200 a second; the latency is
// from a create's answer to the watch showing the pod bound.
func BenchmarkScheduleLatency(b *testing.B) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	defer func() {
		time.Sleep(200 * time.Millisecond)
		klog.ClearLogger()
	}()
	var all []time.Duration
	for range b.N {
		b.StopTimer()
		cfg, stop := schedBenchAPI(b)
		cs := kubernetes.NewForConfigOrDie(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		for _, n := range schedBenchNodes() {
			if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		f := informers.NewSharedInformerFactory(cs, 0)
		events := record.NewBroadcaster(record.WithContext(ctx))
		events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
		s := scheduler.New(cs, f, nil, events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: scheduler.Name}), nil)
		f.Start(ctx.Done())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Run(ctx)
		}()
		w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		created := map[string]time.Time{}
		b.StartTimer()
		go func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for _, p := range schedBenchPods() {
				<-tick.C
				if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				mu.Lock()
				created[p.Name] = time.Now()
				mu.Unlock()
			}
		}()
		bound := map[string]bool{}
		timeout := time.After(2 * time.Minute)
		for len(bound) < 1000 {
			select {
			case ev := <-w.ResultChan():
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" && !bound[p.Name] {
					bound[p.Name] = true
					mu.Lock()
					at, ok := created[p.Name]
					mu.Unlock()
					if ok { // else the create's answer is still on its way: a wait near zero
						all = append(all, time.Since(at))
					}
				}
			case <-timeout:
				b.Fatalf("%d of 1000 pods bound after 2 minutes", len(bound))
			}
		}
		b.StopTimer()
		w.Stop()
		cancel()
		<-done
		f.Shutdown()
		events.Shutdown()
		stop()
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
