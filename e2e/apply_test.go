package e2e

import (
	"strings"
	"testing"
)

// Manifests for server-side apply: a ConfigMap and a Deployment, and the
// same with another value (what a second manager applies).
const ssaManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  color: blue
  size: L
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports:
        - containerPort: 80
          name: http
`

const ssaOtherManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  color: red
`

// managers returns "manager/operation[/subresource]" for each managedFields
// entry of kubectl get -o json --show-managed-fields.
func managers(t *testing.T, r result) []string {
	t.Helper()
	obj, good := decodeJSON(t, r)
	if !good {
		return nil
	}
	entries, _ := field(obj, "metadata.managedFields")
	list, _ := entries.([]any)
	var out []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		s := show(m["manager"]) + "/" + show(m["operation"])
		if sub, ok := m["subresource"]; ok {
			s += "/" + show(sub)
		}
		out = append(out, s)
	}
	return out
}

func hasManager(t *testing.T, r result, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("want a managedFields entry %s, got %v\n%s", w, got, r)
		}
	}
}

func TestServerSideApply(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("ssa", k))
		dir := t.TempDir()
		first := writeFile(t, dir, "first.yaml", ssaManifest)
		other := writeFile(t, dir, "other.yaml", ssaOtherManifest)
		t.Run("create", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "-f", first),
				"configmap/cfg serverside-applied", "deployment.apps/web serverside-applied")
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}"), "blue")
			// The server's defaults, as with any create.
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.strategy.type}|{.spec.template.spec.containers[0].ports[0].protocol}"), "RollingUpdate|TCP")
			r := k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "json", "--show-managed-fields")
			hasManager(t, r, managers(t, r), "kubectl/Apply")
			// Hidden unless asked for, as kubectl does since 1.21.
			r = k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "yaml")
			if ok(t, r) && strings.Contains(r.stdout, "managedFields") {
				t.Errorf("want managedFields hidden without --show-managed-fields\n%s", r)
			}
		})
		t.Run("again", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "-f", first),
				"configmap/cfg serverside-applied", "deployment.apps/web serverside-applied")
		})
		t.Run("dry-run", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "--dry-run=server", "--field-manager=other", "--force-conflicts", "-f", other),
				"configmap/cfg serverside-applied (server dry run)")
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}"), "blue")
		})
		t.Run("conflict", func(t *testing.T) {
			r := k.run(t, "-n", ns, "apply", "--server-side", "--field-manager=other", "-f", other)
			fails(t, r, `error: Apply failed with 1 conflict: conflict with "kubectl": .data.color`, "--force-conflicts")
			if r.code != 1 {
				t.Errorf("want exit code 1, got %d\n%s", r.code, r)
			}
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}"), "blue")
		})
		t.Run("force-conflicts", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", other),
				"configmap/cfg serverside-applied")
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}|{.data.size}"), "red|L")
			r := k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "json", "--show-managed-fields")
			hasManager(t, r, managers(t, r), "kubectl/Apply", "other/Apply")
			// kubectl keeps .data.size; other took .data.color.
			if obj, good := decodeJSON(t, r); good {
				entries, _ := field(obj, "metadata.managedFields")
				for _, e := range entries.([]any) {
					m := e.(map[string]any)
					fields := show(m["fieldsV1"])
					switch show(m["manager"]) {
					case "kubectl":
						if strings.Contains(fields, "f:color") || !strings.Contains(fields, "f:size") {
							t.Errorf("want kubectl to own .data.size only, got %s\n%s", fields, r)
						}
					case "other":
						if !strings.Contains(fields, "f:color") {
							t.Errorf("want other to own .data.color, got %s\n%s", fields, r)
						}
					}
				}
			}
		})
		t.Run("client-side-after", func(t *testing.T) {
			// A client-side apply of an object server-side apply made: kubectl
			// warns that the last-applied annotation is missing and patches.
			path := writeFile(t, t.TempDir(), "csa.yaml", strings.Replace(ssaOtherManifest, "color: red", "color: green", 1))
			r := k.run(t, "-n", ns, "apply", "-f", path)
			okWith(t, r, "configmap/cfg configured")
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color}"), "green")
			// Both managers show: kubectl's apply keeps .data.size, the
			// client-side apply took .data.color (from other, whose entry
			// went with its last field).
			r = k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "yaml", "--show-managed-fields")
			okWith(t, r, "manager: kubectl\n", "operation: Apply", "manager: kubectl-client-side-apply", "operation: Update", "f:color", "f:size")
			r = k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "json", "--show-managed-fields")
			if got := managers(t, r); len(got) != 2 {
				t.Errorf("want the entries of kubectl and kubectl-client-side-apply, got %v\n%s", got, r)
			}
			// Server-side apply again: the client-side manager now owns the
			// color.
			fails(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager=other", "-f", other),
				`Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.color`)
		})
		t.Run("csa-to-ssa", func(t *testing.T) {
			// An object client-side apply made, then applied server-side by
			// kubectl: kubectl moves the client-side manager's fields to its
			// own (a JSON patch of managedFields) and no conflict arises.
			path := writeFile(t, t.TempDir(), "mig.yaml", strings.Replace(ssaOtherManifest, "name: cfg", "name: mig", 1))
			okWith(t, k.run(t, "-n", ns, "apply", "-f", path), "configmap/mig created")
			r := k.run(t, "-n", ns, "get", "cm", "mig", "-o", "json", "--show-managed-fields")
			hasManager(t, r, managers(t, r), "kubectl-client-side-apply/Update")
			path = writeFile(t, t.TempDir(), "mig2.yaml", strings.Replace(strings.Replace(ssaOtherManifest, "name: cfg", "name: mig", 1), "color: red", "color: pink", 1))
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "-f", path), "configmap/mig serverside-applied")
			equals(t, k.run(t, "-n", ns, "get", "cm", "mig", "-o", "jsonpath={.data.color}"), "pink")
			r = k.run(t, "-n", ns, "get", "cm", "mig", "-o", "json", "--show-managed-fields")
			got := managers(t, r)
			hasManager(t, r, got, "kubectl/Apply")
			for _, g := range got {
				if g == "kubectl-client-side-apply/Update" {
					t.Errorf("want kubectl to have taken over the client-side manager's entry, got %v\n%s", got, r)
				}
			}
		})
		t.Run("deployment", func(t *testing.T) {
			// Containers merge by name: a second manager's sidecar joins;
			// changing the first manager's image conflicts on that
			// container's image.
			sidecar := writeFile(t, t.TempDir(), "sidecar.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: sidecar
        image: busybox
`)
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager=mesh", "-f", sidecar), "deployment.apps/web serverside-applied")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].name}"), "app sidecar")
			image := writeFile(t, t.TempDir(), "image.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: httpd
`)
			fails(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager=mesh", "-f", image),
				`Apply failed with 1 conflict: conflict with "kubectl": .spec.template.spec.containers[name="app"].image`)
			// kubectl scale takes .spec.replicas through /scale, as the
			// manager its User-Agent names (the binary's name).
			okWith(t, k.run(t, "-n", ns, "scale", "deploy", "web", "--replicas=3"), "deployment.apps/web scaled")
			agent := "kubectl." + k.version
			r := k.run(t, "-n", ns, "get", "deploy", "web", "-o", "json", "--show-managed-fields")
			hasManager(t, r, managers(t, r), "kubectl/Apply", "mesh/Apply", agent+"/Update/scale")
			fails(t, k.run(t, "-n", ns, "apply", "--server-side", "-f", first),
				`Apply failed with 1 conflict: conflict with "`+agent+`" with subresource "scale" using apps/v1: .spec.replicas`)
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "--force-conflicts", "-f", first), "deployment.apps/web serverside-applied")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"), "2")
		})
	})
}
