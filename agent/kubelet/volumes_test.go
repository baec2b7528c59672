package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"labctl/internal/apitest"
	"labctl/server/apiserver"
)

// fakeObjects is podObjects over maps.
type fakeObjects struct {
	mu          sync.Mutex
	configMaps  map[string]*corev1.ConfigMap // by namespace/name
	secrets     map[string]*corev1.Secret
	services    map[string][]corev1.Service // by namespace
	servicesErr error
	claims      map[string]*corev1.PersistentVolumeClaim // by namespace/name
	pvs         map[string]*corev1.PersistentVolume
	token       string
	tokenErr    error
	tokenCalls  int
}

func newFakeObjects() *fakeObjects {
	return &fakeObjects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		services: map[string][]corev1.Service{}, token: "token-1",
		claims: map[string]*corev1.PersistentVolumeClaim{}, pvs: map[string]*corev1.PersistentVolume{}}
}

func (f *fakeObjects) setConfigMap(ns, name string, data map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configMaps[ns+"/"+name] = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func (f *fakeObjects) setSecret(ns, name string, data map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[ns+"/"+name] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func (f *fakeObjects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cm, ok := f.configMaps[ns+"/"+name]; ok {
		return cm.DeepCopy(), nil
	}
	return nil, objectNotFound("configmap", name)
}

func (f *fakeObjects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.secrets[ns+"/"+name]; ok {
		return s.DeepCopy(), nil
	}
	return nil, objectNotFound("secret", name)
}

func (f *fakeObjects) ServiceAccountToken(_ context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	return f.token, f.tokenErr
}

func (f *fakeObjects) Services(_ context.Context, ns string) ([]corev1.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.services[ns]), f.servicesErr
}

func (f *fakeObjects) PersistentVolumeClaim(_ context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.claims[ns+"/"+name]; ok {
		return c.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), name)
}

func (f *fakeObjects) PersistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pv, ok := f.pvs[name]; ok {
		return pv.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("persistentvolumes"), name)
}

func volPod(volumes ...corev1.Volume) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID("uid-" + testRandHex(6)),
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": "hi \"there\""}},
		Spec: corev1.PodSpec{Volumes: volumes, NodeName: "node1", ServiceAccountName: "default",
			Containers: []corev1.Container{{Name: "c1", Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			}}}},
	}
}

func cmVolume(name, cm string, items ...corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: items}}}
}

func readLink(t *testing.T, p string) string {
	t.Helper()
	l, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func fileContent(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func perm(t *testing.T, p string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode() & (fs.ModePerm | fs.ModeSetgid)
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestVolumeConfigMap(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "app", map[string]string{"a.conf": "a=1\n", "b": "bee", "unused": "x"})
	root := t.TempDir()
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: objs})
	ctx := context.Background()

	vol := cmVolume("cfg", "app",
		corev1.KeyToPath{Key: "a.conf", Path: "conf/a.conf", Mode: ptr.To[int32](0o600)},
		corev1.KeyToPath{Key: "b", Path: "b"})
	vol.ConfigMap.DefaultMode = ptr.To[int32](0o640)
	pod := volPod(vol)
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, string(pod.UID), "volumes", "kubernetes.io~configmap", "cfg")
	ts := readLink(t, filepath.Join(dir, "..data"))
	if !strings.HasPrefix(ts, "..20") {
		t.Errorf("..data -> %s", ts)
	}
	if l := readLink(t, filepath.Join(dir, "conf")); l != "..data/conf" {
		t.Errorf("conf -> %s", l)
	}
	if l := readLink(t, filepath.Join(dir, "b")); l != "..data/b" {
		t.Errorf("b -> %s", l)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{ts, "..data", "b", "conf"}) {
		t.Errorf("volume holds %v", got)
	}
	if c := fileContent(t, filepath.Join(dir, "conf/a.conf")); c != "a=1\n" {
		t.Errorf("a.conf: %q", c)
	}
	if p := perm(t, filepath.Join(dir, "conf/a.conf")); p != 0o600 {
		t.Errorf("a.conf mode %v", p)
	}
	if p := perm(t, filepath.Join(dir, "b")); p != 0o640 {
		t.Errorf("b mode %v", p)
	}
	if p := perm(t, filepath.Join(dir, ts)); p != 0o755 {
		t.Errorf("timestamped dir mode %v", p)
	}
	if p := perm(t, dir); p != 0o777 {
		t.Errorf("volume dir mode %v", p)
	}

	// Nothing changed: nothing written.
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if again := readLink(t, filepath.Join(dir, "..data")); again != ts {
		t.Errorf("rewritten without a change: %s then %s", ts, again)
	}

	// The object changes: a new timestamped dir, the old one gone.
	objs.setConfigMap("default", "app", map[string]string{"a.conf": "a=2\n", "b": "bee"})
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	ts2 := readLink(t, filepath.Join(dir, "..data"))
	if ts2 == ts {
		t.Error("not rewritten after a change")
	}
	if _, err := os.Stat(filepath.Join(dir, ts)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old timestamped dir: %v", err)
	}
	if c := fileContent(t, filepath.Join(dir, "conf/a.conf")); c != "a=2\n" {
		t.Errorf("a.conf after the update: %q", c)
	}

	// All keys, binary data; a key that goes goes from the volume.
	objs.mu.Lock()
	objs.configMaps["default/all"] = &corev1.ConfigMap{Data: map[string]string{"x": "1", "y": "2"}, BinaryData: map[string][]byte{"bin": {0, 1, 2}}}
	objs.mu.Unlock()
	all := volPod(cmVolume("all", "all"))
	if err := vm.SetUp(ctx, all); err != nil {
		t.Fatal(err)
	}
	adir := filepath.Join(root, string(all.UID), "volumes", "kubernetes.io~configmap", "all")
	if c := fileContent(t, filepath.Join(adir, "bin")); c != "\x00\x01\x02" {
		t.Errorf("binary data: %q", c)
	}
	if p := perm(t, filepath.Join(adir, "x")); p != 0o644 {
		t.Errorf("default mode %v", p)
	}
	objs.setConfigMap("default", "all", map[string]string{"x": "1"})
	if err := vm.SetUp(ctx, all); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, adir); len(got) != 3 || got[1] != "..data" || got[2] != "x" {
		t.Errorf("after keys went: %v", got)
	}

	// Missing objects and keys, as upstream's FailedMount messages.
	for _, tc := range []struct {
		vol  corev1.Volume
		want string
	}{
		{cmVolume("cfg", "nope"), `MountVolume.SetUp failed for volume "cfg" : configmap "nope" not found`},
		{cmVolume("cfg", "app", corev1.KeyToPath{Key: "zz", Path: "zz"}), `MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: zz`},
		{corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}},
			`MountVolume.SetUp failed for volume "s" : secret "nope" not found`},
		{corev1.Volume{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "x", Path: "/"}}},
			`MountVolume.SetUp failed for volume "n" : nfs volumes are not supported by labctl (emptyDir, hostPath, configMap, secret, downwardAPI and projected are)`},
		{cmVolume("cfg", "app", corev1.KeyToPath{Key: "b", Path: "../b"}), `MountVolume.SetUp failed for volume "cfg" : invalid path: must not contain '..': ../b`},
		{cmVolume("cfg", "app", corev1.KeyToPath{Key: "b", Path: "..b"}), `MountVolume.SetUp failed for volume "cfg" : invalid path: must not start with '..': ..b`},
	} {
		err := vm.SetUp(ctx, volPod(tc.vol))
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
	// Two failing volumes: both reported; the good one is set up all the same.
	two := volPod(cmVolume("a", "nope1"), cmVolume("ok", "app"), cmVolume("b", "nope2"))
	err := vm.SetUp(ctx, two)
	if err == nil || err.Error() != "MountVolume.SetUp failed for volume \"a\" : configmap \"nope1\" not found\n"+
		"MountVolume.SetUp failed for volume \"b\" : configmap \"nope2\" not found" {
		t.Errorf("two failures: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, string(two.UID), "volumes", "kubernetes.io~configmap", "ok", "b")); err != nil {
		t.Errorf("the good volume: %v", err)
	}

	// Optional: an absent object is an empty volume, an absent key no file.
	opt := cmVolume("opt", "nope", corev1.KeyToPath{Key: "k", Path: "k"})
	opt.ConfigMap.Optional = ptr.To(true)
	opt2 := cmVolume("opt2", "app", corev1.KeyToPath{Key: "zz", Path: "zz"}, corev1.KeyToPath{Key: "b", Path: "b"})
	opt2.ConfigMap.Optional = ptr.To(true)
	op := volPod(opt, opt2)
	if err := vm.SetUp(ctx, op); err != nil {
		t.Fatal(err)
	}
	odir := filepath.Join(root, string(op.UID), "volumes", "kubernetes.io~configmap")
	if got := listDir(t, filepath.Join(odir, "opt")); len(got) != 2 || got[1] != "..data" {
		t.Errorf("optional volume of a missing object: %v", got)
	}
	if got := listDir(t, filepath.Join(odir, "opt2")); len(got) != 3 || got[2] != "b" {
		t.Errorf("optional volume with a missing key: %v", got)
	}
	// The object appears: the next sync shows it.
	objs.setConfigMap("default", "nope", map[string]string{"k": "v"})
	if err := vm.SetUp(ctx, op); err != nil {
		t.Fatal(err)
	}
	if c := fileContent(t, filepath.Join(odir, "opt", "k")); c != "v" {
		t.Errorf("optional object once there: %q", c)
	}
	for _, p := range []*corev1.Pod{pod, all, two, op} {
		if err := vm.TearDown(p.UID); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*corev1.Pod{pod, all, two, op} {
		if _, err := os.Stat(filepath.Join(root, string(p.UID), "volumes")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("volumes of %s left: %v", p.UID, err)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (tmpfs mounts)")
	}
}

func isTmpfs(t *testing.T, p string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

func mountOptions(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			return line
		}
	}
	return ""
}

// noMountsUnder fails the test when something is mounted under dir, and
// unmounts it.
func noMountsUnder(t *testing.T, dir string) {
	t.Helper()
	ms, err := mountPointsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		t.Errorf("left mounted: %s", m)
		unix.Unmount(m, unix.MNT_DETACH)
	}
}

func TestVolumeSecretAndProjected(t *testing.T) {
	requireRoot(t)
	objs := newFakeObjects()
	objs.setSecret("default", "creds", map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cr3t\x00")})
	objs.setConfigMap("default", "kube-root-ca.crt", map[string]string{"ca.crt": "---CA---"})
	root := t.TempDir()
	t.Cleanup(func() { noMountsUnder(t, root) })
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: objs})
	ctx := context.Background()

	secret := corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: "creds", DefaultMode: ptr.To[int32](0o400)}}}
	api := corev1.Volume{Name: "kube-api-access-x1y2z", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3607), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}}
	pod := volPod(secret, api)
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	vols := filepath.Join(root, string(pod.UID), "volumes")
	sdir := filepath.Join(vols, "kubernetes.io~secret", "creds")
	pdir := filepath.Join(vols, "kubernetes.io~projected", "kube-api-access-x1y2z")
	for _, d := range []string{sdir, pdir} {
		if !isTmpfs(t, d) {
			t.Errorf("%s is not a tmpfs", d)
		}
	}
	if c := fileContent(t, filepath.Join(sdir, "pass")); c != "s3cr3t\x00" {
		t.Errorf("secret pass: %q", c)
	}
	if p := perm(t, filepath.Join(sdir, "user")); p != 0o400 {
		t.Errorf("secret mode %v", p)
	}
	for f, want := range map[string]string{"token": "token-1", "ca.crt": "---CA---", "namespace": "default"} {
		if c := fileContent(t, filepath.Join(pdir, f)); c != want {
			t.Errorf("projected %s: %q", f, c)
		}
		if p := perm(t, filepath.Join(pdir, f)); p != 0o644 {
			t.Errorf("projected %s mode %v", f, p)
		}
	}

	// Again: the same mounts (not a second tmpfs), a new token written.
	objs.mu.Lock()
	objs.token = "token-2"
	objs.mu.Unlock()
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if c := fileContent(t, filepath.Join(pdir, "token")); c != "token-2" {
		t.Errorf("renewed token: %q", c)
	}
	if ms, _ := mountPointsUnder(vols); len(ms) != 2 {
		t.Errorf("mounts after a second SetUp: %v", ms)
	}

	// A token that cannot be had: upstream's message; the files stay.
	objs.mu.Lock()
	objs.tokenErr = errors.New(`failed to fetch token: serviceaccounts "default" not found`)
	objs.mu.Unlock()
	err := vm.SetUp(ctx, pod)
	if want := `MountVolume.SetUp failed for volume "kube-api-access-x1y2z" : failed to fetch token: serviceaccounts "default" not found`; err == nil || err.Error() != want {
		t.Errorf("token error: %v", err)
	}
	if c := fileContent(t, filepath.Join(pdir, "token")); c != "token-2" {
		t.Errorf("token after a failed renewal: %q", c)
	}

	// TearDown unmounts and removes; again is harmless.
	if err := vm.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vols); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("volumes dir after TearDown: %v", err)
	}
	noMountsUnder(t, root)
	if err := vm.TearDown(pod.UID); err != nil {
		t.Errorf("TearDown again: %v", err)
	}
	if err := vm.TearDown("../x"); err == nil {
		t.Error("TearDown of a bad UID")
	}

	// fsGroup: the files go to the group, the token is 0640.
	objs.mu.Lock()
	objs.tokenErr = nil
	objs.mu.Unlock()
	gpod := volPod(secret, api)
	gpod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2345)}
	if err := vm.SetUp(ctx, gpod); err != nil {
		t.Fatal(err)
	}
	gp := filepath.Join(root, string(gpod.UID), "volumes", "kubernetes.io~projected", "kube-api-access-x1y2z")
	tok := filepath.Join(gp, "token")
	if p := perm(t, tok); p != 0o640 {
		t.Errorf("token mode with fsGroup: %v", p)
	}
	var st unix.Stat_t
	if err := unix.Stat(tok, &st); err != nil || st.Gid != 2345 {
		t.Errorf("token group: %d %v", st.Gid, err)
	}
	if p := perm(t, filepath.Join(root, string(gpod.UID), "volumes", "kubernetes.io~secret", "creds", "user")); p != 0o440 {
		t.Errorf("secret file with fsGroup: %v", p)
	}
	if err := vm.TearDown(gpod.UID); err != nil {
		t.Fatal(err)
	}
}

func TestVolumeDownwardAPI(t *testing.T) {
	objs := newFakeObjects()
	root := t.TempDir()
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: objs, NodeAllocatable: func() corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	}})
	field := func(path, fp string) corev1.DownwardAPIVolumeFile {
		return corev1.DownwardAPIVolumeFile{Path: path, FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: fp}}
	}
	res := func(path, r, div string) corev1.DownwardAPIVolumeFile {
		return corev1.DownwardAPIVolumeFile{Path: path, ResourceFieldRef: &corev1.ResourceFieldSelector{
			ContainerName: "c1", Resource: r, Divisor: resource.MustParse(div)}}
	}
	pod := volPod(corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{
			field("labels", "metadata.labels"), field("annotations", "metadata.annotations"),
			field("name", "metadata.name"), field("uid", "metadata.uid"), field("app", "metadata.labels['app']"),
			field("meta/note", "metadata.annotations['note']"),
			res("mem_limit", "limits.memory", "1Mi"), res("cpu_limit", "limits.cpu", "1m"), res("cpu_request", "requests.cpu", "1"),
		}}}})
	pod.Spec.Volumes[0].DownwardAPI.Items[2].Mode = ptr.To[int32](0o600)
	if err := vm.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, string(pod.UID), "volumes", "kubernetes.io~downward-api", "info")
	for f, want := range map[string]string{
		"labels": "app=\"web\"\ntier=\"front\"", "annotations": `note="hi \"there\""`, "name": "web", "uid": string(pod.UID),
		"app": "web", "meta/note": `hi "there"`, "mem_limit": "64", "cpu_limit": "2000", "cpu_request": "1",
	} {
		if c := fileContent(t, filepath.Join(dir, f)); c != want {
			t.Errorf("%s: %q, want %q", f, c, want)
		}
	}
	if p := perm(t, filepath.Join(dir, "name")); p != 0o600 {
		t.Errorf("name mode %v", p)
	}
	if l := readLink(t, filepath.Join(dir, "meta")); l != "..data/meta" {
		t.Errorf("meta -> %s", l)
	}
	// The labels change (kubectl label): the file follows.
	pod.Labels["tier"] = "back"
	if err := vm.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if c := fileContent(t, filepath.Join(dir, "labels")); c != "app=\"web\"\ntier=\"back\"" {
		t.Errorf("labels after the change: %q", c)
	}
	// Bad fields: every error, aggregated.
	bad := volPod(corev1.Volume{Name: "bad", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{field("a", "spec.restartPolicy"), field("b", "spec.nope"), res("c", "limits.cpu", "1")}}}})
	bad.Spec.Volumes[0].DownwardAPI.Items[2].ResourceFieldRef.ContainerName = "ghost"
	err := vm.SetUp(context.Background(), bad)
	if want := `MountVolume.SetUp failed for volume "bad" : [unsupported fieldPath: spec.restartPolicy, field label not supported: spec.nope, container ghost not found]`; err == nil || err.Error() != want {
		t.Errorf("bad fields: %v", err)
	}
	for _, p := range []*corev1.Pod{pod, bad} {
		if err := vm.TearDown(p.UID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVolumeEmptyDir(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	t.Cleanup(func() { noMountsUnder(t, root) })
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: newFakeObjects()})
	ctx := context.Background()
	pod := volPod(
		corev1.Volume{Name: "disk", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("8Mi"))}}},
	)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(root, string(pod.UID), "volumes", "kubernetes.io~empty-dir")
	disk, mem := filepath.Join(base, "disk"), filepath.Join(base, "mem")
	for _, d := range []string{disk, mem} {
		if p := perm(t, d); p != 0o777|fs.ModeSetgid {
			t.Errorf("%s mode %v", d, p)
		}
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil || st.Gid != 2000 {
			t.Errorf("%s group %d %v", d, st.Gid, err)
		}
	}
	if isTmpfs(t, disk) {
		t.Error("the disk emptyDir is a tmpfs")
	}
	if !isTmpfs(t, mem) {
		t.Error("the Memory emptyDir is not a tmpfs")
	}
	if line := mountOptions(t, mem); !strings.Contains(line, "size=8192k") {
		t.Errorf("tmpfs mount: %q", line)
	}
	// What the containers write stays across syncs; no second tmpfs.
	for _, d := range []string{disk, mem} {
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{disk, mem} {
		if c := fileContent(t, filepath.Join(d, "f")); c != "data" {
			t.Errorf("%s/f after a sync: %q", d, c)
		}
	}
	if ms, _ := mountPointsUnder(base); len(ms) != 1 {
		t.Errorf("mounts: %v", ms)
	}
	huge := volPod(corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages}}})
	if err := vm.SetUp(ctx, huge); err == nil || !strings.Contains(err.Error(), `emptyDir medium "HugePages" is not supported`) {
		t.Errorf("HugePages: %v", err)
	}
	for _, p := range []*corev1.Pod{pod, huge} {
		if err := vm.TearDown(p.UID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(base); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after TearDown: %v", err)
	}
}

func TestVolumeHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vm := newVolumeManager(volumeConfig{PodsDir: t.TempDir(), Objects: newFakeObjects()})
	hp := func(path string, typ corev1.HostPathType) *corev1.Pod {
		return volPod(corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &typ}}})
	}
	const prefix = `MountVolume.SetUp failed for volume "h" : `
	for _, tc := range []struct {
		path string
		typ  corev1.HostPathType
		want string // "" for no error
	}{
		{filepath.Join(dir, "new/dir"), corev1.HostPathDirectoryOrCreate, ""},
		{filepath.Join(dir, "newfile"), corev1.HostPathFileOrCreate, ""},
		{filepath.Join(dir, "new/dir"), corev1.HostPathDirectory, ""},
		{file, corev1.HostPathFile, ""},
		{file, corev1.HostPathFileOrCreate, ""},
		{"/dev/null", corev1.HostPathCharDev, ""},
		{filepath.Join(dir, "missing"), corev1.HostPathUnset, ""},
		{filepath.Join(dir, "missing"), corev1.HostPathDirectory, "hostPath " + dir + "/missing doesn't exist"},
		{file, corev1.HostPathDirectory, "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{file, corev1.HostPathDirectoryOrCreate, "hostPath type check failed: " + file + " is not a directory, it's a File"},
		{dir, corev1.HostPathFile, "hostPath type check failed: " + dir + " is not a file, it's a Directory"},
		{file, corev1.HostPathSocket, "hostPath type check failed: " + file + " is not a socket file, it's a File"},
		{"/dev/null", corev1.HostPathBlockDev, "hostPath type check failed: /dev/null is not a block device, it's a CharDevice"},
		{dir, corev1.HostPathCharDev, "hostPath type check failed: " + dir + " is not a character device, it's a Directory"},
		{dir + "/../etc", corev1.HostPathDirectory, "invalid HostPath `" + dir + "/../etc`: must not contain '..'"},
		{dir, "Bogus", "Bogus is an invalid volume type"},
	} {
		err := vm.SetUp(context.Background(), hp(tc.path, tc.typ))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", tc.typ, tc.path, err)
		case tc.want != "" && (err == nil || err.Error() != prefix+tc.want):
			t.Errorf("%s %s: got %v\nwant %s", tc.typ, tc.path, err, prefix+tc.want)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "new/dir")); err != nil || !info.IsDir() {
		t.Errorf("DirectoryOrCreate: %v", err)
	}
	if info, err := os.Stat(filepath.Join(dir, "newfile")); err != nil || !info.Mode().IsRegular() {
		t.Errorf("FileOrCreate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SetUp made an untyped hostPath: %v", err)
	}
}

func TestVolumeMounts(t *testing.T) {
	objs := newFakeObjects()
	objs.setConfigMap("default", "app", map[string]string{"app.conf": "x=1"})
	root := t.TempDir()
	host := t.TempDir()
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: objs})
	hostMissing := filepath.Join(host, "made/by/mounts")
	pod := volPod(
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		cmVolume("cfg", "app"),
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostMissing}}},
		corev1.Volume{Name: "logs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	)
	if err := vm.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.TearDown(pod.UID) })
	vols := filepath.Join(root, string(pod.UID), "volumes")
	data := filepath.Join(vols, "kubernetes.io~empty-dir", "data")
	logs := filepath.Join(vols, "kubernetes.io~empty-dir", "logs")
	cfg := filepath.Join(vols, "kubernetes.io~configmap", "cfg")
	c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/deep/er/path"},
		{Name: "cfg", MountPath: "/etc/app"},
		{Name: "host", MountPath: "/host", ReadOnly: true, MountPropagation: ptr.To(corev1.MountPropagationHostToContainer)},
		{Name: "data", MountPath: "/sub", SubPath: "a/b"},
		{Name: "logs", MountPath: "/logs", SubPathExpr: "pods/$(POD_NAME)"},
		{Name: "cfg", MountPath: "/etc/app.conf", SubPath: "app.conf"},
		{Name: "data", MountPath: "/data", MountPropagation: ptr.To(corev1.MountPropagationBidirectional)},
	}}
	got, err := vm.MountsWithEnv(pod, c, []string{"POD_NAME=other", "POD_NAME=web"})
	if err != nil {
		t.Fatal(err)
	}
	ts := readLink(t, filepath.Join(cfg, "..data"))
	bind := func(dest, src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: append([]string{"rbind"}, opts...)}
	}
	want := []specs.Mount{
		bind("/host", hostMissing, "rslave", "ro"),
		bind("/sub", filepath.Join(data, "a/b"), "rprivate", "rw"),
		bind("/logs", filepath.Join(logs, "pods/web"), "rprivate", "rw"),
		bind("/data", data, "rshared", "rw"),
		bind("/etc/app", cfg, "rprivate", "ro"),
		bind("/etc/app.conf", filepath.Join(cfg, ts, "app.conf"), "rprivate", "ro"),
		bind("/deep/er/path", data, "rprivate", "rw"),
	}
	if len(got) != len(want) {
		t.Fatalf("mounts:\n%v\nwant\n%v", got, want)
	}
	for i := range want {
		if got[i].Destination != want[i].Destination || got[i].Source != want[i].Source || got[i].Type != want[i].Type ||
			!slices.Equal(got[i].Options, want[i].Options) {
			t.Errorf("mount %d: %+v\nwant %+v", i, got[i], want[i])
		}
	}
	for _, d := range []string{hostMissing, filepath.Join(data, "a/b"), filepath.Join(logs, "pods/web")} {
		if info, err := os.Stat(d); err != nil || !info.IsDir() {
			t.Errorf("%s not made: %v", d, err)
		}
	}
	if p := perm(t, filepath.Join(data, "a/b")); p != 0o777 {
		t.Errorf("subPath made with mode %v, the volume's is 0777", p)
	}

	// Mounts alone expands a subPathExpr against the spec's values and
	// fieldRefs, the pod's IP from its status.
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.42.0.7"}}
	sc := &corev1.Container{Name: "c", Env: []corev1.EnvVar{
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}},
		{Name: "DIR", Value: "$(POD)-$(IP)"},
	}, VolumeMounts: []corev1.VolumeMount{{Name: "logs", MountPath: "/l", SubPathExpr: "$(DIR)"}}}
	if ms, err := vm.Mounts(pod, sc); err != nil || len(ms) != 1 || ms[0].Source != filepath.Join(logs, "web-10.42.0.7") {
		t.Errorf("subPathExpr from the spec: %+v %v", ms, err)
	}
	sc.VolumeMounts[0].SubPathExpr = "$(FROM_CM)"
	if _, err := vm.Mounts(pod, sc); err == nil || err.Error() != "missing value for FROM_CM" {
		t.Errorf("subPathExpr of an API value without the env: %v", err)
	}

	// A subPath may not lead out of the volume.
	if err := os.Symlink("/etc", filepath.Join(data, "evil")); err != nil {
		t.Fatal(err)
	}
	one := func(m corev1.VolumeMount, env ...string) error {
		_, err := vm.MountsWithEnv(pod, &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{m}}, env)
		return err
	}
	for _, tc := range []struct {
		m    corev1.VolumeMount
		want string
	}{
		{corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "evil"}, fmt.Sprintf("subpath %q not within volume path %q", filepath.Join(data, "evil"), data)},
		{corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "evil/new"}, `failed to create subPath directory for volumeMount "data" of container "c"`},
		{corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "../x"}, "unable to provision SubPath `../x`: must not contain '..'"},
		{corev1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "$(A)/$(NOPE)/$(EMPTY)"}, "missing value for EMPTY, NOPE"},
		{corev1.VolumeMount{Name: "nope", MountPath: "/x"}, `cannot find volume "nope" to mount into container "c"`},
		{corev1.VolumeMount{Name: "data", MountPath: "/x", MountPropagation: ptr.To[corev1.MountPropagationMode]("Sideways")}, `invalid MountPropagation mode: "Sideways"`},
	} {
		if err := one(tc.m, "A=a", "EMPTY="); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: got %v\nwant %s", tc.m, err, tc.want)
		}
	}
	if _, err := os.Stat("/etc/new"); err == nil {
		t.Error("a subPath was made outside the volume")
	}
	// A volume SetUp did not make.
	other := volPod(corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	if _, err := vm.Mounts(other, &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/d"}}}); err == nil ||
		err.Error() != `volume "data" of container "c" is not set up` {
		t.Errorf("volume not set up: %v", err)
	}
}

func TestWriteAtomicNested(t *testing.T) {
	dir := t.TempDir()
	files := map[string]fileProjection{"a/b/c": {[]byte("1"), 0o644}, "a/d": {[]byte("2"), 0o644}, "e": {[]byte("3"), 0o644}}
	if changed, err := writeAtomic(dir, files, nil); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if c := fileContent(t, filepath.Join(dir, "a/b/c")); c != "1" {
		t.Errorf("a/b/c: %q", c)
	}
	// a/b goes, a/d stays: "a" stays visible, only the data changes.
	delete(files, "a/b/c")
	if changed, err := writeAtomic(dir, files, nil); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a/b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a/b: %v", err)
	}
	if c := fileContent(t, filepath.Join(dir, "a/d")); c != "2" {
		t.Errorf("a/d: %q", c)
	}
	if changed, err := writeAtomic(dir, files, nil); err != nil || changed {
		t.Errorf("unchanged payload written again: %v %v", changed, err)
	}
	// A write that failed half-way left a timestamped dir and a tmp link:
	// the next write clears them.
	os.Mkdir(filepath.Join(dir, "..2020_01_01_00_00_00.123"), 0o755)
	os.Symlink("nowhere", filepath.Join(dir, "..data_tmp"))
	files["e"] = fileProjection{[]byte("4"), 0o644}
	if _, err := writeAtomic(dir, files, nil); err != nil {
		t.Fatal(err)
	}
	got := listDir(t, dir)
	if len(got) != 4 || got[1] != "..data" || got[2] != "a" || got[3] != "e" {
		t.Errorf("dir after the write: %v", got)
	}
	for _, bad := range []string{"", "/abs", "a/../b", "..x", strings.Repeat("n", 256)} {
		if _, err := writeAtomic(dir, map[string]fileProjection{bad: {}}, nil); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// TestAPIObjects reads through the API server: upstream's kubelet wording
// of missing objects, the services, tokens cached until 80% of their life.
func TestAPIObjects(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := apitest.Start(t, func(c *apiserver.Config) {
		c.ServiceAccounts = apiserver.ServiceAccountConfig{Key: key}
	})
	var tokenRequests atomic.Int32
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
				tokenRequests.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	objs := newAPIObjects(cs).(*apiObjects)
	if cm, err := objs.ConfigMap(ctx, "default", "cm"); err != nil || cm.Data["k"] != "v" {
		t.Errorf("ConfigMap: %v %v", cm, err)
	}
	if _, err := objs.ConfigMap(ctx, "default", "nope"); err == nil || err.Error() != `configmap "nope" not found` {
		t.Errorf("missing ConfigMap: %v", err)
	}
	if _, err := objs.Secret(ctx, "default", "nope"); err == nil || err.Error() != `secret "nope" not found` {
		t.Errorf("missing Secret: %v", err)
	}
	svcs, err := objs.Services(ctx, "default")
	if err != nil || len(svcs) != 1 || svcs[0].Name != "web" || svcs[0].Spec.ClusterIP == "" {
		t.Errorf("Services: %+v %v", svcs, err)
	}

	now := time.Now()
	objs.now = func() time.Time { return now }
	src := &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To[int64](3600), Path: "token"}
	tok, err := objs.ServiceAccountToken(ctx, pod, src)
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q: %v", tok, err)
	}
	if again, err := objs.ServiceAccountToken(ctx, pod, src); err != nil || again != tok || tokenRequests.Load() != 1 {
		t.Errorf("second read: same token %v, %d requests, %v", again == tok, tokenRequests.Load(), err)
	}
	// Past 80% of its hour: a new one.
	now = now.Add(49 * time.Minute)
	if _, err := objs.ServiceAccountToken(ctx, pod, src); err != nil || tokenRequests.Load() != 2 {
		t.Errorf("renewal: %d requests, %v", tokenRequests.Load(), err)
	}
	// Another audience is another token.
	if _, err := objs.ServiceAccountToken(ctx, pod, &corev1.ServiceAccountTokenProjection{Audience: "vault", Path: "t"}); err != nil || tokenRequests.Load() != 3 {
		t.Errorf("other audience: %d requests, %v", tokenRequests.Load(), err)
	}
	// A pod of a service account that is not there.
	ghost := pod.DeepCopy()
	ghost.Spec.ServiceAccountName = "ghost"
	if _, err := objs.ServiceAccountToken(ctx, ghost, src); err == nil || !strings.HasPrefix(err.Error(), "failed to fetch token: ") {
		t.Errorf("token of a missing service account: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		root, path string
		want       bool
	}{
		{"/a", "/a", true}, {"/a", "/a/b", true}, {"/a", "/ab", false}, {"/a/b", "/a", false}, {"/", "/etc", true},
	} {
		if got := within(tc.root, tc.path); got != tc.want {
			t.Errorf("within(%q, %q) = %v", tc.root, tc.path, got)
		}
	}
}

func TestVolumeClaim(t *testing.T) {
	objs := newFakeObjects()
	root, store := t.TempDir(), t.TempDir()
	vm := newVolumeManager(volumeConfig{PodsDir: root, Objects: objs})
	ctx := context.Background()
	claimVol := func(name string, readOnly bool) corev1.Volume {
		return corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name, ReadOnly: readOnly}}}
	}
	pod := volPod(claimVol("data", false))
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/data"}}

	// Missing, then unbound: upstream's words, and nothing to mount.
	if err := vm.SetUp(ctx, pod); err == nil || !strings.Contains(err.Error(), `persistentvolumeclaims "data" not found`) {
		t.Fatalf("SetUp: %v", err)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "data", UID: "claim-uid"},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}}
	objs.claims["default/data"] = pvc
	if err := vm.SetUp(ctx, pod); err == nil || !strings.Contains(err.Error(), `PVC default/data has non-bound phase ("Pending")`) {
		t.Fatalf("SetUp: %v", err)
	}
	if _, err := vm.Mounts(pod, &pod.Spec.Containers[0]); err == nil {
		t.Fatal("a claim that is not set up mounts")
	}

	// Bound to a hostPath volume (as local-path makes them): created, mounted read-write.
	dir := filepath.Join(store, "pvc-claim-uid_default_data")
	pvc.Spec.VolumeName, pvc.Status.Phase = "pvc-claim-uid", corev1.ClaimBound
	objs.pvs["pvc-claim-uid"] = &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-claim-uid"},
		Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: dir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}}}
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("the volume's directory: %v", err)
	}
	mounts, err := vm.Mounts(pod, &pod.Spec.Containers[0])
	if err != nil || len(mounts) != 1 || mounts[0].Source != dir || mounts[0].Destination != "/var/lib/data" || !slices.Contains(mounts[0].Options, "rw") {
		t.Fatalf("mounts %+v, %v", mounts, err)
	}

	// A read-only claim volume mounts read-only.
	ro := volPod(claimVol("data", true))
	ro.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if err := vm.SetUp(ctx, ro); err != nil {
		t.Fatal(err)
	}
	if mounts, err := vm.Mounts(ro, &ro.Spec.Containers[0]); err != nil || !slices.Contains(mounts[0].Options, "ro") {
		t.Fatalf("mounts %+v, %v", mounts, err)
	}

	// A volume bound to another claim of that name, and an unsupported source.
	objs.pvs["pvc-claim-uid"].Spec.ClaimRef.UID = "other"
	other := volPod(claimVol("data", false))
	if err := vm.SetUp(ctx, other); err == nil || !strings.Contains(err.Error(), "to be bound to claim default/data") {
		t.Fatalf("SetUp: %v", err)
	}
	objs.pvs["pvc-claim-uid"].Spec.ClaimRef.UID = "claim-uid"
	objs.pvs["pvc-claim-uid"].Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}}
	if err := vm.SetUp(ctx, other); err == nil || !strings.Contains(err.Error(), "nfs volumes are not supported") {
		t.Fatalf("SetUp: %v", err)
	}

	// An ephemeral volume: the claim <pod>-<volume>, which the pod must own.
	eph := volPod(corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}})
	eph.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	objs.pvs["pvc-claim-uid"].Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
		Path: dir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}
	ephClaim := pvc.DeepCopy()
	ephClaim.Name = eph.Name + "-scratch"
	objs.claims["default/"+ephClaim.Name] = ephClaim
	if err := vm.SetUp(ctx, eph); err == nil || !strings.Contains(err.Error(), "was not created for pod default/web (pod is not owner)") {
		t.Fatalf("SetUp of a claim the pod does not own: %v", err)
	}
	ephClaim.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: eph.Name, UID: eph.UID, Controller: ptr.To(true)}}
	if err := vm.SetUp(ctx, eph); err != nil {
		t.Fatal(err)
	}
	if mounts, err := vm.Mounts(eph, &eph.Spec.Containers[0]); err != nil || mounts[0].Source != dir || !slices.Contains(mounts[0].Options, "rw") {
		t.Fatalf("mounts %+v, %v", mounts, err)
	}

	// Torn down: forgotten; the volume's data stays.
	if err := vm.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Mounts(pod, &pod.Spec.Containers[0]); err == nil {
		t.Error("a torn-down pod's claim still mounts")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the volume's directory went with the pod: %v", err)
	}
}
