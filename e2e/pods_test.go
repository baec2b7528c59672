package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"labctl/internal/syncbuf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestNode runs real pods on the server's own node and checks what
// kubectl shows of them: statuses, events, logs, exec, attach,
// port-forward, probes, restarts, volumes, static pods, and a restart of
// labctl that leaves the containers running.
func TestNode(t *testing.T) {
	n := startNodeCluster(t)
	img := importedImage
	pulled := n.registry + "/e2e/busybox:v1"

	n.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: imported}
spec:
  containers:
  - {name: main, image: %[1]s, command: [sh, -c, 'echo imported; sleep 3600']}
---
apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  containers:
  - {name: main, image: %[2]s, command: [sh, -c, 'echo pulled; sleep 3600']}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: %[1]s
    command: [sh, -c, 'mkdir -p /www && echo hello from web > /www/index.html && echo started && exec httpd -f -p 8080 -h /www']
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers:
  - {name: main, image: %[1]s, command: [sh, -c, 'echo dying; exit 3']}
---
apiVersion: v1
kind: Pod
metadata: {name: missing}
spec:
  containers:
  - {name: main, image: %[3]s/e2e/nothere:v1}
---
apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, 'tail /dev/zero']
    resources: {limits: {memory: 20Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: %[1]s
    command: [sh, -c, 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600']
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: v1}
---
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  containers:
  - name: writer
    image: %[1]s
    command: [sh, -c, 'echo from-writer > /shared/note; sleep 3600']
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: reader
    image: %[1]s
    command: [sh, -c, 'sleep 3600']
    volumeMounts:
    - {name: shared, mountPath: /shared}
    - {name: cfg, mountPath: /cfg}
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: cfg, configMap: {name: cfg}}
`, img, pulled, n.registry))
	n.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  initContainers:
  - {name: init-1, image: %[1]s, command: [sh, -c, 'echo first >> /shared/order'], volumeMounts: [{name: shared, mountPath: /shared}]}
  - {name: init-2, image: %[1]s, command: [sh, -c, 'echo second >> /shared/order'], volumeMounts: [{name: shared, mountPath: /shared}]}
  containers:
  - {name: main, image: %[1]s, command: [sh, -c, 'cat /shared/order; sleep 3600'], volumeMounts: [{name: shared, mountPath: /shared}]}
  volumes:
  - {name: shared, emptyDir: {}}
`, img))

	t.Run("images", func(t *testing.T) {
		n.waitPod(t, "default", "imported", 60*time.Second, "Running", phaseIs("Running"))
		n.waitPod(t, "default", "pulled", 60*time.Second, "Running", phaseIs("Running"))
		ev := n.admin(t, "get", "events", "--field-selector", "involvedObject.name=pulled", "-o", "custom-columns=R:.reason,M:.message", "--no-headers").stdout
		if !strings.Contains(ev, "Successfully pulled image \""+pulled+"\"") {
			t.Errorf("pulled pod events lack the pull:\n%s", ev)
		}
		ev = n.admin(t, "get", "events", "--field-selector", "involvedObject.name=imported", "-o", "custom-columns=R:.reason,M:.message", "--no-headers").stdout
		if !strings.Contains(ev, "already present on machine") {
			t.Errorf("imported pod events:\n%s", ev)
		}
	})

	t.Run("missing image", func(t *testing.T) {
		// ErrImagePull shows until the next sync, which finds the pull in
		// its back-off: ImagePullBackOff. The events keep both.
		n.waitPod(t, "default", "missing", 60*time.Second, "ImagePullBackOff", func(p map[string]any) bool {
			return fieldString(containerStatus(p, "main"), "state.waiting.reason") == "ImagePullBackOff"
		})
		ev := n.admin(t, "get", "events", "--field-selector", "involvedObject.name=missing", "-o", "custom-columns=R:.reason,M:.message", "--no-headers").stdout
		for _, want := range []string{"Error: ErrImagePull", "Error: ImagePullBackOff", "Failed to pull image \"" + n.registry + "/e2e/nothere:v1\"",
			"Back-off pulling image"} {
			if !strings.Contains(ev, want) {
				t.Errorf("missing image events lack %q:\n%s", want, ev)
			}
		}
		if get := n.admin(t, "get", "pod", "missing"); !regexp.MustCompile(`missing\s+0/1\s+ImagePullBackOff\s+0`).MatchString(get.stdout) {
			t.Errorf("kubectl get pod missing:\n%s", get.stdout)
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		p := n.waitPod(t, "default", "crash", 90*time.Second, "in CrashLoopBackOff", func(p map[string]any) bool {
			cs := containerStatus(p, "main")
			return fieldString(cs, "state.waiting.reason") == "CrashLoopBackOff" && fieldString(cs, "restartCount") != "0"
		})
		cs := containerStatus(p, "main")
		if code := fieldString(cs, "lastState.terminated.exitCode"); code != "3" {
			t.Errorf("lastState: %s", show(cs["lastState"]))
		}
		get := n.admin(t, "get", "pod", "crash")
		if !regexp.MustCompile(`crash\s+0/1\s+CrashLoopBackOff\s+\d+ \(\d+s ago\)`).MatchString(get.stdout) {
			t.Errorf("kubectl get pod crash:\n%s", get.stdout)
		}
		if logs := n.admin(t, "logs", "crash", "--previous"); !strings.Contains(logs.stdout, "dying") {
			t.Errorf("kubectl logs --previous: %s", logs)
		}
	})

	t.Run("OOMKilled", func(t *testing.T) {
		p := n.waitPod(t, "default", "oom", 60*time.Second, "Failed", phaseIs("Failed"))
		cs := containerStatus(p, "main")
		if r := fieldString(cs, "state.terminated.reason"); r != "OOMKilled" {
			t.Errorf("oom container: %s", show(cs))
		}
		if code := fieldString(cs, "state.terminated.exitCode"); code != "137" {
			t.Errorf("oom exit code %s", code)
		}
	})

	t.Run("liveness probe restarts", func(t *testing.T) {
		n.waitPod(t, "default", "live", 60*time.Second, "restarted by its liveness probe", func(p map[string]any) bool {
			return fieldString(containerStatus(p, "main"), "restartCount") != "0"
		})
		ev := n.admin(t, "get", "events", "--field-selector", "involvedObject.name=live", "-o", "custom-columns=R:.reason,M:.message", "--no-headers").stdout
		for _, want := range []string{"Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy'", "Container main failed liveness probe, will be restarted"} {
			if !strings.Contains(ev, want) {
				t.Errorf("live pod events lack %q:\n%s", want, ev)
			}
		}
	})

	t.Run("init containers and emptyDir", func(t *testing.T) {
		n.waitPod(t, "default", "init", 60*time.Second, "Running", phaseIs("Running"))
		if logs := n.admin(t, "logs", "init"); logs.stdout != "first\nsecond\n" {
			t.Errorf("init containers ran out of order or not at all: %s", logs)
		}
		p := n.pod(t, "default", "init")
		for _, c := range []string{"init-1", "init-2"} {
			if r := fieldString(containerStatus(p, c), "state.terminated.reason"); r != "Completed" {
				t.Errorf("init container %s: %s", c, show(containerStatus(p, c)))
			}
		}
		n.waitPod(t, "default", "vols", 60*time.Second, "Running", phaseIs("Running"))
		if r := n.admin(t, "exec", "vols", "-c", "reader", "--", "cat", "/shared/note"); r.stdout != "from-writer\n" {
			t.Errorf("emptyDir between containers: %s", r)
		}
	})

	t.Run("configMap volume updated in place", func(t *testing.T) {
		n.waitPod(t, "default", "vols", 60*time.Second, "Running", phaseIs("Running"))
		if r := n.admin(t, "exec", "vols", "-c", "reader", "--", "cat", "/cfg/greeting"); r.stdout != "v1" {
			t.Fatalf("configMap volume: %s", r)
		}
		if r := n.admin(t, "patch", "configmap", "cfg", "-p", `{"data":{"greeting":"v2"}}`); r.code != 0 {
			t.Fatal(r)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := n.admin(t, "exec", "vols", "-c", "reader", "--", "cat", "/cfg/greeting")
			if r.stdout == "v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the configMap update did not reach the pod: %s", r)
			}
			time.Sleep(time.Second)
		}
	})

	t.Run("streams", func(t *testing.T) {
		n.waitPod(t, "default", "web", 60*time.Second, "Running", phaseIs("Running"))
		forVersions(t, n.cluster, func(t *testing.T, k *kubectl) {
			okWith(t, k.run(t, "logs", "web"), "started")
			r := k.runStdin(t, "hello stdin\n", "exec", "-i", "web", "--", "sh", "-c", "cat; echo done")
			if r.code != 0 || r.stdout != "hello stdin\ndone\n" {
				t.Errorf("exec -i: %s", r)
			}
			if r := k.run(t, "exec", "web", "--", "sh", "-c", "exit 7"); r.code != 7 {
				t.Errorf("exec exit code: %s", r)
			}
			// attach to a pod that reads its stdin.
			pod := nsFor("att", k)
			n.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  containers:
  - {name: main, image: %s, stdin: true, command: [sh, -c, 'echo waiting; read x; echo got $x; sleep 3600']}
`, pod, img))
			n.waitPod(t, "default", pod, 60*time.Second, "Running", phaseIs("Running"))
			// attach -i: what is typed reaches the container's stdin, and
			// its output comes back while kubectl stays attached.
			if out, err := attachAndType(k, pod, "ping\n", "got ping"); err != nil {
				t.Errorf("kubectl.%s attach -i %s: %v\n%s", k.version, pod, err, out)
			}
			// port-forward to httpd in the pod.
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			s := k.start(t, "port-forward", "pod/web", fmt.Sprintf("%d:8080", port))
			if _, ok := s.waitFor(30*time.Second, func(l string) bool { return strings.Contains(l, "Forwarding from") }); !ok {
				t.Fatalf("port-forward did not start:\n%s", s.output())
			}
			body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil || body != "hello from web\n" {
				t.Errorf("through port-forward: %q %v\n%s", body, err, s.output())
			}
		})
	})

	t.Run("static pod", func(t *testing.T) {
		dir := filepath.Join(n.dataDir, "agent", "pod-manifests")
		os.MkdirAll(dir, 0o755)
		writeFile(t, dir, "static.yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: static, labels: {app: static}}
spec:
  containers:
  - {name: main, image: %s, command: [sh, -c, 'echo static; sleep 3600']}
`, img))
		mirror := "static-" + nodeName
		p := n.waitPod(t, "default", mirror, 60*time.Second, "Running", phaseIs("Running"))
		ann, _ := field(p, "metadata.annotations")
		if m, _ := ann.(map[string]any); m["kubernetes.io/config.mirror"] == nil || m["kubernetes.io/config.source"] != "file" {
			t.Errorf("mirror pod annotations: %s", show(ann))
		}
		uid := fieldString(p, "metadata.uid")
		if logs := n.admin(t, "logs", mirror); logs.stdout != "static\n" {
			t.Errorf("logs of the static pod: %s", logs)
		}
		// Deleting the mirror pod does not stop the static pod: it comes back.
		n.admin(t, "delete", "pod", mirror, "--wait=false")
		n.waitPod(t, "default", mirror, 60*time.Second, "made again", func(p map[string]any) bool {
			return fieldString(p, "metadata.uid") != uid && fieldString(p, "status.phase") == "Running"
		})
		os.Remove(filepath.Join(dir, "static.yaml"))
		deadline := time.Now().Add(60 * time.Second)
		for n.pod(t, "default", mirror) != nil {
			if time.Now().After(deadline) {
				t.Fatal("the mirror pod stayed after its manifest went")
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("restart keeps containers", func(t *testing.T) {
		before := n.waitPod(t, "default", "imported", 60*time.Second, "Running", phaseIs("Running"))
		id := fieldString(containerStatus(before, "main"), "containerID")
		n.restart(t)
		after := n.waitPod(t, "default", "imported", 30*time.Second, "Running", phaseIs("Running"))
		cs := containerStatus(after, "main")
		if fieldString(cs, "containerID") != id || fieldString(cs, "restartCount") != "0" {
			t.Errorf("after a restart of labctl: container %s restarts %s, was %s", fieldString(cs, "containerID"), fieldString(cs, "restartCount"), id)
		}
		if r := n.admin(t, "exec", "imported", "--", "echo", "still here"); r.stdout != "still here\n" {
			t.Errorf("exec after the restart: %s", r)
		}
	})
}

// attachAndType runs kubectl attach -i to pod, types input, and waits for
// a line with want in its output.
func attachAndType(k *kubectl, pod, input, want string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := k.command(ctx, "attach", "-i", pod)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() {
		stdin.Close()
		cancel()
		cmd.Wait()
	}()
	if _, err := io.WriteString(stdin, input); err != nil {
		return stderr.String(), err
	}
	sc := bufio.NewScanner(stdout)
	var seen []string
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), want) {
			return "", nil
		}
	}
	return strings.Join(seen, "\n") + "\n[stderr]\n" + stderr.String(), fmt.Errorf("no line with %q", want)
}
