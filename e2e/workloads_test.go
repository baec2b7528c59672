package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// eventuallyRun reruns kubectl until check accepts its result or 30 s
// pass; it returns the last result.
func eventuallyRun(t *testing.T, k *kubectl, check func(result) bool, args ...string) result {
	t.Helper()
	var r result
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		r = k.run(t, args...)
		if check(r) || time.Now().After(deadline) {
			return r
		}
	}
}

func deploymentManifest(minor int, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      nodeSelector:
        lab: "%d"
      containers:
      - name: nginx
        image: %s
`, minor, image)
}

// TestWorkloads is the controllers chapter as students type it: a
// Deployment rolled out, updated, rolled back, paused, resumed,
// restarted, scaled and autoscaled; nodes tainted, cordoned and drained
// under a PodDisruptionBudget. Fake nodes (fakenode_test.go) stand in for
// kubelets.
func TestWorkloads(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		a, b := fmt.Sprintf("node-%d-a", k.minor), fmt.Sprintf("node-%d-b", k.minor)
		lab := map[string]string{"lab": fmt.Sprint(k.minor)}
		startFakeNodes(t, c, map[string]map[string]string{a: lab, b: lab})
		ns := newNamespace(t, k, nsFor("workloads", k))
		dir := t.TempDir()
		rolledOut := func(t *testing.T) {
			t.Helper()
			okWith(t, k.run(t, "-n", ns, "rollout", "status", "deploy/web", "--timeout=40s"), `deployment "web" successfully rolled out`)
		}
		image := func(t *testing.T, want string) {
			t.Helper()
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), want)
		}

		t.Run("rollout", func(t *testing.T) {
			must(t, k, "-n", ns, "apply", "-f", writeFile(t, dir, "web.yaml", deploymentManifest(k.minor, "nginx:1.0")))
			rolledOut(t)
			row(t, k.run(t, "-n", ns, "get", "deploy", "web"), "web", "3/3", "3", "3", age)
			okWith(t, k.run(t, "-n", ns, "set", "image", "deploy/web", "nginx=nginx:2.0"), "deployment.apps/web image updated")
			rolledOut(t)
			r := k.run(t, "-n", ns, "rollout", "history", "deploy/web")
			if ok(t, r) {
				matches(t, r, `(?m)^REVISION\s+CHANGE-CAUSE$`, `(?m)^1\s+<none>$`, `(?m)^2\s+<none>$`)
			}
			matches(t, k.run(t, "-n", ns, "rollout", "history", "deploy/web", "--revision=1"), `Image:\s+nginx:1.0`)
			r = k.run(t, "-n", ns, "describe", "deploy", "web")
			if ok(t, r) {
				matches(t, r, `ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set web-\w+ to 3\n`,
					`ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled down replica set web-\w+ to \d from \d`,
					`(?m)^NewReplicaSet:\s+web-\w+ \(3/3 replicas created\)$`)
			}
		})
		t.Run("undo", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "rollout", "undo", "deploy/web"), "deployment.apps/web rolled back")
			rolledOut(t)
			image(t, "nginx:1.0")
			r := k.run(t, "-n", ns, "rollout", "history", "deploy/web")
			if ok(t, r) {
				matches(t, r, `(?m)^2\s+<none>$`, `(?m)^3\s+<none>$`)
				if strings.Contains(r.stdout, "\n1 ") {
					t.Errorf("revision 1 became 3 and should be gone:\n%s", r)
				}
			}
			okWith(t, k.run(t, "-n", ns, "rollout", "undo", "deploy/web", "--to-revision=2"), "deployment.apps/web rolled back")
			rolledOut(t)
			image(t, "nginx:2.0")
		})
		t.Run("pause-resume-restart", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "rollout", "pause", "deploy/web"), "deployment.apps/web paused")
			must(t, k, "-n", ns, "set", "image", "deploy/web", "nginx=nginx:3.0")
			// Paused: the controller makes no ReplicaSet for the new template.
			time.Sleep(time.Second)
			matches(t, k.run(t, "-n", ns, "get", "rs", "-o", "name"), `^replicaset.apps/web-\w+\nreplicaset.apps/web-\w+\n$`)
			okWith(t, k.run(t, "-n", ns, "rollout", "resume", "deploy/web"), "deployment.apps/web resumed")
			rolledOut(t)
			matches(t, k.run(t, "-n", ns, "get", "rs", "-o", "name"), `^(replicaset.apps/web-\w+\n){3}$`)
			okWith(t, k.run(t, "-n", ns, "rollout", "restart", "deploy/web"), "deployment.apps/web restarted")
			matches(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.template.metadata.annotations}"), `kubectl.kubernetes.io/restartedAt`)
			rolledOut(t)
		})
		t.Run("scale-autoscale", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "scale", "deploy/web", "--replicas=5"), "deployment.apps/web scaled")
			r := eventuallyRun(t, k, func(r result) bool { return strings.Contains(r.stdout, "5/5") }, "-n", ns, "get", "deploy", "web")
			row(t, r, "web", "5/5", "5", "5", age)
			okWith(t, k.run(t, "-n", ns, "autoscale", "deploy", "web", "--min=2", "--max=6", "--cpu-percent=80"), "horizontalpodautoscaler.autoscaling/web autoscaled")
			r = k.run(t, "-n", ns, "get", "hpa", "web")
			if ok(t, r) {
				matches(t, r, `(?m)^web\s+Deployment/web\s+.*80%\s+2\s+6\s+`)
			}
		})
		t.Run("describe-pod", func(t *testing.T) {
			name := strings.TrimPrefix(must(t, k, "-n", ns, "get", "pods", "-l", "app=web", "-o", "name").stdout, "pod/")
			name = strings.SplitN(name, "\n", 2)[0]
			r := k.run(t, "-n", ns, "describe", "pod", name)
			if ok(t, r) {
				matches(t, r, `(?m)^Status:\s+Running$`, `(?m)^Controlled By:\s+ReplicaSet/web-\w+$`,
					`Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned `+ns+`/`+name+` to node-\d+-[ab]`)
			}
		})
		t.Run("taint-cordon", func(t *testing.T) {
			okWith(t, k.run(t, "taint", "node", b, "lab=only:NoSchedule"), "node/"+b+" tainted")
			equals(t, k.run(t, "get", "node", b, "-o", "jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}"), "lab=only:NoSchedule")
			r := k.run(t, "describe", "node", b)
			if ok(t, r) {
				matches(t, r, `(?m)^Taints:\s+lab=only:NoSchedule$`,
					`RegisteredNode\s+\S+\s+node-controller\s+Node `+b+` event: Registered Node `+b+` in Controller`)
			}
			okWith(t, k.run(t, "taint", "node", b, "lab-"), "node/"+b+" untainted")
			okWith(t, k.run(t, "cordon", a), "node/"+a+" cordoned")
			row(t, k.run(t, "get", "node", a), a, "Ready,SchedulingDisabled", "*", age, "*")
			matches(t, k.run(t, "describe", "node", a), `(?m)^Unschedulable:\s+true$`)
			okWith(t, k.run(t, "uncordon", a), "node/"+a+" uncordoned")
			row(t, k.run(t, "get", "node", a), a, "Ready", "*", age, "*")
		})
		t.Run("drain", func(t *testing.T) {
			// Spread the pods over both nodes first.
			must(t, k, "-n", ns, "delete", "hpa", "web")
			must(t, k, "-n", ns, "rollout", "restart", "deploy/web")
			rolledOut(t)
			onA := func() int {
				r := k.run(t, "-n", ns, "get", "pods", "--field-selector=spec.nodeName="+a, "-o", "name")
				return len(lines(r))
			}
			if onA() == 0 {
				t.Skip("no pod landed on " + a + " to drain")
			}
			must(t, k, "-n", ns, "create", "pdb", "web", "--selector=app=web", "--min-available=5")
			eventuallyRun(t, k, func(r result) bool { return strings.TrimSpace(r.stdout) == "0" },
				"-n", ns, "get", "pdb", "web", "-o", "jsonpath={.status.disruptionsAllowed}")
			r := k.run(t, "drain", a, "--ignore-daemonsets", "--timeout=7s")
			fails(t, r, "Cannot evict pod as it would violate the pod's disruption budget")
			must(t, k, "-n", ns, "delete", "pdb", "web")
			r = k.run(t, "drain", a, "--ignore-daemonsets", "--timeout=30s")
			if ok(t, r) {
				contains(t, r, r.stdout, "stdout", "node/"+a+" drained")
			}
			if n := onA(); n != 0 {
				t.Errorf("%d pods still on %s after drain", n, a)
			}
			rolledOut(t)
			row(t, k.run(t, "get", "node", a), a, "Ready,SchedulingDisabled", "*", age, "*")
		})
	})
}
