package kubelet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// TestVolumesInContainers runs a pod with volumes and a resolved
// environment on the real runtime (root, containerd, runc): two containers
// share an emptyDir, a configMap volume shows its items and then their
// update, a Memory emptyDir is a tmpfs, a secret volume and variables from
// a ConfigMap, a Secret and fieldRefs reach the container.
func TestVolumesInContainers(t *testing.T) {
	env := startRuntime(t)
	rt := env.rt
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	objs := newFakeObjects()
	objs.setConfigMap("default", "app", map[string]string{"greeting": "hello", "color": "blue"})
	objs.setSecret("default", "creds", map[string][]byte{"password": []byte("s3cr3t")})
	vm := newVolumeManager(volumeConfig{PodsDir: filepath.Join(rt.cfg.Root, "pods"), Objects: objs})

	writer := corev1.Container{Name: "writer", Command: []string{"sh", "-c", "echo from-writer > /shared/msg; sleep 300"},
		VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}}
	reader := corev1.Container{Name: "reader", Command: []string{"sleep", "300"},
		EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		Env: []corev1.EnvVar{
			{Name: "FROM_CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "greeting"}}},
			{Name: "FROM_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "MESSAGE", Value: "$(FROM_CM) from $(POD_NAME)"},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "shared", MountPath: "/data", ReadOnly: true},
			{Name: "cfg", MountPath: "/etc/app"},
			{Name: "cfg", MountPath: "/greeting", SubPath: "greeting.txt"},
			{Name: "mem", MountPath: "/cache"},
			{Name: "creds", MountPath: "/secrets"},
			{Name: "shared", MountPath: "/logs", SubPathExpr: "logs/$(POD_NAME)"},
		}}
	pod := testPod("vols", writer, reader)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		cmVolume("cfg", "app", corev1.KeyToPath{Key: "greeting", Path: "greeting.txt"}),
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("8Mi"))}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}

	var ids []string
	// Runs before startRuntime's KillPod: the containers go, then the
	// volumes' mounts, then the pod directory.
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		for _, id := range ids {
			if err := rt.RemoveContainer(cctx, id, 0); err != nil {
				t.Errorf("remove container: %v", err)
			}
		}
		if err := vm.TearDown(pod.UID); err != nil {
			t.Errorf("TearDown: %v", err)
		}
		noMountsUnder(t, filepath.Join(rt.cfg.Root, "pods", string(pod.UID), "volumes"))
	})

	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	sb, err := rt.RunSandbox(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		cenv, err := containerEnvironment(ctx, objs, pod, c, []string{sb.IP}, []string{"192.0.2.1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mounts, err := vm.MountsWithEnv(pod, c, cenv)
		if err != nil {
			t.Fatal(err)
		}
		id, err := rt.StartContainer(ctx, pod, c, sb, startOptions{Env: cenv, Mounts: mounts})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		waitState(t, rt, id, func(s containerState) bool { return s.Running != nil })
	}
	readerID := ids[1]
	exec := func(cmd ...string) (string, int) {
		t.Helper()
		// Two buffers: the streams are copied concurrently, and a
		// bytes.Buffer is not safe for two writers.
		var out, errb bytes.Buffer
		code, err := rt.Exec(ctx, readerID, execOptions{Cmd: cmd, Stdout: &out, Stderr: &errb})
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		return out.String() + errb.String(), code
	}
	eventually := func(what string, cmd []string, want string) {
		t.Helper()
		var got string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if got, _ = exec(cmd...); got == want {
				return
			}
		}
		t.Errorf("%s: %q, want %q", what, got, want)
	}

	// The emptyDir the writer wrote into, read-only here.
	eventually("the shared emptyDir", []string{"cat", "/data/msg"}, "from-writer\n")
	if out, code := exec("sh", "-c", "echo no > /data/other"); code == 0 {
		t.Errorf("wrote into a readOnly mount: %q", out)
	}
	// The subPathExpr's directory, in the shared volume.
	if out, code := exec("sh", "-c", "echo log > /logs/app.log && cat /logs/app.log"); code != 0 || out != "log\n" {
		t.Errorf("subPathExpr mount: %d %q", code, out)
	}
	if data, err := os.ReadFile(filepath.Join(rt.cfg.Root, "pods", string(pod.UID), "volumes", pluginEmptyDir, "shared", "logs", "vols", "app.log")); err != nil || string(data) != "log\n" {
		t.Errorf("subPathExpr on the node: %q %v", data, err)
	}

	// The configMap volume: its item through ..data, read-only.
	if out, _ := exec("cat", "/etc/app/greeting.txt"); out != "hello" {
		t.Errorf("configMap item: %q", out)
	}
	if out, code := exec("ls", "-a", "/etc/app"); !strings.Contains(out, "..data") || !strings.Contains(out, "greeting.txt") || strings.Contains(out, "color") {
		t.Errorf("configMap volume lists %q (exit code %d)", out, code)
	}
	if _, code := exec("sh", "-c", "echo x > /etc/app/new"); code == 0 {
		t.Error("wrote into a configMap volume")
	}
	// kubectl edit cm: the next SetUp shows it in the running container;
	// the subPath mount keeps the old file, as upstream.
	objs.setConfigMap("default", "app", map[string]string{"greeting": "bonjour", "color": "blue"})
	if err := vm.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	eventually("the configMap after its update", []string{"cat", "/etc/app/greeting.txt"}, "bonjour")
	if out, _ := exec("cat", "/greeting"); out != "hello" {
		t.Errorf("subPath of the configMap after the update: %q", out)
	}

	// The Memory emptyDir is a tmpfs of its size limit.
	mounts, _ := exec("cat", "/proc/mounts")
	var cache string
	for _, line := range strings.Split(mounts, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == "/cache" {
			cache = line
		}
	}
	if f := strings.Fields(cache); len(f) < 4 || f[2] != "tmpfs" || !strings.Contains(f[3], "size=8192k") {
		t.Errorf("/cache in the container: %q", cache)
	}
	if out, code := exec("sh", "-c", "echo cached > /cache/f && cat /cache/f"); code != 0 || out != "cached\n" {
		t.Errorf("writing the Memory emptyDir: %d %q", code, out)
	}
	if out, _ := exec("cat", "/secrets/password"); out != "s3cr3t" {
		t.Errorf("secret volume: %q", out)
	}

	// The environment.
	out, _ := exec("env")
	vars := strings.Split(strings.TrimSpace(out), "\n")
	for _, want := range []string{"FROM_CM=hello", "FROM_SECRET=s3cr3t", "POD_NAME=vols", "POD_IP=" + sb.IP,
		"MESSAGE=hello from vols", "CFG_greeting=hello", "CFG_color=blue"} {
		if !slices.Contains(vars, want) {
			t.Errorf("no %s in the container's env:\n%s", want, out)
		}
	}
}
