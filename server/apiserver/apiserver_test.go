package apiserver_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"labctl/datastore"
	"labctl/server/apiserver"
)

// serve serves the API with cfg on a test HTTP server (authentication is
// server.Run's business, not this package's) until the test ends; cfg's
// Store defaults to a memory store, its ServiceCIDR to 10.43.0.0/16.
func serve(t testing.TB, cfg apiserver.Config) (*apiserver.Server, *httptest.Server) {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = memStore(t)
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = netip.MustParsePrefix("10.43.0.0/16")
	}
	ctx, cancel := context.WithCancel(context.Background())
	api, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		api.Wait()
	})
	return api, srv
}

// restConfig is a client configuration for srv, without client-side
// rate limits.
func restConfig(srv *httptest.Server) *rest.Config {
	return &rest.Config{Host: srv.URL, QPS: -1}
}

// start serves the API over ds with the kubernetes Service in place and
// returns a client config.
func start(t testing.TB, ds datastore.Interface) *rest.Config {
	t.Helper()
	api, srv := serve(t, apiserver.Config{Store: ds})
	if err := api.EnsureKubernetesService(context.Background(), netip.MustParseAddr("192.0.2.10"), 6443); err != nil {
		t.Fatal(err)
	}
	return restConfig(srv)
}

func memStore(t testing.TB) datastore.Interface {
	ds := datastore.NewMemory(datastore.Config{WatchProgressInterval: 100 * time.Millisecond})
	t.Cleanup(func() { ds.Close() })
	return ds
}

func clients(t testing.TB, cfg *rest.Config) map[string]kubernetes.Interface {
	out := map[string]kubernetes.Interface{}
	for name, ct := range map[string]string{"json": "application/json", "protobuf": "application/vnd.kubernetes.protobuf"} {
		c := rest.CopyConfig(cfg)
		c.ContentType = ct
		c.AcceptContentTypes = ct + ",application/json"
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = cs
	}
	return out
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
}

func TestTypedClients(t *testing.T) {
	cfg := start(t, memStore(t))
	for name, cs := range clients(t, cfg) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := "ns-" + name
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			d, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment("web"), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.UID == "" || d.ResourceVersion == "" || d.CreationTimestamp.IsZero() || d.Namespace != ns {
				t.Fatalf("created deployment lacks server metadata: %+v", d.ObjectMeta)
			}
			if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment("web"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
				t.Fatalf("second create: %v", err)
			}
			d.Spec.Replicas = ptr.To[int32](3)
			up, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
				t.Fatalf("update with a stale resourceVersion: %v", err)
			}
			sc, err := cs.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
			if err != nil || sc.Spec.Replicas != 3 || sc.Status.Selector != "app=web" {
				t.Fatalf("scale: %+v %v", sc, err)
			}
			sc.Spec.Replicas = 5
			if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			p, err := cs.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"tier":"front"}}}`), metav1.PatchOptions{})
			if err != nil || p.Labels["tier"] != "front" || *p.Spec.Replicas != 5 || p.ResourceVersion == up.ResourceVersion {
				t.Fatalf("patch: %v", err)
			}
			list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "tier=front"})
			if err != nil || len(list.Items) != 1 || list.ResourceVersion == "" {
				t.Fatalf("list: %v", err)
			}
			if _, err := cs.CoreV1().ConfigMaps("no-such-ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("create in a missing namespace: %v", err)
			}
			if err := cs.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("get after delete: %v", err)
			}
		})
	}
}

func TestDynamicClientAndDryRun(t *testing.T) {
	cfg := start(t, memStore(t))
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"generateName": "gen-"},
		"data":     map[string]any{"k": "v"},
	}}
	dry, err := dc.Resource(gvr).Namespace("default").Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil || !strings.HasPrefix(dry.GetName(), "gen-") {
		t.Fatalf("dry-run create: %v", err)
	}
	if list, _ := dc.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Fatalf("a dry run persisted %d objects", len(list.Items))
	}
	got, err := dc.Resource(gvr).Namespace("default").Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Strict field validation refuses an unknown field; the default warns.
	bad := got.DeepCopy()
	bad.Object["bogus"] = true
	if _, err := dc.Resource(gvr).Namespace("default").Update(ctx, bad, metav1.UpdateOptions{FieldValidation: "Strict"}); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("strict update with an unknown field: %v", err)
	}
	if _, err := dc.Resource(gvr).Namespace("default").Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("default (warn) update with an unknown field: %v", err)
	}
}

func TestInformer(t *testing.T) {
	cfg := start(t, memStore(t))
	cs := clients(t, cfg)["protobuf"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan string, 10)
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().ConfigMaps().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { events <- "add " + obj.(*corev1.ConfigMap).Name },
		UpdateFunc: func(_, obj any) { events <- "update " + obj.(*corev1.ConfigMap).Name },
		DeleteFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				events <- "delete " + cm.Name
			}
		},
	})
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
	cs.CoreV1().ConfigMaps("default").Delete(ctx, "before", metav1.DeleteOptions{})
	want := []string{"add before", "add after", "delete before"}
	for _, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("informer event %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no informer event, want %q", w)
		}
	}
}

func TestWatchAcrossRestartAndCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ds, err := datastore.OpenBolt(path, datastore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cs := clients(t, start(t, ds))["json"]
	ctx := context.Background()
	first, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "one"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds.Close()

	// A new server on the same file: a watch from the old resourceVersion
	// resumes with what happened after it.
	ds, err = datastore.OpenBolt(path, datastore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	cs = clients(t, start(t, ds))["protobuf"]
	second, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "two"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "two" {
			t.Fatalf("resumed watch: %v %v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("resumed watch delivered nothing")
	}
	w.Stop()

	// After compaction the old resourceVersion is gone: 410.
	cur, _, _ := ds.Revisions(ctx)
	if err := ds.Compact(ctx, cur); err != nil {
		t.Fatal(err)
	}
	w, err = cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err == nil {
		ev := <-w.ResultChan()
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != 410 {
			t.Fatalf("watch from a compacted resourceVersion: %v %v", ev.Type, ev.Object)
		}
	} else if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from a compacted resourceVersion: %v", err)
	}
	_ = second
}

func TestWatchList(t *testing.T) {
	cfg := start(t, memStore(t))
	cs := clients(t, cfg)["json"]
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
	}
	w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{
		SendInitialEvents:    ptr.To(true),
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
		AllowWatchBookmarks:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for ev := range w.ResultChan() {
		if ev.Type == watch.Bookmark {
			if ev.Object.(*corev1.ConfigMap).Annotations[metav1.InitialEventsAnnotationKey] != "true" {
				t.Fatal("bookmark without the initial-events-end annotation")
			}
			break
		}
		got = append(got, string(ev.Type)+" "+ev.Object.(*corev1.ConfigMap).Name)
	}
	if strings.Join(got, ",") != "ADDED a,ADDED b" {
		t.Fatalf("initial events: %v", got)
	}
	// Without the bookmark opt-in, WatchList is refused as invalid (422),
	// so that a client falls back to list and watch.
	_, err = cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{SendInitialEvents: ptr.To(true)})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("sendInitialEvents without its options: %v", err)
	}
}

func TestNamespaceLifecycle(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(nss.Items) != 4 {
		t.Fatalf("system namespaces: %v", err)
	}
	cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}, metav1.CreateOptions{})
	cs.CoreV1().ConfigMaps("gone").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "inside"}}, metav1.CreateOptions{})
	if err := cs.CoreV1().Namespaces().Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "gone", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace still there: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cs.CoreV1().ConfigMaps("gone").Get(ctx, "inside", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("object in the deleted namespace: %v", err)
	}
}

func TestServiceAllocation(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	k, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || k.Spec.ClusterIP != "10.43.0.1" || k.Spec.Ports[0].Port != 443 {
		t.Fatalf("kubernetes service: %+v %v", k, err)
	}
	ep, err := cs.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || ep.Subsets[0].Addresses[0].IP != "192.0.2.10" || ep.Subsets[0].Ports[0].Port != 6443 {
		t.Fatalf("kubernetes endpoints: %+v %v", ep, err)
	}
	svc := func(name string, typ corev1.ServiceType, ip string, nodePort int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: ip, Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, NodePort: nodePort}}},
		}
	}
	a, err := cs.CoreV1().Services("default").Create(ctx, svc("a", corev1.ServiceTypeClusterIP, "", 0), metav1.CreateOptions{})
	if err != nil || a.Spec.ClusterIP == "" || a.Spec.ClusterIP == "10.43.0.1" || a.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("cluster IP service: %+v %v", a.Spec, err)
	}
	b, err := cs.CoreV1().Services("default").Create(ctx, svc("b", corev1.ServiceTypeNodePort, "", 0), metav1.CreateOptions{})
	if err != nil || b.Spec.ClusterIP == a.Spec.ClusterIP || b.Spec.Ports[0].NodePort < 30000 {
		t.Fatalf("node port service: %+v %v", b.Spec, err)
	}
	_, err = cs.CoreV1().Services("default").Create(ctx, svc("c", corev1.ServiceTypeNodePort, a.Spec.ClusterIP, b.Spec.Ports[0].NodePort), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "provided IP is already allocated") || !strings.Contains(err.Error(), "provided port is already allocated") {
		t.Fatalf("taken IP and port: %v", err)
	}
	h, err := cs.CoreV1().Services("default").Create(ctx, svc("h", corev1.ServiceTypeClusterIP, "None", 0), metav1.CreateOptions{})
	if err != nil || h.Spec.ClusterIP != "None" {
		t.Fatalf("headless service: %+v %v", h.Spec, err)
	}
	// Turning a NodePort service into a ClusterIP one gives its port back.
	b.Spec.Type = corev1.ServiceTypeClusterIP
	b.Spec.Ports[0].NodePort = 0
	if b, err = cs.CoreV1().Services("default").Update(ctx, b, metav1.UpdateOptions{}); err != nil || b.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("to ClusterIP: %v", err)
	}
}

func TestBindingAndEviction(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["protobuf"]
	ctx := context.Background()
	createServiceAccount(t, cs, "default", "default") // the service account controller's work
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"app": "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Target: corev1.ObjectReference{Kind: "Node", Name: "node1"}}
	if err := cs.CoreV1().Pods("default").Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := cs.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{})
	if got.Spec.NodeName != "node1" {
		t.Fatalf("bound pod on %q", got.Spec.NodeName)
	}
	if err := cs.CoreV1().Pods("default").Bind(ctx, bind, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second binding: %v", err)
	}
	// Running, and covered by a budget that allows no disruption: 429.
	got.Status.Phase = corev1.PodRunning
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "b"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}}
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, ev); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction against the budget: %v", err)
	}
	// The budget allows one now.
	b, _ := cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "b", metav1.GetOptions{})
	b.Status.ObservedGeneration, b.Status.DisruptionsAllowed = b.Generation, 1
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, ev); err != nil {
		t.Fatalf("allowed eviction: %v", err)
	}
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod: %v", err)
	}

	// A Ready pod evicted with its grace period stays, deleting, marked
	// as the target of a disruption; the budget's one disruption is taken.
	b, _ = cs.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "b", metav1.GetOptions{})
	b.Status.DisruptionsAllowed, b.Status.DesiredHealthy, b.Status.CurrentHealthy = 1, 1, 1
	if _, err := cs.PolicyV1().PodDisruptionBudgets("default").UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(name string, ready corev1.ConditionStatus) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "x"}},
			Spec: corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		p, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	running("q", corev1.ConditionTrue)
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "default"}}); err != nil {
		t.Fatalf("eviction of a ready pod: %v", err)
	}
	q, err := cs.CoreV1().Pods("default").Get(ctx, "q", metav1.GetOptions{})
	if err != nil || q.DeletionTimestamp == nil {
		t.Fatalf("evicted pod with a grace period: %v %v", q, err)
	}
	var marked bool
	for _, c := range q.Status.Conditions {
		marked = marked || (c.Type == corev1.DisruptionTarget && c.Reason == "EvictionByEvictionAPI" && c.Status == corev1.ConditionTrue)
	}
	if !marked {
		t.Errorf("evicted pod's conditions %+v", q.Status.Conditions)
	}
	// The budget has no disruption left, but a pod that is not Ready goes
	// while the budget is healthy without it (IfHealthyBudget).
	running("u", corev1.ConditionFalse)
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "u", Namespace: "default"}}); err != nil {
		t.Fatalf("eviction of an unready pod under a healthy budget: %v", err)
	}
	running("r", corev1.ConditionTrue)
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"}}); !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction of a ready pod with no disruption left: %v", err)
	}
}

func TestReviews(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	// No authorizer in this test server: everything is allowed.
	sar, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "default"}},
	}, metav1.CreateOptions{})
	if err != nil || !sar.Status.Allowed {
		t.Fatalf("self subject access review: %+v %v", sar, err)
	}
	if _, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{}, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Fatalf("subject access review without a subject: %v", err)
	}
	err = cs.AuthorizationV1().RESTClient().Get().Resource("selfsubjectaccessreviews").Do(ctx).Error()
	if !apierrors.IsMethodNotSupported(err) {
		t.Fatalf("listing reviews: %v", err)
	}
}

func TestPropagationPolicies(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	owner, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID}
	dep := func(name string) {
		if _, err := cs.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{ref}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(get func() error) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := get(); apierrors.IsNotFound(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("still there")
			}
		}
	}
	ownerGone := func() error {
		_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "owner", metav1.GetOptions{})
		return err
	}

	dep("orphaned")
	orphan := metav1.DeletePropagationOrphan
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "owner", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	gone(ownerGone)
	s, err := cs.CoreV1().Secrets("default").Get(ctx, "orphaned", metav1.GetOptions{})
	if err != nil || len(s.OwnerReferences) != 0 {
		t.Fatalf("orphaned dependent: %v %v", s.OwnerReferences, err)
	}

	owner, _ = cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	ref.UID = owner.UID
	dep("foreground")
	fg := metav1.DeletePropagationForeground
	if err := cs.CoreV1().ConfigMaps("default").Delete(ctx, "owner", metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	gone(ownerGone)
	gone(func() error {
		_, err := cs.CoreV1().Secrets("default").Get(ctx, "foreground", metav1.GetOptions{})
		return err
	})
}

func TestHPAServedAsV1AndV2(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["protobuf"]
	ctx := context.Background()
	v1 := &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef:                 autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:                    ptr.To[int32](1),
			MaxReplicas:                    3,
			TargetCPUUtilizationPercentage: ptr.To[int32](80),
		},
	}
	if _, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, v1, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v2, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(v2.Spec.Metrics) != 1 || *v2.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 {
		t.Fatalf("the v1 HPA seen as v2: %+v %v", v2.Spec, err)
	}
	// A second metric added through v2 survives an update through v1.
	v2.Spec.Metrics = append(v2.Spec.Metrics, autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)}}})
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Update(ctx, v2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || *got.Spec.TargetCPUUtilizationPercentage != 80 {
		t.Fatalf("v1 view: %+v %v", got, err)
	}
	got.Spec.MaxReplicas = 5
	if _, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	v2, _ = cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if v2.Spec.MaxReplicas != 5 || len(v2.Spec.Metrics) != 2 || len(v2.Annotations) != 0 {
		t.Fatalf("after the v1 update: %+v %v", v2.Spec, v2.Annotations)
	}
	list, err := cs.AutoscalingV1().HorizontalPodAutoscalers("").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Spec.MaxReplicas != 5 {
		t.Fatalf("v1 list: %v", err)
	}
}

func TestEventsServedInBothGroups(t *testing.T) {
	cs := clients(t, start(t, memStore(t)))["json"]
	ctx := context.Background()
	now := metav1.NewMicroTime(time.Now())
	_, err := cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "e1"}, EventTime: now, ReportingController: "labctl/test", ReportingInstance: "t1",
		Action: "Testing", Reason: "Tested", Note: "it works", Type: corev1.EventTypeNormal,
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := cs.CoreV1().Events("default").Get(ctx, "e1", metav1.GetOptions{})
	if err != nil || core.Message != "it works" || core.InvolvedObject.Name != "p" || core.ReportingController != "labctl/test" {
		t.Fatalf("the events.k8s.io Event as core/v1: %+v %v", core, err)
	}
	list, err := cs.EventsV1().Events("").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Note != "it works" {
		t.Fatalf("events.k8s.io list: %v", err)
	}
}
