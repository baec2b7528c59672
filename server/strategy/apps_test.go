package strategy

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var (
	deploymentGVK  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	replicaSetGVK  = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
	daemonSetGVK   = appsv1.SchemeGroupVersion.WithKind("DaemonSet")
	statefulSetGVK = appsv1.SchemeGroupVersion.WithKind("StatefulSet")
)

func webTemplate() v1.PodTemplateSpec {
	return v1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "nginx", Image: "nginx"}}},
	}
}

// kubectlCreateDeployment is what `kubectl create deployment web
// --image=nginx` sends.
func kubectlCreateDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
}

func TestDeploymentDefaults(t *testing.T) {
	d := kubectlCreateDeployment()
	d.Spec.Replicas = nil
	checkErrs(t, create(t, deploymentGVK, d))
	s := d.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"replicas", s.Replicas, ptr.To[int32](1)},
		{"strategy type", s.Strategy.Type, appsv1.RollingUpdateDeploymentStrategyType},
		{"maxUnavailable", s.Strategy.RollingUpdate.MaxUnavailable, ptr.To(intstr.FromString("25%"))},
		{"maxSurge", s.Strategy.RollingUpdate.MaxSurge, ptr.To(intstr.FromString("25%"))},
		{"revisionHistoryLimit", s.RevisionHistoryLimit, ptr.To[int32](10)},
		{"progressDeadlineSeconds", s.ProgressDeadlineSeconds, ptr.To[int32](600)},
		{"template restartPolicy", s.Template.Spec.RestartPolicy, v1.RestartPolicyAlways},
		{"template dnsPolicy", s.Template.Spec.DNSPolicy, v1.DNSClusterFirst},
		{"template grace period", s.Template.Spec.TerminationGracePeriodSeconds, ptr.To[int64](30)},
		{"template pull policy", s.Template.Spec.Containers[0].ImagePullPolicy, v1.PullAlways},
		{"template terminationMessagePath", s.Template.Spec.Containers[0].TerminationMessagePath, "/dev/termination-log"},
		{"generation", d.Generation, int64(1)},
		{"status", d.Status, appsv1.DeploymentStatus{}},
	}
	for _, c := range checks {
		if !apiequality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	recreate := kubectlCreateDeployment()
	recreate.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	checkErrs(t, create(t, deploymentGVK, recreate))
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Error("Recreate strategy got rollingUpdate defaults")
	}
}

func TestDeploymentValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []want
	}{
		{"kubectl create deployment", func(*appsv1.Deployment) {}, nil},
		{"selector does not match", func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "other"} },
			[]want{invd("spec.template.metadata.labels", "`selector` does not match template `labels`")}},
		{"no selector", func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			[]want{req("spec.selector"), invd("spec.template.metadata.labels", "`selector` does not match template `labels`")}},
		{"empty selector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			[]want{invd("spec.selector", "empty selector is invalid for deployment")}},
		{"negative replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](-1) },
			[]want{invd("spec.replicas", "must be greater than or equal to 0")}},
		{"bad strategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }, []want{unsup("spec.strategy")}},
		{"Recreate with rollingUpdate", func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}, []want{forb("spec.strategy.rollingUpdate")}},
		{"surge and unavailable 0", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromString("0%"))}
		}, []want{invd("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0")}},
		{"bad percent", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromString("150%"))}
		}, []want{invd("spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%")}},
		{"restartPolicy Never", func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = v1.RestartPolicyNever },
			[]want{unsup("spec.template.spec.restartPolicy")}},
		{"template error", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			[]want{req("spec.template.spec.containers[0].image")}},
		{"template label", func(d *appsv1.Deployment) {
			d.Spec.Template.Labels["bad key!"] = "x"
		}, []want{inv("spec.template.labels")}},
		{"progress deadline not above minReady", func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}, []want{invd("spec.progressDeadlineSeconds", "must be greater than minReadySeconds")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := kubectlCreateDeployment()
			tt.mutate(d)
			checkErrs(t, create(t, deploymentGVK, d), tt.want...)
		})
	}
}

func TestSelectorErrorMessage(t *testing.T) {
	d := kubectlCreateDeployment()
	d.Spec.Template.Labels = map[string]string{"app": "other"}
	errs := create(t, deploymentGVK, d)
	const msg = "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"
	if len(errs) != 1 || errs[0].Error() != msg {
		t.Errorf("errors = %v, want %q", errs, msg)
	}
}

func storedDeployment(t *testing.T) *appsv1.Deployment {
	d := kubectlCreateDeployment()
	checkErrs(t, create(t, deploymentGVK, d))
	d.ResourceVersion = "7"
	d.Status = appsv1.DeploymentStatus{Replicas: 1, ObservedGeneration: 1}
	return d
}

func TestDeploymentUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []want
		bumped bool
	}{
		{"scale", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) }, nil, true},
		{"new image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.27" }, nil, true},
		{"annotation", func(d *appsv1.Deployment) { d.Annotations = map[string]string{"note": "x"} }, nil, true},
		{"label", func(d *appsv1.Deployment) { d.Labels["tier"] = "front" }, nil, false},
		{"status", func(d *appsv1.Deployment) { d.Status.Replicas = 5 }, nil, false},
		{"selector", func(d *appsv1.Deployment) {
			d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
			d.Spec.Template.Labels["v"] = "2"
		}, []want{invd("spec.selector", "field is immutable")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := storedDeployment(t)
			d := old.DeepCopy()
			tt.mutate(d)
			checkErrs(t, update(t, deploymentGVK, d, old), tt.want...)
			wantGen := old.Generation
			if tt.bumped {
				wantGen++
			}
			if d.Generation != wantGen {
				t.Errorf("generation = %d, want %d", d.Generation, wantGen)
			}
			if !apiequality.Semantic.DeepEqual(d.Status, old.Status) {
				t.Errorf("status changed to %+v", d.Status)
			}
		})
	}
}

func TestDeploymentStatusUpdate(t *testing.T) {
	s := mustFor(t, deploymentGVK)
	old := storedDeployment(t)
	d := old.DeepCopy()
	d.Spec.Replicas = ptr.To[int32](9)
	d.Labels = map[string]string{"changed": "yes"}
	d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 1}
	s.PrepareForStatusUpdate(d, old)
	if *d.Spec.Replicas != 1 || d.Labels["changed"] != "" || d.Generation != old.Generation {
		t.Errorf("status update changed spec, labels or generation: %+v", d)
	}
	checkErrs(t, s.ValidateStatusUpdate(d, old), invd("status.readyReplicas", "cannot be greater than status.replicas"))
}

func TestReplicaSet(t *testing.T) {
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-5d8f", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
	checkErrs(t, create(t, replicaSetGVK, rs))
	if *rs.Spec.Replicas != 1 || rs.Generation != 1 {
		t.Errorf("replicas %d, generation %d", *rs.Spec.Replicas, rs.Generation)
	}
	rs.Status.Replicas = 3
	if f := mustFor(t, replicaSetGVK).Fields(rs); f["status.replicas"] != "3" {
		t.Errorf("Fields() = %v", f)
	}
	rs.ResourceVersion = "1"
	next := rs.DeepCopy()
	next.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "x": "y"}}
	next.Spec.Template.Labels["x"] = "y"
	checkErrs(t, update(t, replicaSetGVK, next, rs), invd("spec.selector", "field is immutable"))
}

func TestDaemonSet(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: webTemplate(),
		},
	}
	checkErrs(t, create(t, daemonSetGVK, ds))
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || *us.RollingUpdate.MaxUnavailable != intstr.FromInt32(1) ||
		*us.RollingUpdate.MaxSurge != intstr.FromInt32(0) || *ds.Spec.RevisionHistoryLimit != 10 {
		t.Errorf("defaults: %+v", ds.Spec)
	}
	if ds.Annotations[appsv1.DeprecatedTemplateGeneration] != "1" {
		t.Errorf("template generation annotation = %q", ds.Annotations[appsv1.DeprecatedTemplateGeneration])
	}
	ds.ResourceVersion = "1"
	next := ds.DeepCopy()
	next.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	checkErrs(t, update(t, daemonSetGVK, next, ds))
	if next.Generation != 2 || next.Annotations[appsv1.DeprecatedTemplateGeneration] != "2" {
		t.Errorf("after a template change: generation %d, template generation %q", next.Generation, next.Annotations[appsv1.DeprecatedTemplateGeneration])
	}

	bad := ds.DeepCopy()
	bad.Spec.UpdateStrategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(1))
	checkErrs(t, mustFor(t, daemonSetGVK).Validate(bad), invd("spec.updateStrategy.rollingUpdate.maxSurge", "may not be set when maxUnavailable is non-zero"))
}

func TestStatefulSet(t *testing.T) {
	ss := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    webTemplate(),
			VolumeClaimTemplates: []v1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: v1.PersistentVolumeClaimSpec{
					AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
	checkErrs(t, create(t, statefulSetGVK, ss))
	s := ss.Spec
	if *s.Replicas != 1 || s.PodManagementPolicy != appsv1.OrderedReadyPodManagement ||
		s.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType || *s.UpdateStrategy.RollingUpdate.Partition != 0 ||
		*s.RevisionHistoryLimit != 10 || s.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("defaults: %+v", s)
	}
	if c := s.VolumeClaimTemplates[0]; *c.Spec.VolumeMode != v1.PersistentVolumeFilesystem || c.Status.Phase != v1.ClaimPending {
		t.Errorf("claim template defaults: %+v", c)
	}

	badName := ss.DeepCopy()
	badName.Name = "db.primary"
	checkErrs(t, mustFor(t, statefulSetGVK).Validate(badName), invd("metadata.name", "must not contain dots"))

	ss.ResourceVersion = "1"
	next := ss.DeepCopy()
	next.Spec.Replicas = ptr.To[int32](3)
	checkErrs(t, update(t, statefulSetGVK, next, ss))
	next = ss.DeepCopy()
	next.Spec.ServiceName = "other"
	checkErrs(t, update(t, statefulSetGVK, next, ss), forbd("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
}

func TestControllerRevision(t *testing.T) {
	gvk := appsv1.SchemeGroupVersion.WithKind("ControllerRevision")
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "db-7f9c", Namespace: "default"},
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{}}`)},
		Revision:   1,
	}
	checkErrs(t, create(t, gvk, cr))
	cr.ResourceVersion = "1"
	next := cr.DeepCopy()
	next.Data.Raw = []byte(`{"spec":{"x":1}}`)
	checkErrs(t, update(t, gvk, next, cr), invd("data", "field is immutable"))
	empty := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "default"}, Revision: -1}
	checkErrs(t, create(t, gvk, empty), reqd("data", "data is mandatory"), inv("revision"))
}

func TestReplicationController(t *testing.T) {
	gvk := v1.SchemeGroupVersion.WithKind("ReplicationController")
	tmpl := webTemplate()
	rc := &v1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       v1.ReplicationControllerSpec{Template: &tmpl},
	}
	checkErrs(t, create(t, gvk, rc))
	if *rc.Spec.Replicas != 1 || rc.Spec.Selector["app"] != "web" || rc.Labels["app"] != "web" || rc.Generation != 1 {
		t.Errorf("defaults: %+v", rc)
	}
	rc.Status.Replicas = 2
	if f := mustFor(t, gvk).Fields(rc); f["status.replicas"] != "2" {
		t.Errorf("Fields() = %v", f)
	}
	bad := rc.DeepCopy()
	bad.Spec.Selector = map[string]string{"app": "other"}
	checkErrs(t, mustFor(t, gvk).Validate(bad), invd("spec.template.metadata.labels", "`selector` does not match template `labels`"))
}
