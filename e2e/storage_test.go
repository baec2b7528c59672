package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStorage follows the course's storage chapter on a real node: the
// default local-path StorageClass, a claim that waits for its first
// consumer, a volume provisioned on the node that outlives its pods,
// the claim protected while a pod uses it, the volume and its directory
// removed with the claim; and a static hostPath volume of a class that
// does not exist ("manual", as upstream's tutorial) bound at once; a
// generic ephemeral volume, its claim made for the pod and gone with it.
func TestStorage(t *testing.T) {
	n := startNodeCluster(t)
	const ns = "storage"
	ok(t, n.admin(t, "create", "namespace", ns))
	img := importedImage

	okWith(t, n.admin(t, "get", "storageclass"), "local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer")

	t.Run("dynamic provisioning", func(t *testing.T) {
		n.apply(t, `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: storage}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`)
		// No consumer yet: Pending, and the event says why.
		waitFor(t, 20*time.Second, "the WaitForFirstConsumer event", func() error {
			r := n.admin(t, "describe", "pvc", "-n", ns, "data")
			for _, want := range []string{"WaitForFirstConsumer", "Pending", "StorageClass:  local-path", "kubernetes.io/pvc-protection"} {
				if !strings.Contains(r.stdout, want) {
					return fmt.Errorf("no %q in:\n%s", want, r.stdout)
				}
			}
			return nil
		})

		n.apply(t, claimPod("writer", img, "echo kept > /data/file && sleep 3600"))
		n.waitPod(t, ns, "writer", 60*time.Second, "Running", phaseIs("Running"))
		pvc := n.admin(t, "get", "pvc", "-n", ns, "data", "-o", "jsonpath={.status.phase} {.spec.volumeName} {.metadata.uid} {.metadata.annotations.volume\\.kubernetes\\.io/selected-node}")
		fields := strings.Fields(pvc.stdout)
		if len(fields) != 4 || fields[0] != "Bound" || fields[1] != "pvc-"+fields[2] || fields[3] != nodeName {
			t.Fatalf("the claim: %s", pvc)
		}
		pv := fields[1]
		okWith(t, n.admin(t, "get", "pvc", "-n", ns), "data", "Bound", pv, "1Gi", "RWO", "local-path")
		okWith(t, n.admin(t, "get", "pv"), pv, "1Gi", "RWO", "Delete", "Bound", "storage/data", "local-path")
		dir := n.admin(t, "get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}").stdout
		if want := filepath.Join(n.dataDir, "storage", pv+"_storage_data"); dir != want {
			t.Fatalf("the volume's directory is %q, want %q", dir, want)
		}
		waitFor(t, 10*time.Second, "the file on the node", func() error {
			b, err := os.ReadFile(filepath.Join(dir, "file"))
			if string(b) != "kept\n" {
				return fmt.Errorf("%q, %v", b, err)
			}
			return nil
		})

		// The data outlives the pod.
		ok(t, n.admin(t, "delete", "pod", "-n", ns, "writer", "--grace-period=1"))
		n.apply(t, claimPod("reader", img, "cat /data/file && sleep 3600"))
		n.waitPod(t, ns, "reader", 60*time.Second, "Running", phaseIs("Running"))
		n.waitLog(t, ns, "reader", "kept\n")

		// In use: the claim waits for its pod to go.
		ok(t, n.admin(t, "delete", "pvc", "-n", ns, "data", "--wait=false"))
		time.Sleep(time.Second)
		okWith(t, n.admin(t, "get", "pvc", "-n", ns, "data"), "Terminating")
		ok(t, n.admin(t, "delete", "pod", "-n", ns, "reader", "--grace-period=1"))
		waitFor(t, 30*time.Second, "the claim, the volume and its directory gone", func() error {
			c := n.admin(t, "get", "pvc", "-n", ns, "data")
			v := n.admin(t, "get", "pv", pv)
			_, err := os.Stat(dir)
			if c.code == 0 || v.code == 0 || !os.IsNotExist(err) {
				return fmt.Errorf("%s\n%s\n%v", c, v, err)
			}
			return nil
		})
	})

	t.Run("static volume", func(t *testing.T) {
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "index.html"), []byte("static\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		n.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolume
metadata: {name: task-pv-volume, labels: {type: local}}
spec:
  storageClassName: manual
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: %q}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: task-pv-claim, namespace: storage}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`, host))
		waitFor(t, 20*time.Second, "the static volume bound", func() error {
			r := n.admin(t, "get", "pvc", "-n", ns, "task-pv-claim")
			if !(strings.Contains(r.stdout, "Bound") && strings.Contains(r.stdout, "task-pv-volume") && strings.Contains(r.stdout, "2Gi")) {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		n.apply(t, strings.ReplaceAll(claimPod("task", img, "cat /data/index.html && sleep 3600"), "claimName: data", "claimName: task-pv-claim"))
		n.waitPod(t, ns, "task", 60*time.Second, "Running", phaseIs("Running"))
		n.waitLog(t, ns, "task", "static\n")
		ok(t, n.admin(t, "delete", "pod", "-n", ns, "task", "--grace-period=1"))
		ok(t, n.admin(t, "delete", "pvc", "-n", ns, "task-pv-claim"))
		// Retain, the default of a static volume: Released, and the data stays.
		waitFor(t, 20*time.Second, "the static volume Released", func() error {
			r := n.admin(t, "get", "pv", "task-pv-volume")
			if !(strings.Contains(r.stdout, "Released") && strings.Contains(r.stdout, "Retain")) {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(host, "index.html")); err != nil {
			t.Errorf("a retained volume lost its data: %v", err)
		}
		ok(t, n.admin(t, "delete", "pv", "task-pv-volume"))
	})

	t.Run("ephemeral volume", func(t *testing.T) {
		n.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: storage}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo scratch > /scratch/file && cat /scratch/file && sleep 3600']
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 100Mi}}
`, img))
		n.waitPod(t, ns, "scratch", 60*time.Second, "Running", phaseIs("Running"))
		n.waitLog(t, ns, "scratch", "scratch\n")
		okWith(t, n.admin(t, "get", "pvc", "-n", ns, "scratch-scratch"), "Bound", "local-path")
		pv := n.admin(t, "get", "pvc", "-n", ns, "scratch-scratch", "-o", "jsonpath={.spec.volumeName}").stdout
		// The claim goes with its pod, and the volume with the claim.
		ok(t, n.admin(t, "delete", "pod", "-n", ns, "scratch", "--grace-period=1"))
		waitFor(t, 30*time.Second, "the ephemeral claim and its volume gone", func() error {
			c := n.admin(t, "get", "pvc", "-n", ns, "scratch-scratch")
			v := n.admin(t, "get", "pv", pv)
			if c.code == 0 || v.code == 0 {
				return fmt.Errorf("%s\n%s", c, v)
			}
			return nil
		})
	})

	t.Run("unschedulable without its claim", func(t *testing.T) {
		n.apply(t, strings.ReplaceAll(claimPod("orphan", img, "sleep 3600"), "claimName: data", "claimName: nothere"))
		waitFor(t, 20*time.Second, "the FailedScheduling event", func() error {
			r := n.admin(t, "describe", "pod", "-n", ns, "orphan")
			if !strings.Contains(r.stdout, `persistentvolumeclaim "nothere" not found`) {
				return fmt.Errorf("%s", r.stdout)
			}
			return nil
		})
	})
	ok(t, n.admin(t, "delete", "namespace", ns, "--wait=false"))
}

// claimPod is a pod in namespace storage running script with the claim
// "data" mounted at /data.
func claimPod(name, image, script string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: storage}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, %q]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: data
`, name, image, script)
}

// waitLog waits until the log of the pod is want.
func (n *nodeCluster) waitLog(t *testing.T, ns, pod, want string) {
	t.Helper()
	waitFor(t, 10*time.Second, "the log of "+pod, func() error {
		if r := n.admin(t, "logs", "-n", ns, pod); r.stdout != want {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
}
