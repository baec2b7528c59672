package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helmBinaries are the Helm versions the chart test runs, built from the
// Go module proxy by scripts/test.sh (E2E_HELM3 and E2E_HELM4 override).
func helmBinaries() map[string]string {
	dir := os.Getenv("E2E_HELM_DIR")
	if dir == "" {
		dir = "/usr/local/lib/labctl-test"
	}
	out := map[string]string{"helm3": filepath.Join(dir, "helm3", "helm"), "helm4": filepath.Join(dir, "helm4", "helm")}
	for name, env := range map[string]string{"helm3": "E2E_HELM3", "helm4": "E2E_HELM4"} {
		if p := os.Getenv(env); p != "" {
			out[name] = p
		}
	}
	return out
}

// helmRunner runs one Helm binary against a cluster, with its own config,
// cache and data directories.
type helmRunner struct {
	bin, kubeconfig string
	env             []string
}

func (h *helmRunner) run(t testing.TB, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, append(args, "--kubeconfig", h.kubeconfig)...)
	cmd.Env = append(os.Environ(), h.env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{version: filepath.Base(filepath.Dir(h.bin)), args: args, stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
		r.stderr += err.Error()
	}
	t.Logf("%s", r.cmdline())
	return r
}

// TestHelm installs, upgrades, rolls back and uninstalls the chart in
// testdata/helmchart with Helm 3 and Helm 4 on a cluster with its node,
// --wait included: the Deployment's pods must be ready, the post-install
// hook Job must finish, the StatefulSet's pod be ready, the LoadBalancer
// Service get its address, the CRD in crds/ be served before the object of
// it is made, the PersistentVolumeClaim be bound (by local-path, when the
// StatefulSet's pod that uses it is scheduled).
func TestHelm(t *testing.T) {
	bins := helmBinaries()
	for name, bin := range bins {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s: %v (scripts/test.sh builds Helm 3 and 4 into /usr/local/lib/labctl-test)", name, err)
		}
	}
	n := startNodeCluster(t)
	chart, err := filepath.Abs("testdata/helmchart")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.admin(t, "delete", "crd", "widgets.labdemo.example.com", "--wait=false") })
	for _, name := range []string{"helm3", "helm4"} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			h := &helmRunner{bin: bins[name], kubeconfig: n.kubeconfig, env: []string{
				"HELM_CONFIG_HOME=" + filepath.Join(home, "config"), "HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
				"HELM_DATA_HOME=" + filepath.Join(home, "data")}}
			ns, rel := "chart-"+name, "demo"
			get := func(args ...string) string {
				r := n.admin(t, append([]string{"-n", ns, "get"}, args...)...)
				if r.code != 0 {
					t.Errorf("kubectl get %v: %s", args, r)
				}
				return r.stdout
			}

			okWith(t, h.run(t, "install", rel, chart, "-n", ns, "--create-namespace", "--wait", "--timeout", "2m"), "STATUS: deployed")
			if got := get("deploy", rel+"-web", "-o", "jsonpath={.status.readyReplicas}"); got != "1" {
				t.Errorf("ready replicas after install: %q", got)
			}
			if got := get("statefulset", rel+"-db", "-o", "jsonpath={.status.readyReplicas}"); got != "1" {
				t.Errorf("the StatefulSet's ready replicas after install: %q", got)
			}
			if got := get("pvc", rel+"-data", "-o", "jsonpath={.status.phase}"); got != "Bound" {
				t.Errorf("the release's claim: %q", got)
			}
			if got := get("pvc", "state-"+rel+"-db-0", "-o", "jsonpath={.status.phase}"); got != "Bound" {
				t.Errorf("the StatefulSet's claim: %q", got)
			}
			if got := get("service", rel+"-public", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"); got == "" {
				t.Errorf("the LoadBalancer Service has no ingress address")
			}
			if got := get("job", rel+"-hook", "-o", "jsonpath={.status.succeeded}"); got != "1" {
				t.Errorf("the hook Job: succeeded %q", got)
			}
			if got := get("widget", rel+"-widget", "-o", "jsonpath={.spec.size}"); got != "1" {
				t.Errorf("the Widget: size %q", got)
			}
			if got := get("secrets", "-l", "owner=helm,name="+rel, "-o", "name"); !strings.Contains(got, "sh.helm.release.v1."+rel+".v1") {
				t.Errorf("the release Secret: %q", got)
			}

			okWith(t, h.run(t, "upgrade", rel, chart, "-n", ns, "--set", "replicas=2,message=bye", "--wait", "--timeout", "2m"),
				"STATUS: deployed", "REVISION: 2")
			if got := get("deploy", rel+"-web", "-o", "jsonpath={.status.readyReplicas}"); got != "2" {
				t.Errorf("ready replicas after the upgrade: %q", got)
			}
			if got := get("configmap", rel+"-config", "-o", "jsonpath={.data.message}"); got != "bye" {
				t.Errorf("the ConfigMap after the upgrade: %q", got)
			}

			okWith(t, h.run(t, "rollback", rel, "1", "-n", ns, "--wait", "--timeout", "2m"), "Rollback was a success")
			if got := get("configmap", rel+"-config", "-o", "jsonpath={.data.message}"); got != "hello" {
				t.Errorf("the ConfigMap after the rollback: %q", got)
			}
			if got := get("deploy", rel+"-web", "-o", "jsonpath={.spec.replicas}"); got != "1" {
				t.Errorf("replicas after the rollback: %q", got)
			}

			status := []string{"status", rel, "-n", ns}
			if name == "helm3" {
				status = append(status, "--show-resources") // Helm 4 shows them always
			}
			r := h.run(t, status...)
			okWith(t, r, "STATUS: deployed", "REVISION: 3", rel+"-web", rel+"-config", rel+"-widget", rel+"-data")
			okWith(t, h.run(t, "list", "-n", ns), rel, "deployed")
			okWith(t, h.run(t, "history", rel, "-n", ns), "Rollback to 1")

			okWith(t, h.run(t, "uninstall", rel, "-n", ns, "--wait", "--timeout", "2m"), fmt.Sprintf("release \"%s\" uninstalled", rel))
			// The StatefulSet's claims are not the release's: they stay, as upstream.
			for _, obj := range strings.Fields(get("deploy,configmap,secret,widgets,pvc", "-o", "name")) {
				if strings.Contains(obj, rel) && obj != "persistentvolumeclaim/state-"+rel+"-db-0" {
					t.Errorf("left after uninstall: %s", obj)
				}
			}

			n.admin(t, "delete", "namespace", ns, "--wait=false")
		})
	}
}
