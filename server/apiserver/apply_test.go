package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv1ac "k8s.io/client-go/applyconfigurations/autoscaling/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"labctl/server/apiserver"
)

// entry finds the managedFields entry of manager with operation op (and
// subresource sub), failing t when there is none.
func entry(t *testing.T, obj metav1.Object, manager string, op metav1.ManagedFieldsOperationType, sub string) metav1.ManagedFieldsEntry {
	t.Helper()
	for _, e := range obj.GetManagedFields() {
		if e.Manager == manager && e.Operation == op && e.Subresource == sub {
			return e
		}
	}
	t.Fatalf("no managedFields entry for %s %s (subresource %q) on %s: %s", manager, op, sub, obj.GetName(), showEntries(obj))
	return metav1.ManagedFieldsEntry{}
}

// noEntry fails t when manager has an entry.
func noEntry(t *testing.T, obj metav1.Object, manager string) {
	t.Helper()
	for _, e := range obj.GetManagedFields() {
		if e.Manager == manager {
			t.Fatalf("want no managedFields entry for %s on %s: %s", manager, obj.GetName(), showEntries(obj))
		}
	}
}

func showEntries(obj metav1.Object) string {
	b, _ := json.MarshalIndent(obj.GetManagedFields(), "", "  ")
	return string(b)
}

// owns checks that e's fields include each of paths (as FieldsV1 JSON
// fragments, "f:data" then "f:key" for .data.key) and exclude each of not.
func owns(t *testing.T, e metav1.ManagedFieldsEntry, paths [][]string, not ...[]string) {
	t.Helper()
	var fields map[string]any
	if e.FieldsV1 == nil || json.Unmarshal(e.FieldsV1.Raw, &fields) != nil {
		t.Fatalf("entry of %s has no fieldsV1: %+v", e.Manager, e)
	}
	has := func(path []string) bool {
		cur := fields
		for _, p := range path {
			next, ok := cur[p].(map[string]any)
			if !ok {
				return false
			}
			cur = next
		}
		return true
	}
	for _, p := range paths {
		if !has(p) {
			t.Errorf("%s (%s) does not own %v: %s", e.Manager, e.Operation, p, e.FieldsV1.Raw)
		}
	}
	for _, p := range not {
		if has(p) {
			t.Errorf("%s (%s) owns %v: %s", e.Manager, e.Operation, p, e.FieldsV1.Raw)
		}
	}
}

// startChecked is start with a logger: the test fails when the server
// logs an error (managedFields it could not update, among others).
func startChecked(t *testing.T) *rest.Config {
	t.Helper()
	errs := &errorLog{}
	// Registered first, so run last: after the server has stopped.
	t.Cleanup(func() {
		errs.mu.Lock()
		defer errs.mu.Unlock()
		for _, e := range errs.records {
			t.Errorf("the server logged an error: %s", e)
		}
	})
	_, srv := serve(t, apiserver.Config{Logger: slog.New(errs)})
	return restConfig(srv)
}

// errorLog is a slog.Handler keeping the error records.
type errorLog struct {
	mu      sync.Mutex
	records []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	l.mu.Lock()
	l.records = append(l.records, msg)
	l.mu.Unlock()
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func clientWithAgent(t *testing.T, cfg *rest.Config, agent string) kubernetes.Interface {
	c := rest.CopyConfig(cfg)
	c.UserAgent = agent
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestApplyCreatesUpdatesConflictsAndForces(t *testing.T) {
	cfg := startChecked(t)
	for name, cs := range clients(t, cfg) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := "apply-" + name
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			cms := cs.CoreV1().ConfigMaps(ns)

			// Apply creates.
			cm, err := cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "blue", "size": "L"}), metav1.ApplyOptions{FieldManager: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			if cm.UID == "" || cm.ResourceVersion == "" || cm.Data["color"] != "blue" {
				t.Fatalf("applied object: %+v", cm)
			}
			e := entry(t, cm, "alice", metav1.ManagedFieldsOperationApply, "")
			if e.APIVersion != "v1" || e.FieldsType != "FieldsV1" || e.Time == nil {
				t.Errorf("entry %+v", e)
			}
			owns(t, e, [][]string{{"f:data", "f:color"}, {"f:data", "f:size"}})
			got, err := cms.Get(ctx, "cfg", metav1.GetOptions{})
			if err != nil || len(got.ManagedFields) != 1 {
				t.Fatalf("stored object: %v %s", err, showEntries(got))
			}

			// Apply changes what it owns, and drops what it no longer names.
			cm, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "green"}), metav1.ApplyOptions{FieldManager: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["color"] != "green" || cm.Data["size"] != "" {
				t.Fatalf("data after the second apply: %v", cm.Data)
			}
			owns(t, entry(t, cm, "alice", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:data", "f:color"}}, []string{"f:data", "f:size"})

			// A second manager setting alice's field conflicts...
			_, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "red"}), metav1.ApplyOptions{FieldManager: "bob"})
			st, ok := err.(apierrors.APIStatus)
			if !ok || !apierrors.IsConflict(err) {
				t.Fatalf("conflicting apply: %v", err)
			}
			s := st.Status()
			if s.Code != 409 || s.Reason != metav1.StatusReasonConflict || s.Message != `Apply failed with 1 conflict: conflict with "alice": .data.color` {
				t.Errorf("conflict status: %d %s %q", s.Code, s.Reason, s.Message)
			}
			if s.Details == nil || len(s.Details.Causes) != 1 || s.Details.Causes[0] != (metav1.StatusCause{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "alice"`, Field: ".data.color"}) {
				t.Errorf("conflict causes: %+v", s.Details)
			}
			// ... but not when it sets the same value (shared ownership),
			cm, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "green", "owner": "bob"}), metav1.ApplyOptions{FieldManager: "bob"})
			if err != nil {
				t.Fatalf("apply of the same value: %v", err)
			}
			owns(t, entry(t, cm, "bob", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:data", "f:color"}, {"f:data", "f:owner"}})
			owns(t, entry(t, cm, "alice", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:data", "f:color"}})

			// ... and force takes the field.
			cm, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "red", "owner": "bob"}), metav1.ApplyOptions{FieldManager: "bob", Force: true})
			if err != nil {
				t.Fatalf("forced apply: %v", err)
			}
			if cm.Data["color"] != "red" {
				t.Fatalf("data after force: %v", cm.Data)
			}
			owns(t, entry(t, cm, "bob", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:data", "f:color"}})
			noEntry(t, cm, "alice") // alice owned nothing else

			// An update takes the fields it changes from the appliers, and
			// applying them again then conflicts with the updater.
			cm.Data["color"] = "yellow"
			cm, err = clientWithAgent(t, cfg, "editor/1.0 (linux/amd64)").CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e = entry(t, cm, "editor", metav1.ManagedFieldsOperationUpdate, "")
			owns(t, e, [][]string{{"f:data", "f:color"}}, []string{"f:data", "f:owner"})
			_, err = cms.Apply(ctx, corev1ac.ConfigMap("cfg", ns).WithData(map[string]string{"color": "red", "owner": "bob"}), metav1.ApplyOptions{FieldManager: "bob"})
			if !apierrors.IsConflict(err) || err.Error() != `Apply failed with 1 conflict: conflict with "editor" using v1: .data.color` {
				t.Fatalf("apply over an update: %v", err)
			}
		})
	}
}

func TestManagedFieldsOnEveryWrite(t *testing.T) {
	cfg := startChecked(t)
	ctx := context.Background()
	cs := clientWithAgent(t, cfg, "kubectl-create/v1.33.0 (linux/amd64) kubernetes/abc")
	d, err := cs.AppsV1().Deployments("default").Create(ctx, deployment("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Create: the creator owns what it sent and the defaults, not what the
	// server resets (status) or fills (generation is metadata nobody owns).
	e := entry(t, d, "kubectl-create", metav1.ManagedFieldsOperationUpdate, "")
	if e.APIVersion != "apps/v1" || e.Time == nil {
		t.Errorf("create entry %+v", e)
	}
	owns(t, e, [][]string{
		{"f:spec", "f:replicas"},
		{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"c"}`, "f:image"},
		{"f:spec", "f:strategy", "f:rollingUpdate", "f:maxSurge"}, // a default
	}, []string{"f:status"}, []string{"f:metadata", "f:generation"})

	// Update with an explicit fieldManager.
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.27"
	if d, err = cs.AppsV1().Deployments("default").Update(ctx, d, metav1.UpdateOptions{FieldManager: "updater"}); err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, d, "updater", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"c"}`, "f:image"}},
		[]string{"f:spec", "f:replicas"})
	owns(t, entry(t, d, "kubectl-create", metav1.ManagedFieldsOperationUpdate, ""), nil,
		[]string{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"c"}`, "f:image"})

	// The three patch types.
	for _, p := range []struct {
		manager string
		pt      types.PatchType
		patch   string
		owned   []string
	}{
		{"json-patcher", types.JSONPatchType, `[{"op":"add","path":"/metadata/annotations","value":{"j":"1"}}]`, []string{"f:metadata", "f:annotations", "f:j"}},
		{"merge-patcher", types.MergePatchType, `{"metadata":{"labels":{"m":"1"}}}`, []string{"f:metadata", "f:labels", "f:m"}},
		{"smp-patcher", types.StrategicMergePatchType, `{"spec":{"template":{"spec":{"containers":[{"name":"c","env":[{"name":"A","value":"1"}]}]}}}}`,
			[]string{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"c"}`, "f:env", `k:{"name":"A"}`, "f:value"}},
	} {
		if d, err = cs.AppsV1().Deployments("default").Patch(ctx, "web", p.pt, []byte(p.patch), metav1.PatchOptions{FieldManager: p.manager}); err != nil {
			t.Fatalf("%s: %v", p.pt, err)
		}
		owns(t, entry(t, d, p.manager, metav1.ManagedFieldsOperationUpdate, ""), [][]string{p.owned})
	}

	// /status: its own entry, with the subresource; the spec in the same
	// request is not the status writer's (the strategy keeps it).
	d.Status.ObservedGeneration = d.Generation
	d.Status.Replicas = 2
	d.Spec.Paused = true
	if d, err = clientWithAgent(t, cfg, "kube-controller-manager/v1.33.0").AppsV1().Deployments("default").UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, d, "kube-controller-manager", metav1.ManagedFieldsOperationUpdate, "status"),
		[][]string{{"f:status", "f:replicas"}, {"f:status", "f:observedGeneration"}}, []string{"f:spec"})

	// /scale: spec.replicas moves to the scale writer's entry.
	sc, err := cs.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Spec.Replicas = 4
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{FieldManager: "scaler"}); err != nil {
		t.Fatal(err)
	}
	if d, err = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	e = entry(t, d, "scaler", metav1.ManagedFieldsOperationUpdate, "scale")
	if e.APIVersion != "apps/v1" {
		t.Errorf("scale entry %+v", e)
	}
	owns(t, e, [][]string{{"f:spec", "f:replicas"}})
	owns(t, entry(t, d, "kubectl-create", metav1.ManagedFieldsOperationUpdate, ""), nil, []string{"f:spec", "f:replicas"})
	if *d.Spec.Replicas != 4 {
		t.Errorf("replicas %d after scaling to 4", *d.Spec.Replicas)
	}
	// A merge patch to /scale (kubectl scale).
	if _, err := cs.AppsV1().Deployments("default").Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":5}}`), metav1.PatchOptions{FieldManager: "kubectl-scale"}, "scale"); err != nil {
		t.Fatal(err)
	}
	d, _ = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	owns(t, entry(t, d, "kubectl-scale", metav1.ManagedFieldsOperationUpdate, "scale"), [][]string{{"f:spec", "f:replicas"}})
	noEntry(t, d, "scaler")

	// Apply to /scale (forced: kubectl-scale owns the replicas), and an
	// applier of the whole object then conflicts on spec.replicas with it.
	scaleApply := `{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3}}`
	if _, err := cs.AppsV1().RESTClient().Patch(types.ApplyPatchType).Namespace("default").Resource("deployments").Name("web").SubResource("scale").
		Param("fieldManager", "hpa").Param("force", "true").Body([]byte(scaleApply)).Do(ctx).Get(); err != nil {
		t.Fatalf("apply to /scale: %v", err)
	}
	d, _ = cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	owns(t, entry(t, d, "hpa", metav1.ManagedFieldsOperationApply, "scale"), [][]string{{"f:spec", "f:replicas"}})
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d after applying 3 to /scale", *d.Spec.Replicas)
	}
	_, err = cs.AppsV1().Deployments("default").Apply(ctx, appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().WithReplicas(7)), metav1.ApplyOptions{FieldManager: "gitops"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "hpa" with subresource "scale": .spec.replicas`) {
		t.Fatalf("apply of replicas owned through /scale: %v", err)
	}

	// Pods: what admission adds (the service account and its token
	// volume) is nobody's; the kubelet's status has its entry.
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, pod, "kubectl-create", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:spec", "f:containers"}},
		[]string{"f:status"}, []string{"f:spec", "f:serviceAccountName"}, []string{"f:spec", "f:volumes"})
	if len(pod.Spec.Volumes) == 0 || pod.Spec.ServiceAccountName != "default" {
		t.Fatalf("admission did not run: %+v", pod.Spec)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "10.42.0.5"
	if pod, err = clientWithAgent(t, cfg, "kubelet/v1.33.0 (linux/amd64)").CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, pod, "kubelet", metav1.ManagedFieldsOperationUpdate, "status"), [][]string{{"f:status", "f:phase"}, {"f:status", "f:podIP"}}, []string{"f:spec"})
}

func TestApplyDryRun(t *testing.T) {
	cfg := startChecked(t)
	ctx := context.Background()
	cs := clients(t, cfg)["json"]
	cms := cs.CoreV1().ConfigMaps("default")
	dry, err := cms.Apply(ctx, corev1ac.ConfigMap("dry", "default").WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "m", DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Data["k"] != "v" || len(dry.ManagedFields) != 1 {
		t.Fatalf("dry-run apply answer: %+v", dry)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry-run apply created the object: %v", err)
	}
	real, err := cms.Apply(ctx, corev1ac.ConfigMap("dry", "default").WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "m"})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := cms.Apply(ctx, corev1ac.ConfigMap("dry", "default").WithData(map[string]string{"k": "w"}), metav1.ApplyOptions{FieldManager: "m", DryRun: []string{metav1.DryRunAll}})
	if err != nil || changed.Data["k"] != "w" {
		t.Fatalf("dry-run apply of a change: %v %v", err, changed)
	}
	// Dry runs conflict as real applies do.
	if _, err := cms.Apply(ctx, corev1ac.ConfigMap("dry", "default").WithData(map[string]string{"k": "x"}), metav1.ApplyOptions{FieldManager: "other", DryRun: []string{metav1.DryRunAll}}); !apierrors.IsConflict(err) {
		t.Fatalf("dry-run conflicting apply: %v", err)
	}
	after, _ := cms.Get(ctx, "dry", metav1.GetOptions{})
	if after.Data["k"] != "v" || after.ResourceVersion != real.ResourceVersion {
		t.Fatalf("a dry-run apply changed the object: %v", after.Data)
	}
}

func TestApplyDeploymentListsByKey(t *testing.T) {
	cfg := startChecked(t)
	ctx := context.Background()
	deploys := clients(t, cfg)["protobuf"].AppsV1().Deployments("default")
	labels := map[string]string{"app": "web"}
	web := func(containers ...*corev1ac.ContainerApplyConfiguration) *appsv1ac.DeploymentApplyConfiguration {
		return appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(labels).WithSpec(corev1ac.PodSpec().WithContainers(containers...))))
	}
	app := corev1ac.Container().WithName("app").WithImage("nginx").
		WithPorts(corev1ac.ContainerPort().WithContainerPort(80).WithName("http"), corev1ac.ContainerPort().WithContainerPort(443).WithName("https"))
	d, err := deploys.Apply(ctx, web(app), metav1.ApplyOptions{FieldManager: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways || d.Generation != 1 {
		t.Errorf("created by apply without the defaults: replicas %v, pull policy %q, generation %d", d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].ImagePullPolicy, d.Generation)
	}
	// Another manager adds a sidecar: containers merge by name.
	sidecar := corev1ac.Container().WithName("sidecar").WithImage("busybox")
	d, err = deploys.Apply(ctx, appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().
		WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().WithContainers(sidecar)))), metav1.ApplyOptions{FieldManager: "team-b"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Spec.Template.Spec.Containers); n != 2 || d.Generation != 2 {
		t.Fatalf("containers after the sidecar: %d, generation %d", n, d.Generation)
	}
	// team-a drops a port and changes the image; the sidecar stays
	// (team-b's), the other port goes (team-a's).
	app = corev1ac.Container().WithName("app").WithImage("nginx:1.27").WithPorts(corev1ac.ContainerPort().WithContainerPort(80).WithName("http"))
	if d, err = deploys.Apply(ctx, web(app), metav1.ApplyOptions{FieldManager: "team-a"}); err != nil {
		t.Fatal(err)
	}
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Name != "app" || cs[0].Image != "nginx:1.27" || len(cs[0].Ports) != 1 || cs[1].Name != "sidecar" {
		t.Fatalf("containers: %+v", cs)
	}
	owns(t, entry(t, d, "team-b", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"sidecar"}`, "f:image"}})
	owns(t, entry(t, d, "team-a", metav1.ManagedFieldsOperationApply, ""),
		[][]string{{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"app"}`, "f:ports", `k:{"containerPort":80,"protocol":"TCP"}`, "f:name"}},
		[]string{"f:spec", "f:template", "f:spec", "f:containers", `k:{"name":"app"}`, "f:ports", `k:{"containerPort":443,"protocol":"TCP"}`})
	// A conflict inside a keyed list names the element.
	_, err = deploys.Apply(ctx, appsv1ac.Deployment("web", "default").WithSpec(appsv1ac.DeploymentSpec().
		WithTemplate(corev1ac.PodTemplateSpec().WithSpec(corev1ac.PodSpec().WithContainers(corev1ac.Container().WithName("app").WithImage("httpd"))))), metav1.ApplyOptions{FieldManager: "team-b"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "team-a": .spec.template.spec.containers[name="app"].image`) {
		t.Fatalf("conflict in a keyed list: %v", err)
	}
	// Status in an apply to the main resource is the strategy's to keep:
	// the applier does not own it.
	d, err = deploys.Apply(ctx, web(app).WithStatus(appsv1ac.DeploymentStatus().WithReplicas(9)), metav1.ApplyOptions{FieldManager: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.Replicas == 9 {
		t.Error("an apply to the main resource set the status")
	}
	owns(t, entry(t, d, "team-a", metav1.ManagedFieldsOperationApply, ""), nil, []string{"f:status"})
	// Apply to /status.
	if d, err = deploys.ApplyStatus(ctx, appsv1ac.Deployment("web", "default").WithStatus(appsv1ac.DeploymentStatus().WithObservedGeneration(3)), metav1.ApplyOptions{FieldManager: "controller"}); err != nil {
		t.Fatal(err)
	}
	if d.Status.ObservedGeneration != 3 {
		t.Errorf("observedGeneration %d after applying 3 to /status", d.Status.ObservedGeneration)
	}
	owns(t, entry(t, d, "controller", metav1.ManagedFieldsOperationApply, "status"), [][]string{{"f:status", "f:observedGeneration"}})
	// Apply to the status of an object that does not exist: not found, as
	// only the main resource creates.
	if _, err := deploys.ApplyStatus(ctx, appsv1ac.Deployment("nope", "default").WithStatus(appsv1ac.DeploymentStatus().WithReplicas(1)), metav1.ApplyOptions{FieldManager: "controller"}); !apierrors.IsNotFound(err) {
		t.Fatalf("apply to the status of a missing object: %v", err)
	}
}

func TestApplyAcrossVersions(t *testing.T) {
	cfg := startChecked(t)
	ctx := context.Background()
	cs := clients(t, cfg)["json"]
	// HorizontalPodAutoscalers are kept as autoscaling/v2 and served as v1
	// too: entries name the version their manager wrote.
	hpa, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Apply(ctx, autoscalingv1ac.HorizontalPodAutoscaler("web", "default").
		WithSpec(autoscalingv1ac.HorizontalPodAutoscalerSpec().WithMaxReplicas(5).WithTargetCPUUtilizationPercentage(60).
			WithScaleTargetRef(autoscalingv1ac.CrossVersionObjectReference().WithAPIVersion("apps/v1").WithKind("Deployment").WithName("web"))),
		metav1.ApplyOptions{FieldManager: "v1-applier"})
	if err != nil {
		t.Fatal(err)
	}
	e := entry(t, hpa, "v1-applier", metav1.ManagedFieldsOperationApply, "")
	if e.APIVersion != "autoscaling/v1" {
		t.Errorf("v1 apply entry %+v", e)
	}
	owns(t, e, [][]string{{"f:spec", "f:targetCPUUtilizationPercentage"}, {"f:spec", "f:maxReplicas"}})
	v2, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(v2.Spec.Metrics) != 1 || len(v2.ManagedFields) != 1 {
		t.Fatalf("as v2: %v %+v", err, v2)
	}
	// A v2 writer changing maxReplicas takes it; the v1 applier applying
	// another value then conflicts with it, across versions.
	v2.Spec.MaxReplicas = 8
	if v2, err = cs.AutoscalingV2().HorizontalPodAutoscalers("default").Update(ctx, v2, metav1.UpdateOptions{FieldManager: "v2-editor"}); err != nil {
		t.Fatal(err)
	}
	if e := entry(t, v2, "v2-editor", metav1.ManagedFieldsOperationUpdate, ""); e.APIVersion != "autoscaling/v2" {
		t.Errorf("v2 update entry %+v", e)
	}
	_, err = cs.AutoscalingV1().HorizontalPodAutoscalers("default").Apply(ctx, autoscalingv1ac.HorizontalPodAutoscaler("web", "default").
		WithSpec(autoscalingv1ac.HorizontalPodAutoscalerSpec().WithMaxReplicas(6).WithTargetCPUUtilizationPercentage(60).
			WithScaleTargetRef(autoscalingv1ac.CrossVersionObjectReference().WithAPIVersion("apps/v1").WithKind("Deployment").WithName("web"))),
		metav1.ApplyOptions{FieldManager: "v1-applier"})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `conflict with "v2-editor" using autoscaling/v2`) || !strings.Contains(err.Error(), ".spec.maxReplicas") {
		t.Fatalf("v1 apply over a v2 update: %v", err)
	}
	var v1 *autoscalingv1.HorizontalPodAutoscaler
	if v1, err = cs.AutoscalingV1().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{}); err != nil || v1.Spec.MaxReplicas != 8 || len(v1.ManagedFields) != 2 {
		t.Fatalf("as v1 after the v2 update: %v %+v", err, v1)
	}

	// Events: core/v1 and events.k8s.io/v1.
	ev, err := cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1"}, EventTime: metav1.NowMicro(),
		ReportingController: "test", ReportingInstance: "test-1", Action: "Test", Reason: "Tested", Type: "Normal", Note: "hello",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"}}, metav1.CreateOptions{FieldManager: "recorder"})
	if err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, ev, "recorder", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:note"}, {"f:regarding"}})
	core, err := cs.CoreV1().Events("default").Patch(ctx, "e1", types.MergePatchType, []byte(`{"message":"changed"}`), metav1.PatchOptions{FieldManager: "core-patcher"})
	if err != nil {
		t.Fatal(err)
	}
	if e := entry(t, core, "core-patcher", metav1.ManagedFieldsOperationUpdate, ""); e.APIVersion != "v1" {
		t.Errorf("core patch entry %+v", e)
	}
	owns(t, entry(t, core, "core-patcher", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:message"}})
	// The events.k8s.io manager lost .note to the core patcher's .message.
	ev, _ = cs.EventsV1().Events("default").Get(ctx, "e1", metav1.GetOptions{})
	owns(t, entry(t, ev, "recorder", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:regarding"}}, []string{"f:note"})
}

func TestInvalidManagedFieldsAreReset(t *testing.T) {
	cfg := startChecked(t)
	ctx := context.Background()
	cms := clients(t, cfg)["json"].CoreV1().ConfigMaps("default")
	// An entry without an operation is invalid: the server records its own.
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "liar"}}},
		Data: map[string]string{"k": "v"}}, metav1.CreateOptions{FieldManager: "creator"})
	if err != nil {
		t.Fatal(err)
	}
	noEntry(t, cm, "liar")
	owns(t, entry(t, cm, "creator", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:data", "f:k"}})
	// A list of one empty entry strips managedFields, as upstream documents
	// it; an empty list leaves them.
	cm.ManagedFields = []metav1.ManagedFieldsEntry{}
	cm.Data["k2"] = "v2"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "updater"}); err != nil {
		t.Fatal(err)
	}
	entry(t, cm, "creator", metav1.ManagedFieldsOperationUpdate, "")
	owns(t, entry(t, cm, "updater", metav1.ManagedFieldsOperationUpdate, ""), [][]string{{"f:data", "f:k2"}})
	cm.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	cm.Data["k3"] = "v3"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "resetter"}); err != nil {
		t.Fatal(err)
	}
	if len(cm.ManagedFields) != 0 {
		t.Fatalf("managedFields after a reset: %s", showEntries(cm))
	}
	// Updates of an object without managedFields leave it so (upstream
	// tracks such objects from their first apply on).
	if cm, err = cms.Patch(ctx, "x", types.MergePatchType, []byte(`{"data":{"k4":"v4"}}`), metav1.PatchOptions{FieldManager: "patcher"}); err != nil {
		t.Fatal(err)
	}
	if len(cm.ManagedFields) != 0 {
		t.Fatalf("managedFields after a reset and a patch: %s", showEntries(cm))
	}
	if cm, err = cms.Apply(ctx, corev1ac.ConfigMap("x", "default").WithData(map[string]string{"k": "v"}), metav1.ApplyOptions{FieldManager: "applier"}); err != nil {
		t.Fatal(err)
	}
	owns(t, entry(t, cm, "applier", metav1.ManagedFieldsOperationApply, ""), [][]string{{"f:data", "f:k"}})
}

// TestApplyBadInput sends what clients get wrong with apply and checks
// each gets upstream's Status.
func TestApplyBadInput(t *testing.T) {
	cfg := startChecked(t)
	cms := cfg.Host + "/api/v1/namespaces/default/configmaps"
	cm := func(extra string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}` + extra + `}`
	}
	ctx := context.Background()
	if _, err := clients(t, cfg)["json"].CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "exists"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, ctype, body string
		code                   int
		reason                 metav1.StatusReason
		says                   string
	}{
		{"no fieldManager", cms + "/x", "application/apply-patch+yaml", cm(""), 422, metav1.StatusReasonInvalid,
			`PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch`},
		{"fieldManager too long", cms + "/x?fieldManager=" + strings.Repeat("m", 129), "application/apply-patch+yaml", cm(""), 422, metav1.StatusReasonInvalid,
			"fieldManager: Too long: may not be more than 128 bytes"},
		{"force on a merge patch", cms + "/exists?force=true", "application/merge-patch+json", `{"data":{"a":"b"}}`, 422, metav1.StatusReasonInvalid,
			`PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch`},
		{"invalid YAML", cms + "/x?fieldManager=m", "application/apply-patch+yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [name: x\n", 400, metav1.StatusReasonBadRequest,
			"error encoding patch: yaml: line 3: did not find expected ',' or ']'"},
		{"not an object", cms + "/x?fieldManager=m", "application/apply-patch+yaml", "- a\n- b\n", 400, metav1.StatusReasonBadRequest, "error decoding patch"},
		{"invalid JSON in a merge patch", cms + "/exists", "application/merge-patch+json", `{"data":`, 400, metav1.StatusReasonBadRequest, "invalid JSON patch"},
		{"CBOR apply", cms + "/x?fieldManager=m", "application/apply-patch+cbor", "\xa0", 415, metav1.StatusReasonUnsupportedMediaType,
			"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"},
		{"unknown field", cms + "/x?fieldManager=m", "application/apply-patch+yaml", cm(`,"dta":{"a":"b"}`), 500, metav1.StatusReasonUnknown,
			"failed to create typed patch object (/x; /v1, Kind=ConfigMap): .dta: field not declared in schema"},
		{"repeated key, strict", cms + "/x?fieldManager=m&fieldValidation=Strict", "application/apply-patch+yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n  a: c\n", 400, metav1.StatusReasonBadRequest,
			"error strict decoding patch: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"},
		{"repeated key in JSON, strict", cms + "/x?fieldManager=m&fieldValidation=Strict", "application/apply-patch+yaml", cm(`,"data":{"a":"b","a":"c"}`), 400, metav1.StatusReasonBadRequest,
			"error strict decoding patch: error converting YAML to JSON: yaml: unmarshal errors:\n  line 1: key \"a\" already set in map"},
		{"wrong kind", cms + "/x?fieldManager=m", "application/apply-patch+yaml", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest,
			"invalid object type: /v1, Kind=Secret"},
		{"wrong version", cms + "/x?fieldManager=m", "application/apply-patch+yaml", `{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest,
			"invalid object type: /v2, Kind=ConfigMap"},
		{"name not the URL's", cms + "/y?fieldManager=m", "application/apply-patch+yaml", cm(""), 400, metav1.StatusReasonBadRequest,
			"the name of the object (x) does not match the name on the URL (y)"},
		{"generateName only", cms + "/y?fieldManager=m", "application/apply-patch+yaml", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"y-"}}`, 400, metav1.StatusReasonBadRequest,
			"the name of the object () does not match the name on the URL (y)"},
		{"namespace not the URL's", cms + "/x?fieldManager=m", "application/apply-patch+yaml", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"other"}}`, 400, metav1.StatusReasonBadRequest,
			"the namespace of the provided object does not match the namespace sent on the request"},
		{"missing namespace", cfg.Host + "/api/v1/namespaces/nope/configmaps/x?fieldManager=m", "application/apply-patch+yaml", cm(""), 404, metav1.StatusReasonNotFound,
			`namespaces "nope" not found`},
		{"managedFields applied", cms + "/x?fieldManager=m", "application/apply-patch+yaml", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","managedFields":[{"manager":"m"}]}}`, 400, metav1.StatusReasonBadRequest,
			"metadata.managedFields must be nil"},
		{"invalid object", cms + "/x?fieldManager=m", "application/apply-patch+yaml", cm(`,"data":{"not a key!":"v"}`), 422, metav1.StatusReasonInvalid,
			`ConfigMap "x" is invalid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPatch, tt.url, bytes.NewBufferString(tt.body))
			req.Header.Set("Content-Type", tt.ctype)
			wantStatusAnswer(t, req, tt.code, tt.reason, tt.says)
		})
	}
	// A repeated key with fieldValidation=Warn (the default): applied, with
	// a warning.
	for _, body := range []string{cm(`,"data":{"a":"b","a":"c"}`), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: warned\ndata:\n  a: b\n  a: c\n"} {
		body = strings.Replace(body, `"name":"x"`, `"name":"warned"`, 1)
		req, _ := http.NewRequest(http.MethodPatch, cms+"/warned?fieldManager=m", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/apply-patch+yaml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 || !strings.Contains(resp.Header.Get("Warning"), `key \"a\" already set in map`) || !strings.Contains(string(out), `"a":"c"`) {
			t.Errorf("repeated key, warn: %d %q %s", resp.StatusCode, resp.Header.Values("Warning"), out)
		}
	}
	// Odd bodies: a Status each, never a panic.
	for _, body := range []string{"", "null", "[]", "42", `"x"`, "{}", "metadata: 5", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: 5",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [1]}", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, managedFields: null}\ndata: {a: [1, 2]}",
		"apiVersion: [v1]\nkind: {a: b}", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, uid: abc}"} {
		for _, url := range []string{cms + "/x?fieldManager=m", cms + "/exists?fieldManager=m", cfg.Host + "/apis/apps/v1/namespaces/default/deployments/x/scale?fieldManager=m"} {
			req, _ := http.NewRequest(http.MethodPatch, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/apply-patch+yaml")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%q to %s: %v", body, url, err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var st metav1.Status
			if resp.StatusCode < 400 || json.Unmarshal(out, &st) != nil || st.Kind != "Status" {
				t.Errorf("%q to %s: %d %s", body, url, resp.StatusCode, out)
			}
		}
	}
	// Nothing was created on the way.
	if _, err := clients(t, cfg)["json"].CoreV1().ConfigMaps("default").Get(ctx, "x", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a refused apply created x: %v", err)
	}
}
