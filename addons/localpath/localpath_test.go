package localpath_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"labctl/addons/localpath"
	"labctl/internal/apitest"
)

const (
	node  = "node-a"
	other = "node-b"
	// hostname is node's kubernetes.io/hostname label, which the volumes'
	// node affinity names.
	hostname = "node-a.example"
)

// env is an API server with the local-path class and node's provisioner
// running against it.
type env struct {
	cs  kubernetes.Interface
	dir string // the provisioner's StorageDir
}

// client is a client of a new API server, not throttled.
func client(t *testing.T) kubernetes.Interface {
	rc := apitest.Start(t)
	rc.QPS, rc.Burst = -1, 0
	return kubernetes.NewForConfigOrDie(rc)
}

func start(t *testing.T) *env {
	t.Helper()
	cs := client(t)
	ctx := context.Background()
	if err := localpath.EnsureStorageClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: node, Labels: map[string]string{corev1.LabelHostname: hostname},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cs: cs, dir: filepath.Join(t.TempDir(), "storage")}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- localpath.Run(runCtx, localpath.Config{Client: cs, NodeName: node, StorageDir: e.dir, Logger: testLogger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
	return e
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually retries fn for up to 10 s until it returns nil.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// claimOpts change a claim before it is created.
type claimOpt func(*corev1.PersistentVolumeClaim)

func onNode(n string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Annotations["volume.kubernetes.io/selected-node"] = n }
}

func modes(m ...corev1.PersistentVolumeAccessMode) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = m }
}

// createClaim creates a claim of the local-path class as the scheduler
// and the PV controller leave it for the provisioner: its node selected
// (node unless an option says otherwise), the provisioner named.
func (e *env) createClaim(t *testing.T, name string, opts ...claimOpt) *corev1.PersistentVolumeClaim {
	t.Helper()
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: map[string]string{
			"volume.kubernetes.io/selected-node":            node,
			"volume.kubernetes.io/storage-provisioner":      localpath.ProvisionerName,
			"volume.beta.kubernetes.io/storage-provisioner": localpath.ProvisionerName,
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(localpath.StorageClassName),
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
			},
		},
	}
	for _, o := range opts {
		o(c)
	}
	c, err := e.cs.CoreV1().PersistentVolumeClaims("default").Create(context.Background(), c, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitVolume waits for the claim's volume.
func (e *env) awaitVolume(t *testing.T, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	t.Helper()
	var pv *corev1.PersistentVolume
	eventually(t, "the volume of claim "+c.Name, func() (err error) {
		pv, err = e.cs.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-"+string(c.UID), metav1.GetOptions{})
		return err
	})
	return pv
}

// event finds an event of reason about the object.
func (e *env) event(kind, name, reason string) (*corev1.Event, error) {
	list, err := e.cs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for i, ev := range list.Items {
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name && ev.Reason == reason {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no %s event on %s %s", reason, kind, name)
}

func (e *env) awaitEvent(t *testing.T, kind, name, reason string) *corev1.Event {
	t.Helper()
	var ev *corev1.Event
	eventually(t, "the "+reason+" event", func() (err error) {
		ev, err = e.event(kind, name, reason)
		return err
	})
	return ev
}

func TestProvision(t *testing.T) {
	e := start(t)
	// Before the claim to provision, which is the barrier: claims of
	// another node, and of another provisioner, are left alone.
	elsewhere := e.createClaim(t, "elsewhere", onNode(other))
	foreign := e.createClaim(t, "foreign", func(c *corev1.PersistentVolumeClaim) {
		c.Annotations["volume.kubernetes.io/storage-provisioner"] = "example.com/other"
	})
	c := e.createClaim(t, "data")
	pv := e.awaitVolume(t, c)

	dir := filepath.Join(e.dir, "pvc-"+string(c.UID)+"_default_data")
	want := corev1.PersistentVolumeSpec{
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")},
		PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: dir, Type: ptr.To(corev1.HostPathDirectoryOrCreate),
		}},
		AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "data", UID: c.UID, ResourceVersion: c.ResourceVersion},
		PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
		StorageClassName:              localpath.StorageClassName,
		VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
		NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname}}},
		}}}},
	}
	if !equality.Semantic.DeepEqual(pv.Spec, want) {
		t.Errorf("volume spec:\n%+v\nwant\n%+v", pv.Spec, want)
	}
	for k, v := range map[string]string{"pv.kubernetes.io/provisioned-by": localpath.ProvisionerName, "local.path.provisioner/selected-node": node} {
		if pv.Annotations[k] != v {
			t.Errorf("volume annotation %s = %q, want %q", k, pv.Annotations[k], v)
		}
	}
	for path, mode := range map[string]fs.FileMode{e.dir: 0o700, dir: 0o777} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want a directory of mode %v", path, fi.Mode(), mode)
		}
	}

	ev := e.awaitEvent(t, "PersistentVolumeClaim", "data", "Provisioning")
	if want := `External provisioner is provisioning volume for claim "default/data"`; ev.Message != want || ev.Type != corev1.EventTypeNormal {
		t.Errorf("Provisioning event: %s %q, want Normal %q", ev.Type, ev.Message, want)
	}
	if ev.Source.Component != "rancher.io/local-path_"+node {
		t.Errorf("event source %q, want rancher.io/local-path_%s", ev.Source.Component, node)
	}
	ev = e.awaitEvent(t, "PersistentVolumeClaim", "data", "ProvisioningSucceeded")
	if want := "Successfully provisioned volume " + pv.Name; ev.Message != want {
		t.Errorf("ProvisioningSucceeded event %q, want %q", ev.Message, want)
	}

	for _, ignored := range []*corev1.PersistentVolumeClaim{elsewhere, foreign} {
		if _, err := e.cs.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-"+string(ignored.UID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("claim %s: volume: %v, want none", ignored.Name, err)
		}
		if ev, err := e.event("PersistentVolumeClaim", ignored.Name, "Provisioning"); err == nil {
			t.Errorf("claim %s has an event %q, want none", ignored.Name, ev.Message)
		}
	}
	entries, _ := os.ReadDir(e.dir)
	if len(entries) != 1 {
		t.Errorf("%s holds %d entries, want the one volume's", e.dir, len(entries))
	}

	// ReadWriteOncePod, which is alone, is fine too.
	pod := e.awaitVolume(t, e.createClaim(t, "pod", modes(corev1.ReadWriteOncePod)))
	if !slices.Equal(pod.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}) {
		t.Errorf("access modes %v, want [ReadWriteOncePod]", pod.Spec.AccessModes)
	}
}

func TestProvisionRefuses(t *testing.T) {
	e := start(t)
	for _, tt := range []struct {
		name string
		opt  claimOpt
		want string
	}{
		{"rwx", modes(corev1.ReadWriteMany),
			`failed to provision volume with StorageClass "local-path": NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes`},
		{"rox", modes(corev1.ReadWriteOnce, corev1.ReadOnlyMany),
			`failed to provision volume with StorageClass "local-path": NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes`},
		{"block", func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock) },
			"rancher.io/local-path does not support block volume provisioning"},
		{"selector", func(c *corev1.PersistentVolumeClaim) {
			c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"disk": "ssd"}}
		}, `failed to provision volume with StorageClass "local-path": claim.Spec.Selector is not supported`},
		{"volume-type", func(c *corev1.PersistentVolumeClaim) { c.Annotations["volumeType"] = "nfs" },
			`failed to provision volume with StorageClass "local-path": failed to create persistent volume source: "nfs" is not a recognised volume type`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.createClaim(t, tt.name, tt.opt)
			ev := e.awaitEvent(t, "PersistentVolumeClaim", c.Name, "ProvisioningFailed")
			if ev.Type != corev1.EventTypeWarning || ev.Message != tt.want {
				t.Errorf("event: %s %q, want Warning %q", ev.Type, ev.Message, tt.want)
			}
			if _, err := e.cs.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-"+string(c.UID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("volume: %v, want none", err)
			}
			if ev, err := e.event("PersistentVolumeClaim", c.Name, "Provisioning"); err == nil {
				t.Errorf("a Provisioning event %q, want none", ev.Message)
			}
			if m, _ := filepath.Glob(filepath.Join(e.dir, "pvc-"+string(c.UID)+"*")); len(m) > 0 {
				t.Errorf("directories %q, want none", m)
			}
		})
	}
}

// TestLocalVolumeType: a class's defaultVolumeType (k3s's class has
// "local") makes local volumes.
func TestLocalVolumeType(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	_, err := e.cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "local", Annotations: map[string]string{"defaultVolumeType": "local"}},
		Provisioner:       localpath.ProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimRetain),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.createClaim(t, "db", func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("local") })
	pv := e.awaitVolume(t, c)
	want := corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: filepath.Join(e.dir, pv.Name+"_default_db")}}
	if !equality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, want) {
		t.Errorf("volume source %+v, want %+v", pv.Spec.PersistentVolumeSource, want)
	}
	if pv.Spec.StorageClassName != "local" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("class %q, reclaim policy %s; want local, Retain", pv.Spec.StorageClassName, pv.Spec.PersistentVolumeReclaimPolicy)
	}
}

// release marks the volume Released, as the PV controller does when its
// claim is gone.
func (e *env) release(t *testing.T, pv *corev1.PersistentVolume) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "release "+pv.Name, func() error {
		cur, err := e.cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Phase = corev1.VolumeReleased
		_, err = e.cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// createVolume creates a volume that claims to be the provisioner's on
// nodeName, at path.
func (e *env) createVolume(t *testing.T, name, nodeName, path string, reclaim corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	t.Helper()
	pv, err := e.cs.CoreV1().PersistentVolumes().Create(context.Background(), &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			"pv.kubernetes.io/provisioned-by": localpath.ProvisionerName, "local.path.provisioner/selected-node": nodeName,
		}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              localpath.StorageClassName,
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
			}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// awaitDeleted waits for the volume to be deleted: gone, or held by the
// pv-protection finalizer that the API server adds, which no controller
// removes here.
func (e *env) awaitDeleted(t *testing.T, name string) {
	t.Helper()
	eventually(t, "the deletion of volume "+name, func() error {
		pv, err := e.cs.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case pv.DeletionTimestamp == nil:
			return errors.New("not deleted")
		}
		return nil
	})
}

// kept fails unless the volume is there and not being deleted.
func (e *env) kept(t *testing.T, name string) {
	t.Helper()
	pv, err := e.cs.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || pv.DeletionTimestamp != nil {
		t.Errorf("volume %s: %v (deleted at %v), want it kept", name, err, pv.GetDeletionTimestamp())
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("keep?\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDelete(t *testing.T) {
	e := start(t)
	ctx := context.Background()

	// Kept: a Retain volume, and Delete volumes whose paths are not a
	// volume directory of the storage directory, or that are another
	// node's.
	retained := e.awaitVolume(t, e.createClaim(t, "retained"))
	retainedDir := retained.Spec.HostPath.Path
	if _, err := e.cs.CoreV1().PersistentVolumes().Patch(ctx, retained.Name, "application/merge-patch+json",
		[]byte(`{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// (The API refuses paths with "..".)
	outside := mkdir(t, filepath.Join(t.TempDir(), "precious"))
	sibling := mkdir(t, filepath.Join(e.dir, "pvc-0a0a0a0a-0000-4000-8000-000000000000_default_other"))
	through := filepath.Join(e.dir, "pvc-through_default_x")
	if err := os.Symlink(outside, through); err != nil {
		t.Fatal(err)
	}
	kept := []*corev1.PersistentVolume{
		e.createVolume(t, "pvc-outside", node, outside, corev1.PersistentVolumeReclaimDelete),
		e.createVolume(t, "pvc-root", node, e.dir, corev1.PersistentVolumeReclaimDelete),
		e.createVolume(t, "pvc-sibling", node, sibling, corev1.PersistentVolumeReclaimDelete),
		e.createVolume(t, "pvc-through", node, filepath.Join(through, "data"), corev1.PersistentVolumeReclaimDelete),
		e.createVolume(t, "pvc-relative", node, "relative/pvc-relative_default_x", corev1.PersistentVolumeReclaimDelete),
	}
	// A volume directory that is a symbolic link goes; what it points
	// at stays.
	link := filepath.Join(e.dir, "pvc-link_default_x")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	linked := e.createVolume(t, "pvc-link", node, link, corev1.PersistentVolumeReclaimDelete)
	elsewhereDir := mkdir(t, filepath.Join(e.dir, "pvc-elsewhere_default_x"))
	elsewhere := e.createVolume(t, "pvc-elsewhere", other, elsewhereDir, corev1.PersistentVolumeReclaimDelete)
	for _, pv := range append([]*corev1.PersistentVolume{retained, elsewhere, linked}, kept...) {
		e.release(t, pv)
	}

	// Deleted: the Released Delete volume of a claim.
	c := e.createClaim(t, "scratch")
	pv := e.awaitVolume(t, c)
	dir := pv.Spec.HostPath.Path
	mkdir(t, filepath.Join(dir, "sub"))
	e.release(t, pv)
	e.awaitDeleted(t, pv.Name)
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: %v, want it removed", dir, err)
	}
	e.awaitDeleted(t, linked.Name)
	if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: %v, want it removed", link, err)
	}

	for _, pv := range kept {
		ev := e.awaitEvent(t, "PersistentVolume", pv.Name, "VolumeFailedDelete")
		if ev.Type != corev1.EventTypeWarning || !strings.HasPrefix(ev.Message, "failed to delete volume "+pv.Name+": ") {
			t.Errorf("%s: event %s %q, want Warning failed to delete volume %s: ...", pv.Name, ev.Type, ev.Message, pv.Name)
		}
		e.kept(t, pv.Name)
	}
	for _, d := range []string{outside, sibling, elsewhereDir} {
		if _, err := os.Stat(filepath.Join(d, "data")); err != nil {
			t.Errorf("%v, want it kept", err)
		}
	}
	if _, err := os.Stat(retainedDir); err != nil {
		t.Errorf("the retained volume's directory: %v, want it kept", err)
	}
	for _, pv := range []*corev1.PersistentVolume{retained, elsewhere} {
		e.kept(t, pv.Name)
		if ev, err := e.event("PersistentVolume", pv.Name, "VolumeFailedDelete"); err == nil {
			t.Errorf("volume %s has an event %q, want none", pv.Name, ev.Message)
		}
	}
}

func TestStorageClass(t *testing.T) {
	cs := client(t)
	ctx := context.Background()
	classes := cs.StorageV1().StorageClasses()
	for range 2 {
		if err := localpath.EnsureStorageClass(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	sc, err := classes.Get(ctx, "local-path", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Provisioner != "rancher.io/local-path" || ptr.Deref(sc.ReclaimPolicy, "") != corev1.PersistentVolumeReclaimDelete ||
		ptr.Deref(sc.VolumeBindingMode, "") != storagev1.VolumeBindingWaitForFirstConsumer ||
		sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("storage class %+v, want k3s's local-path", sc)
	}

	// The user's changes stay.
	sc.Annotations["storageclass.kubernetes.io/is-default-class"] = "false"
	if _, err := classes.Update(ctx, sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := localpath.EnsureStorageClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if sc, err = classes.Get(ctx, "local-path", metav1.GetOptions{}); err != nil || sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "false" {
		t.Errorf("after EnsureStorageClass: %v, %v; want the user's annotation kept", sc.Annotations, err)
	}

	for range 2 {
		if err := localpath.RemoveStorageClass(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := classes.Get(ctx, "local-path", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after RemoveStorageClass: %v, want it gone", err)
	}

	// A local-path class the user made is not labctl's to remove.
	mine := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}, Provisioner: "example.com/mine",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}
	if _, err := classes.Create(ctx, mine, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := localpath.RemoveStorageClass(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if sc, err := classes.Get(ctx, "local-path", metav1.GetOptions{}); err != nil || sc.Provisioner != "example.com/mine" {
		t.Errorf("the user's class: %v, want it kept", err)
	}
}
