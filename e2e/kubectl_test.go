package e2e

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// must runs kubectl for a test's set-up and stops the test when it fails.
func must(t *testing.T, k *kubectl, args ...string) result {
	t.Helper()
	r := k.run(t, args...)
	if r.code != 0 {
		t.Fatalf("set-up failed:\n%s", r)
	}
	return r
}

// newNamespace creates namespace name for the test.
func newNamespace(t *testing.T, k *kubectl, name string) string {
	t.Helper()
	must(t, k, "create", "namespace", name)
	return name
}

// serviceCIDR is labctl's default --service-cidr.
var serviceCIDR = netip.MustParsePrefix("10.43.0.0/16")

func TestCreate(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := nsFor("create", k)
		t.Run("namespace", func(t *testing.T) {
			okWith(t, k.run(t, "create", "ns", ns), "namespace/"+ns+" created")
			row(t, k.run(t, "get", "ns", ns), ns, "Active", age)
			equals(t, k.run(t, "get", "ns", ns, "-o", "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}"), ns)
		})
		t.Run("deployment", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "create", "deploy", "web", "--image=nginx"), "deployment.apps/web created")
			header(t, k.run(t, "-n", ns, "get", "deploy", "web"), "NAME   READY   UP-TO-DATE   AVAILABLE   AGE")
			row(t, k.run(t, "-n", ns, "get", "deploy", "web"), "web", "0/1", "*", "0", age)
			// kubectl create <generator> words errors itself: "error: failed
			// to create deployment: ..." without the reason.
			fails(t, k.run(t, "-n", ns, "create", "deploy", "web", "--image=nginx"), `deployments.apps "web" already exists`)
			path := writeFile(t, t.TempDir(), "web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: nginx\n        image: nginx\n")
			fails(t, k.run(t, "-n", ns, "create", "-f", path, "--validate=false"),
				"Error from server (AlreadyExists)", `deployments.apps "web" already exists`)
		})
		t.Run("deployment-defaults", func(t *testing.T) {
			// What the apps/v1 defaults and the deployment strategy give
			// every Deployment (kubectl rollout status compares
			// metadata.generation with status.observedGeneration).
			r := k.run(t, "-n", ns, "get", "deploy", "web", "-o", "json")
			obj, good := decodeJSON(t, r)
			if !good {
				return
			}
			fieldIs(t, r, obj, "metadata.generation", "1")
			fieldIs(t, r, obj, "spec.strategy.type", "RollingUpdate")
			fieldIs(t, r, obj, "spec.strategy.rollingUpdate.maxSurge", "25%")
			fieldIs(t, r, obj, "spec.revisionHistoryLimit", "10")
			fieldIs(t, r, obj, "spec.progressDeadlineSeconds", "600")
			fieldIs(t, r, obj, "spec.template.spec.restartPolicy", "Always")
			fieldIs(t, r, obj, "spec.template.spec.schedulerName", "default-scheduler")
			fieldIs(t, r, obj, "spec.template.spec.terminationGracePeriodSeconds", "30")
			fieldIs(t, r, obj, "spec.template.spec.containers.0.imagePullPolicy", "Always")
			fieldIs(t, r, obj, "spec.template.spec.containers.0.terminationMessagePath", "/dev/termination-log")
		})
		t.Run("configmap", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "create", "cm", "cfg", "--from-literal=color=blue", "--from-literal=size=L"), "configmap/cfg created")
			header(t, k.run(t, "-n", ns, "get", "cm", "cfg"), "NAME   DATA   AGE")
			row(t, k.run(t, "-n", ns, "get", "cm", "cfg"), "cfg", "2", age)
			equals(t, k.run(t, "-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.color},{.data.size}"), "blue,L")
		})
		t.Run("secret", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "create", "secret", "generic", "creds", "--from-literal=password=s3cret"), "secret/creds created")
			equals(t, k.run(t, "-n", ns, "get", "secret", "creds", "-o", "jsonpath={.data.password}"),
				base64.StdEncoding.EncodeToString([]byte("s3cret")))
			// The core/v1 defaults give a secret without a type the type Opaque.
			equals(t, k.run(t, "-n", ns, "get", "secret", "creds", "-o", "jsonpath={.type}"), "Opaque")
			header(t, k.run(t, "-n", ns, "get", "secret", "creds"), "NAME    TYPE     DATA   AGE")
			row(t, k.run(t, "-n", ns, "get", "secret", "creds"), "creds", "Opaque", "1", age)
		})
		t.Run("pod", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "run", "bb", "--image=busybox"), "pod/bb created")
			// No nodes: the pod stays Pending, as the pod strategy sets it.
			equals(t, k.run(t, "-n", ns, "get", "pod", "bb", "-o", "jsonpath={.status.phase}"), "Pending")
			header(t, k.run(t, "-n", ns, "get", "pod", "bb"), "NAME   READY   STATUS    RESTARTS   AGE")
			row(t, k.run(t, "-n", ns, "get", "pod", "bb"), "bb", "0/1", "Pending", "0", age)
			r := k.run(t, "-n", ns, "get", "pod", "bb", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "status.qosClass", "BestEffort")
				fieldIs(t, r, obj, "spec.schedulerName", "default-scheduler")
				fieldIs(t, r, obj, "spec.enableServiceLinks", "true")
				fieldIs(t, r, obj, "spec.containers.0.imagePullPolicy", "Always")
			}
		})
		t.Run("service-clusterip", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "create", "svc", "clusterip", "web", "--tcp=80:8080"), "service/web created")
			r := k.run(t, "-n", ns, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
			if ok(t, r) {
				ip, err := netip.ParseAddr(strings.TrimSpace(r.stdout))
				if err != nil || !serviceCIDR.Contains(ip) {
					t.Errorf("want spec.clusterIP allocated from the service CIDR %s, got %q\n%s", serviceCIDR, r.stdout, r)
				}
			}
			r = k.run(t, "-n", ns, "get", "svc", "web")
			headerCells(t, r, "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
			row(t, r, "web", "ClusterIP", "*", "<none>", "80/TCP", age)
			if ok(t, r) && regexp.MustCompile(`ClusterIP\s+<none>`).MatchString(r.stdout) {
				t.Errorf("want a CLUSTER-IP, got <none>\n%s", r)
			}
			r = k.run(t, "-n", ns, "get", "svc", "web", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "spec.type", "ClusterIP")
				fieldIs(t, r, obj, "spec.sessionAffinity", "None")
				fieldIs(t, r, obj, "spec.ports.0.protocol", "TCP")
				fieldIs(t, r, obj, "spec.ports.0.targetPort", "8080")
				fieldIs(t, r, obj, "spec.ipFamilies", `["IPv4"]`)
			}
		})
		t.Run("service-kubernetes", func(t *testing.T) {
			// Every cluster has default/kubernetes on the service CIDR's
			// first address: the first thing `kubectl get svc` shows.
			r := k.run(t, "get", "svc", "kubernetes", "-n", "default")
			row(t, r, "kubernetes", "ClusterIP", "10.43.0.1", "<none>", "443/TCP", age)
		})
	})
}

// Manifests for apply, diff and delete -f.
const (
	appManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels:
    app: app
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  color: blue
`
)

// appManifestWith returns appManifest with replacements (old, new, ...).
func appManifestWith(oldnew ...string) string {
	return strings.NewReplacer(oldnew...).Replace(appManifest)
}

func TestApply(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("apply", k))
		dir := t.TempDir()
		v1 := writeFile(t, dir, "v1.yaml", appManifest)
		v2 := writeFile(t, dir, "v2.yaml", appManifestWith("color: blue", "color: green", "replicas: 2", "replicas: 3"))
		v3 := writeFile(t, dir, "v3.yaml", appManifestWith("color: blue", "size: XL"))
		cmOnly := writeFile(t, dir, "cm.yaml", appManifestWith("color: blue", "color: green", "replicas: 2", "replicas: 3"))
		t.Run("created", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "-f", v1, "--validate=false"),
				"deployment.apps/app created", "configmap/app-config created")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"), "2")
		})
		t.Run("unchanged", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "-f", v1, "--validate=false"),
				"deployment.apps/app unchanged", "configmap/app-config unchanged")
		})
		t.Run("configured", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "-f", v2, "--validate=false"),
				"deployment.apps/app configured", "configmap/app-config configured")
			equals(t, k.run(t, "-n", ns, "get", "cm", "app-config", "-o", "jsonpath={.data.color}"), "green")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"), "3")
			okWith(t, k.run(t, "-n", ns, "apply", "-f", cmOnly, "--validate=false"),
				"deployment.apps/app unchanged", "configmap/app-config unchanged")
		})
		t.Run("last-applied", func(t *testing.T) {
			for _, obj := range []string{"cm/app-config", "deploy/app"} {
				r := k.run(t, "-n", ns, "get", obj, "-o", `jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`)
				if ok(t, r) && !strings.Contains(r.stdout, `"name":"app`) {
					t.Errorf("want the last-applied-configuration annotation on %s\n%s", obj, r)
				}
			}
			okWith(t, k.run(t, "-n", ns, "apply", "view-last-applied", "cm/app-config"), "color: green")
		})
		t.Run("field-removed", func(t *testing.T) {
			// The three-way merge drops what the last apply set and the
			// file no longer has.
			okWith(t, k.run(t, "-n", ns, "apply", "-f", v3, "--validate=false"), "configmap/app-config configured")
			equals(t, k.run(t, "-n", ns, "get", "cm", "app-config", "-o", "jsonpath={.data}"), `{"size":"XL"}`)
		})
	})
}

// getFixture creates what TestGet lists: deployments web and api (labelled
// tier=backend), a ConfigMap, a pod and a service.
func getFixture(t *testing.T, k *kubectl, ns string) {
	t.Helper()
	newNamespace(t, k, ns)
	must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
	must(t, k, "-n", ns, "create", "deploy", "api", "--image=nginx:1.25")
	must(t, k, "-n", ns, "label", "deploy", "api", "tier=backend")
	must(t, k, "-n", ns, "create", "cm", "cfg", "--from-literal=color=blue")
	must(t, k, "-n", ns, "run", "bb", "--image=busybox")
	must(t, k, "-n", ns, "create", "svc", "clusterip", "web", "--tcp=80:8080")
}

func TestGet(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := nsFor("get", k)
		getFixture(t, k, ns)
		get := func(t *testing.T, args ...string) result {
			t.Helper()
			return k.run(t, append([]string{"-n", ns, "get"}, args...)...)
		}
		t.Run("table", func(t *testing.T) {
			r := get(t, "deploy")
			header(t, r, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE")
			row(t, r, "web", "0/1", "*", "0", age)
			row(t, r, "api", "0/1", "*", "0", age)
			r = get(t, "cm", "cfg")
			header(t, r, "NAME   DATA   AGE")
			row(t, r, "cfg", "1", age)
			r = k.run(t, "get", "ns")
			header(t, r, "NAME              STATUS   AGE")
			for _, n := range []string{"default", "kube-node-lease", "kube-public", "kube-system", ns} {
				row(t, r, n, "Active", age)
			}
			r = get(t, "pods")
			// The deployments' pods are there too, with longer names.
			headerCells(t, r, "NAME", "READY", "STATUS", "RESTARTS", "AGE")
			row(t, r, "bb", "0/1", "Pending", "0", age)
		})
		t.Run("wide", func(t *testing.T) {
			r := get(t, "deploy", "web", "-o", "wide")
			header(t, r, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES   SELECTOR")
			row(t, r, "web", "0/1", "*", "0", age, "nginx", "nginx", "app=web")
			r = get(t, "pod", "bb", "-o", "wide")
			headerCells(t, r, "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES")
			row(t, r, "bb", "0/1", "Pending", "0", age, "<none>", "<none>", "<none>", "<none>")
		})
		t.Run("yaml", func(t *testing.T) {
			r := get(t, "deploy", "web", "-o", "yaml")
			if obj, good := decodeYAML(t, r); good {
				fieldIs(t, r, obj, "apiVersion", "apps/v1")
				fieldIs(t, r, obj, "kind", "Deployment")
				fieldIs(t, r, obj, "metadata.name", "web")
				fieldIs(t, r, obj, "metadata.namespace", ns)
				fieldIs(t, r, obj, "spec.template.spec.containers.0.image", "nginx")
				if _, found := field(obj, "metadata.uid"); !found {
					t.Errorf("want metadata.uid\n%s", r)
				}
			}
		})
		t.Run("json", func(t *testing.T) {
			r := get(t, "deploy", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "kind", "List")
				fieldIs(t, r, obj, "apiVersion", "v1")
				items, _ := field(obj, "items")
				if list, _ := items.([]any); len(list) != 2 {
					t.Errorf("want 2 items, got %d\n%s", len(list), r)
				}
				fieldIs(t, r, obj, "items.0.kind", "Deployment")
				fieldIs(t, r, obj, "items.0.apiVersion", "apps/v1")
				fieldIs(t, r, obj, "items.0.metadata.name", "api") // sorted by name
			}
			r = get(t, "cm", "cfg", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "kind", "ConfigMap")
				fieldIs(t, r, obj, "data.color", "blue")
			}
		})
		t.Run("name", func(t *testing.T) {
			equals(t, get(t, "deploy", "-o", "name"), "deployment.apps/api\ndeployment.apps/web")
			// kube-root-ca.crt is in every namespace, as upstream publishes it.
			// run=bb: the deployments' pods are there too.
			equals(t, get(t, "cm,pods", "-l", "run=bb", "-o", "name"), "pod/bb")
			equals(t, get(t, "cm", "-o", "name"), "configmap/cfg\nconfigmap/kube-root-ca.crt")
		})
		t.Run("jsonpath", func(t *testing.T) {
			equals(t, get(t, "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), "nginx")
			equals(t, get(t, "deploy", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}{"\n"}{end}`), "api=1\nweb=1")
			equals(t, get(t, "deploy", "-o", "jsonpath={.items[*].metadata.name}"), "api web")
		})
		t.Run("custom-columns", func(t *testing.T) {
			r := get(t, "deploy", "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image,REPLICAS:.spec.replicas")
			header(t, r, "NAME   IMAGE        REPLICAS")
			row(t, r, "api", "nginx:1.25", "1")
			row(t, r, "web", "nginx", "1")
		})
		t.Run("show-labels", func(t *testing.T) {
			r := get(t, "deploy", "--show-labels")
			header(t, r, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   LABELS")
			row(t, r, "api", "0/1", "*", "0", age, "app=api,tier=backend")
			row(t, r, "web", "0/1", "*", "0", age, "app=web")
		})
		t.Run("label-columns", func(t *testing.T) {
			r := get(t, "deploy", "-L", "tier", "-L", "app")
			header(t, r, "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   TIER      APP")
			row(t, r, "api", "0/1", "*", "0", age, "backend", "api")
			row(t, r, "web", "0/1", "*", "0", age, "web") // empty TIER
		})
		t.Run("all-namespaces", func(t *testing.T) {
			r := k.run(t, "get", "deploy", "-A")
			headerCells(t, r, "NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE")
			row(t, r, ns, "web", "0/1", "*", "0", age)
			row(t, r, ns, "api", "0/1", "*", "0", age)
			r = k.run(t, "get", "ns", "-A")
			row(t, r, ns, "Active", age)
		})
		t.Run("label-selector", func(t *testing.T) {
			equals(t, get(t, "deploy", "-l", "tier=backend", "-o", "name"), "deployment.apps/api")
			equals(t, get(t, "deploy", "-l", "tier!=backend", "-o", "name"), "deployment.apps/web")
			equals(t, get(t, "deploy", "-l", "app in (web,api)", "-o", "name"), "deployment.apps/api\ndeployment.apps/web")
			equals(t, get(t, "deploy", "-l", "!tier", "-o", "name"), "deployment.apps/web")
			equals(t, get(t, "pods", "-l", "run=bb", "-o", "name"), "pod/bb")
			r := get(t, "deploy", "-l", "app=nothing")
			if equals(t, r, "") {
				contains(t, r, r.stderr, "stderr", "No resources found in "+ns+" namespace.")
			}
			fails(t, get(t, "deploy", "-l", "app in (x"), "unable to parse requirement")
		})
		t.Run("field-selector", func(t *testing.T) {
			equals(t, get(t, "deploy", "--field-selector", "metadata.name=web", "-o", "name"), "deployment.apps/web")
			equals(t, get(t, "deploy", "--field-selector", "metadata.name!=web", "-o", "name"), "deployment.apps/api")
			equals(t, k.run(t, "get", "ns", "--field-selector", "metadata.name="+ns, "-o", "name"), "namespace/"+ns)
			equals(t, k.run(t, "get", "cm", "-A", "--field-selector", "metadata.namespace="+ns+",metadata.name!=kube-root-ca.crt", "-o", "name"), "configmap/cfg")
			// Pods have more fields: what students use to find pods by
			// phase or node.
			equals(t, get(t, "pods", "-l", "run=bb", "--field-selector", "status.phase=Pending", "-o", "name"), "pod/bb")
			equals(t, get(t, "pods", "-l", "run=bb", "--field-selector", "spec.nodeName=", "-o", "name"), "pod/bb")
			equals(t, get(t, "pods", "-l", "run=bb", "--field-selector", "status.phase=Running", "-o", "name"), "")
			fails(t, get(t, "deploy", "--field-selector", "spec.paused=true"),
				"(BadRequest)", "field label not supported: spec.paused")
		})
		t.Run("all", func(t *testing.T) {
			r := get(t, "all")
			okWith(t, r, "pod/bb", "service/web", "deployment.apps/web", "deployment.apps/api")
			if ok(t, r) && strings.Contains(r.stdout, "configmap/") {
				t.Errorf("want no ConfigMaps in get all (they are not in the category all)\n%s", r)
			}
		})
		t.Run("not-found", func(t *testing.T) {
			fails(t, get(t, "deploy", "nope"), "Error from server (NotFound)", `deployments.apps "nope" not found`)
			fails(t, get(t, "foos"), `the server doesn't have a resource type "foos"`)
			r := k.run(t, "-n", "no-such-ns", "get", "cm")
			if equals(t, r, "") {
				contains(t, r, r.stderr, "stderr", "No resources found in no-such-ns namespace.")
			}
		})
	})
}

func TestDescribe(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("describe", k))
		must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
		must(t, k, "-n", ns, "create", "cm", "cfg", "--from-literal=color=blue")
		must(t, k, "-n", ns, "run", "bb", "--image=busybox")
		t.Run("deployment", func(t *testing.T) {
			r := k.run(t, "-n", ns, "describe", "deploy", "web")
			if ok(t, r) {
				matches(t, r, `(?m)^Name:\s+web$`, `(?m)^Namespace:\s+`+ns+`$`, `(?m)^Selector:\s+app=web$`,
					`(?m)^Replicas:\s+1 desired`, `(?m)^StrategyType:\s+RollingUpdate$`,
					`(?m)^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$`, `(?m)^\s+Image:\s+nginx$`)
			}
		})
		t.Run("configmap", func(t *testing.T) {
			// describe lists the object's events with a field selector on
			// involvedObject.
			r := k.run(t, "-n", ns, "describe", "cm", "cfg")
			if ok(t, r) {
				matches(t, r, `(?m)^Name:\s+cfg$`, `(?m)^Namespace:\s+`+ns+`$`, `(?m)^Data$`, `(?m)^color:$`, `(?m)^blue$`)
			}
		})
		t.Run("namespace", func(t *testing.T) {
			r := k.run(t, "describe", "ns", ns)
			if ok(t, r) {
				matches(t, r, `(?m)^Name:\s+`+ns+`$`, `(?m)^Status:\s+Active$`, `kubernetes.io/metadata.name=`+ns)
			}
		})
		t.Run("pod", func(t *testing.T) {
			r := k.run(t, "-n", ns, "describe", "pod", "bb")
			if ok(t, r) {
				matches(t, r, `(?m)^Name:\s+bb$`, `(?m)^Status:\s+Pending$`, `(?m)^QoS Class:\s+BestEffort$`)
			}
		})
	})
}

func TestModify(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("modify", k))
		must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
		must(t, k, "-n", ns, "create", "cm", "cfg", "--from-literal=color=blue")
		jp := func(t *testing.T, obj, path string) result {
			t.Helper()
			return k.run(t, "-n", ns, "get", obj, "-o", "jsonpath="+path)
		}
		t.Run("edit", func(t *testing.T) {
			dir := t.TempDir()
			script := writeFile(t, dir, "editor.sh", "#!/bin/sh\nsed -i 's/color: blue/color: red/' \"$1\"\n")
			if err := chmodX(script); err != nil {
				t.Fatal(err)
			}
			ed := k.withEnv("KUBE_EDITOR=" + script)
			okWith(t, ed.run(t, "-n", ns, "edit", "cm", "cfg", "--validate=false"), "configmap/cfg edited")
			equals(t, jp(t, "cm/cfg", "{.data.color}"), "red")
			// An editor that changes nothing: nothing to do.
			r := k.withEnv("KUBE_EDITOR=true").run(t, "-n", ns, "edit", "cm", "cfg", "--validate=false")
			if ok(t, r) {
				contains(t, r, r.stdout+r.stderr, "output", "Edit cancelled, no changes made.")
			}
		})
		t.Run("patch-strategic", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "-p", `{"spec":{"replicas":2}}`), "deployment.apps/web patched")
			equals(t, jp(t, "deploy/web", "{.spec.replicas}"), "2")
			// Containers merge by name: a new one is added beside nginx.
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=strategic", "-p",
				`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}`), "deployment.apps/web patched")
			equals(t, jp(t, "deploy/web", "{.spec.template.spec.containers[*].name}"), "sidecar nginx")
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "-p",
				`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`), "deployment.apps/web patched")
			equals(t, jp(t, "deploy/web", "{.spec.template.spec.containers[*].name}"), "nginx")
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "-p", `{"spec":{"replicas":2}}`), "deployment.apps/web patched (no change)")
		})
		t.Run("patch-merge", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "patch", "cm", "cfg", "--type=merge", "-p", `{"data":{"size":"L","color":null}}`), "configmap/cfg patched")
			equals(t, jp(t, "cm/cfg", "{.data}"), `{"size":"L"}`)
		})
		t.Run("patch-json", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=json", "-p",
				`[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels/tier","value":"fe"}]`), "deployment.apps/web patched")
			equals(t, jp(t, "deploy/web", "{.spec.replicas} {.metadata.labels.tier}"), "4 fe")
			// A patch that cannot be applied is 422 Unprocessable Entity
			// (reason Invalid) upstream, with the generic message of
			// NewGenericServerResponse, which kubectl words so.
			fails(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=json", "-p",
				`[{"op":"test","path":"/spec/replicas","value":99}]`), "The request is invalid", "the server rejected our request")
			fails(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=json", "-p",
				`[{"op":"remove","path":"/spec/nothing"}]`), "The request is invalid")
		})
		t.Run("generation", func(t *testing.T) {
			// Spec changes bump metadata.generation, metadata ones do not.
			r := jp(t, "deploy/web", "{.metadata.generation}")
			var before int
			if _, err := fmt.Sscan(r.stdout, &before); err != nil || before < 1 {
				t.Errorf("want metadata.generation >= 1\n%s", r)
			}
			must(t, k, "-n", ns, "set", "image", "deploy/web", "nginx=nginx:1.27")
			equals(t, jp(t, "deploy/web", "{.metadata.generation}"), fmt.Sprint(before+1))
			must(t, k, "-n", ns, "label", "deploy/web", "gen=test")
			equals(t, jp(t, "deploy/web", "{.metadata.generation}"), fmt.Sprint(before+1))
		})
		t.Run("label", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "label", "cm", "cfg", "env=prod"), "configmap/cfg labeled")
			equals(t, jp(t, "cm/cfg", "{.metadata.labels.env}"), "prod")
			fails(t, k.run(t, "-n", ns, "label", "cm", "cfg", "env=dev"), "'env' already has a value (prod), and --overwrite is false")
			okWith(t, k.run(t, "-n", ns, "label", "cm", "cfg", "env=dev", "--overwrite"), "configmap/cfg labeled")
			equals(t, jp(t, "cm/cfg", "{.metadata.labels.env}"), "dev")
			okWith(t, k.run(t, "-n", ns, "label", "cm", "cfg", "env-"), "configmap/cfg unlabeled")
			equals(t, jp(t, "cm/cfg", "{.metadata.labels}"), "")
			okWith(t, k.run(t, "label", "ns", ns, "team="+ns), "namespace/"+ns+" labeled")
			equals(t, k.run(t, "get", "ns", "-l", "team="+ns, "-o", "name"), "namespace/"+ns)
		})
		t.Run("annotate", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "annotate", "cm", "cfg", "note=hello world"), "configmap/cfg annotate")
			equals(t, jp(t, "cm/cfg", "{.metadata.annotations.note}"), "hello world")
			okWith(t, k.run(t, "-n", ns, "annotate", "cm", "cfg", "note-"), "configmap/cfg annotate")
			equals(t, jp(t, "cm/cfg", "{.metadata.annotations}"), "")
		})
		t.Run("scale", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "scale", "deploy", "web", "--replicas=5"), "deployment.apps/web scaled")
			equals(t, jp(t, "deploy/web", "{.spec.replicas}"), "5")
			fails(t, k.run(t, "-n", ns, "scale", "deploy", "web", "--current-replicas=3", "--replicas=1"),
				"Expected replicas to be 3, was 5")
			equals(t, jp(t, "deploy/web", "{.spec.replicas}"), "5")
			r := k.run(t, "get", "--raw", "/apis/apps/v1/namespaces/"+ns+"/deployments/web/scale")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "kind", "Scale")
				fieldIs(t, r, obj, "apiVersion", "autoscaling/v1")
				fieldIs(t, r, obj, "spec.replicas", "5")
				fieldIs(t, r, obj, "status.selector", "app=web")
			}
		})
		t.Run("replace", func(t *testing.T) {
			dir := t.TempDir()
			v1 := writeFile(t, dir, "v1.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rep\ndata:\n  a: one\n")
			v2 := writeFile(t, dir, "v2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rep\ndata:\n  a: two\n")
			must(t, k, "-n", ns, "create", "-f", v1, "--validate=false")
			okWith(t, k.run(t, "-n", ns, "replace", "-f", v2, "--validate=false"), "configmap/rep replaced")
			equals(t, jp(t, "cm/rep", "{.data.a}"), "two")
			okWith(t, k.run(t, "-n", ns, "replace", "--force", "-f", v1, "--validate=false"), "configmap/rep replaced")
			equals(t, jp(t, "cm/rep", "{.data.a}"), "one")
		})
		t.Run("autoscale", func(t *testing.T) {
			// kubectl 1.27 and 1.28 create autoscaling/v1 HPAs, later ones
			// autoscaling/v2.
			okWith(t, k.run(t, "-n", ns, "autoscale", "deploy", "web", "--min=1", "--max=3", "--cpu-percent=80"),
				"horizontalpodautoscaler.autoscaling/web autoscaled")
			equals(t, jp(t, "hpa/web", "{.spec.minReplicas} {.spec.maxReplicas} {.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name}"), "1 3 Deployment/web")
		})
		t.Run("rollout-restart", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "rollout", "restart", "deploy", "web"), "deployment.apps/web restarted")
			r := jp(t, "deploy/web", `{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}`)
			if ok(t, r) {
				if _, err := time.Parse(time.RFC3339, strings.TrimSpace(r.stdout)); err != nil {
					t.Errorf("want a restartedAt time on the pod template\n%s", r)
				}
			}
		})
	})
}

func TestDelete(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("delete", k))
		t.Run("cascade", func(t *testing.T) {
			// The deployments have no dependents (no controllers run), so
			// every policy deletes at once upstream: the garbage collector
			// removes the foregroundDeletion and orphan finalizers.
			for _, policy := range []string{"background", "foreground", "orphan"} {
				t.Run(policy, func(t *testing.T) {
					t.Parallel()
					name := "d-" + policy
					must(t, k, "-n", ns, "create", "deploy", name, "--image=nginx")
					r := k.run(t, "-n", ns, "delete", "deploy", name, "--cascade="+policy, "--timeout=10s")
					okWith(t, r, `deployment.apps "`+name+`" deleted`)
					r = k.run(t, "-n", ns, "get", "deploy", name, "-o", "jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}")
					if r.code == 0 {
						t.Errorf("want deployment %s gone after delete --cascade=%s, it is still there (finalizers and deletionTimestamp: %s)", name, policy, r.stdout)
					} else {
						fails(t, r, `deployments.apps "`+name+`" not found`)
					}
				})
			}
		})
		t.Run("pod", func(t *testing.T) {
			// A pod on no node goes at once, without a grace period.
			must(t, k, "-n", ns, "run", "bb", "--image=busybox")
			okWith(t, k.run(t, "-n", ns, "delete", "pod", "bb", "--timeout=20s"), `pod "bb" deleted`)
			fails(t, k.run(t, "-n", ns, "get", "pod", "bb"), `pods "bb" not found`)
		})
		t.Run("file", func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "app.yaml", appManifest)
			must(t, k, "-n", ns, "apply", "-f", path, "--validate=false")
			okWith(t, k.run(t, "-n", ns, "delete", "-f", path), `deployment.apps "app" deleted`, `configmap "app-config" deleted`)
			fails(t, k.run(t, "-n", ns, "get", "deploy", "app"), `deployments.apps "app" not found`)
			fails(t, k.run(t, "-n", ns, "get", "cm", "app-config"), `configmaps "app-config" not found`)
			r := k.run(t, "-n", ns, "delete", "-f", path)
			fails(t, r, `deployments.apps "app" not found`)
			okWith(t, k.run(t, "-n", ns, "delete", "-f", path, "--ignore-not-found"))
		})
		t.Run("selector-and-all", func(t *testing.T) {
			for _, n := range []string{"a", "b", "c"} {
				must(t, k, "-n", ns, "create", "cm", "sel-"+n, "--from-literal=x=y")
			}
			must(t, k, "-n", ns, "label", "cm", "sel-a", "sel-b", "group=ab")
			okWith(t, k.run(t, "-n", ns, "delete", "cm", "-l", "group=ab"), `configmap "sel-a" deleted`, `configmap "sel-b" deleted`)
			equals(t, k.run(t, "-n", ns, "get", "cm", "-l", "!group", "--field-selector", "metadata.name!=kube-root-ca.crt", "-o", "name"), "configmap/sel-c")
			okWith(t, k.run(t, "-n", ns, "delete", "cm", "--all"), `configmap "sel-c" deleted`)
			// The root CA publisher puts its ConfigMap back; nothing else is left.
			equals(t, k.run(t, "-n", ns, "get", "cm", "--field-selector", "metadata.name!=kube-root-ca.crt", "-o", "name"), "")
		})
		t.Run("namespace", func(t *testing.T) {
			gone := newNamespace(t, k, nsFor("gone", k))
			must(t, k, "-n", gone, "create", "deploy", "web", "--image=nginx")
			must(t, k, "-n", gone, "create", "cm", "cfg", "--from-literal=a=b")
			must(t, k, "-n", gone, "create", "secret", "generic", "s", "--from-literal=a=b")
			must(t, k, "-n", gone, "run", "bb", "--image=busybox")
			must(t, k, "-n", gone, "create", "svc", "clusterip", "web", "--tcp=80")
			okWith(t, k.run(t, "delete", "ns", gone, "--timeout=60s"), `namespace "`+gone+`" deleted`)
			fails(t, k.run(t, "get", "ns", gone), `namespaces "`+gone+`" not found`)
			for _, kind := range []string{"deployments", "configmaps", "secrets", "pods", "services"} {
				equals(t, k.run(t, "-n", gone, "get", kind, "-o", "name"), "")
			}
			// A namespace of the same name starts empty but for what the
			// controllers put in every namespace.
			must(t, k, "create", "ns", gone)
			equals(t, k.run(t, "-n", gone, "get", "all,cm,secrets", "--field-selector", "metadata.name!=kube-root-ca.crt", "-o", "name"), "")
		})
	})
}

func TestWatch(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("watch", k))
		must(t, k, "-n", ns, "create", "cm", "w1", "--from-literal=a=b")
		t.Run("get-w", func(t *testing.T) {
			w := k.start(t, "-n", ns, "get", "cm", "-w")
			if _, seen := w.waitFor(20*time.Second, func(l string) bool { return strings.HasPrefix(l, "w1 ") }); !seen {
				t.Fatalf("get -w: no line for w1 from the initial list\n%s", w.output())
			}
			must(t, k, "-n", ns, "create", "cm", "w2", "--from-literal=a=b", "--from-literal=c=d")
			line, seen := w.waitFor(20*time.Second, func(l string) bool { return strings.HasPrefix(l, "w2 ") })
			if !seen {
				t.Fatalf("get -w: no line for w2 within 20 s of creating it\n%s", w.output())
			}
			if c := cells(line); !cellsMatch(c, []string{"w2", "2", age}) {
				t.Errorf("get -w: want the line w2 2 <age>, got %q", line)
			}
		})
		t.Run("output-watch-events", func(t *testing.T) {
			w := k.start(t, "-n", ns, "get", "cm", "w1", "-w", "--output-watch-events")
			event := func(typ string) {
				t.Helper()
				line, seen := w.waitFor(20*time.Second, func(l string) bool { c := cells(l); return len(c) > 1 && c[1] == "w1" })
				if !seen {
					t.Fatalf("get -w --output-watch-events: no %s line for w1 within 20 s\n%s", typ, w.output())
				}
				if c := cells(line); c[0] != typ {
					t.Errorf("want a %s event for w1, got %q\n%s", typ, line, w.output())
				}
			}
			event("ADDED")
			must(t, k, "-n", ns, "label", "cm", "w1", "watched=yes")
			event("MODIFIED")
			must(t, k, "-n", ns, "delete", "cm", "w1")
			event("DELETED")
		})
	})
}

func TestDiscovery(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		t.Run("api-resources", func(t *testing.T) {
			r := k.run(t, "api-resources")
			headerCells(t, r, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
			row(t, r, "deployments", "deploy", "apps/v1", "true", "Deployment")
			row(t, r, "configmaps", "cm", "v1", "true", "ConfigMap")
			row(t, r, "namespaces", "ns", "v1", "false", "Namespace")
			row(t, r, "pods", "po", "v1", "true", "Pod")
			row(t, r, "services", "svc", "v1", "true", "Service")
			row(t, r, "secrets", "v1", "true", "Secret")
			row(t, r, "jobs", "batch/v1", "true", "Job")
			r = k.run(t, "api-resources", "-o", "wide", "--api-group=apps")
			headerCells(t, r, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES")
			row(t, r, "deployments", "deploy", "apps/v1", "true", "Deployment", "create,delete,deletecollection,get,list,patch,update,watch", "all")
			r = k.run(t, "api-resources", "--namespaced=false", "-o", "name")
			okWith(t, r, "namespaces\n", "nodes\n", "clusterroles.rbac.authorization.k8s.io\n")
			if strings.Contains(r.stdout, "configmaps") {
				t.Errorf("want no namespaced resources with --namespaced=false\n%s", r)
			}
			r = k.run(t, "api-resources", "--verbs=list", "--namespaced", "-o", "name")
			okWith(t, r, "configmaps\n", "pods\n", "deployments.apps\n")
		})
		t.Run("api-versions", func(t *testing.T) {
			r := k.run(t, "api-versions")
			if ok(t, r) {
				have := map[string]bool{}
				for _, l := range lines(r) {
					have[l] = true
				}
				// What upstream always serves and kubectl or the course
				// uses: autoscaling/v1 is the Scale subresource's group
				// and still in many HPA manifests; authorization.k8s.io
				// answers kubectl auth can-i.
				for _, gv := range []string{"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2",
					"networking.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
					"authorization.k8s.io/v1"} {
					if !have[gv] {
						t.Errorf("want %s in api-versions\n%s", gv, r)
					}
				}
			}
		})
		t.Run("version", func(t *testing.T) {
			r := k.run(t, "version", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "serverVersion.major", "1")
				if v, _ := field(obj, "serverVersion.gitVersion"); !strings.HasPrefix(show(v), "v1.") {
					t.Errorf("want serverVersion.gitVersion v1.x.y, got %v\n%s", v, r)
				}
			}
		})
		t.Run("cluster-info", func(t *testing.T) {
			okWith(t, k.run(t, "cluster-info"), "Kubernetes control plane", "is running at", "https://"+c.addr)
		})
		t.Run("auth-can-i", func(t *testing.T) {
			equals(t, k.run(t, "auth", "can-i", "create", "deployments"), "yes")
		})
		t.Run("diff", func(t *testing.T) {
			if k.minor < 29 {
				t.Skipf("kubectl %s diff reads /openapi/v2: see TestOpenAPIDependent", k.version)
			}
			testDiff(t, t, k, nsFor("diff", k))
		})
	})
}

// testDiff checks kubectl diff: exit code 0 when the live objects are what
// the file says, 1 with a unified diff when they differ. tb takes the
// failures (softT in TestOpenAPIDependent).
func testDiff(t *testing.T, tb testing.TB, k *kubectl, ns string) {
	must(t, k, "create", "ns", ns)
	dir := t.TempDir()
	cm := func(name, color string) string {
		return writeFile(t, dir, name+"-"+color+".yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+name+"\ndata:\n  color: "+color+"\n")
	}
	must(t, k, "-n", ns, "apply", "-f", cm("live", "blue"), "--validate=false")
	r := k.run(tb, "-n", ns, "diff", "-f", cm("live", "blue"))
	if r.code != 0 || r.stdout != "" {
		tb.Errorf("diff of an unchanged object: want exit code 0 and no output\n%s", r)
	}
	r = k.run(tb, "-n", ns, "diff", "-f", cm("live", "green"))
	if r.code != 1 || !strings.Contains(r.stdout, "-  color: blue") || !strings.Contains(r.stdout, "+  color: green") {
		tb.Errorf("diff of a changed object: want exit code 1 and the lines -  color: blue, +  color: green\n%s", r)
	}
	r = k.run(tb, "-n", ns, "diff", "-f", cm("newcm", "red"))
	if r.code != 1 || !strings.Contains(r.stdout, "+  name: newcm") {
		tb.Errorf("diff of a new object: want exit code 1 and the line +  name: newcm\n%s", r)
	}
	equals(tb, k.run(tb, "-n", ns, "get", "cm", "live", "-o", "jsonpath={.data.color}"), "blue")
	fails(tb, k.run(tb, "-n", ns, "get", "cm", "newcm"), `configmaps "newcm" not found`)
}

func TestDryRun(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("dryrun", k))
		must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
		t.Run("create-server", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "create", "cm", "dry", "--from-literal=a=b", "--dry-run=server"), "configmap/dry created (server dry run)")
			r := k.run(t, "-n", ns, "create", "cm", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "json")
			if obj, good := decodeJSON(t, r); good {
				fieldIs(t, r, obj, "metadata.namespace", ns)
				if _, found := field(obj, "metadata.uid"); !found {
					t.Errorf("want the server's answer to a dry run to have metadata.uid\n%s", r)
				}
			}
			fails(t, k.run(t, "-n", ns, "get", "cm", "dry"), `configmaps "dry" not found`)
		})
		t.Run("create-server-exists", func(t *testing.T) {
			// A dry run answers as the real request would.
			fails(t, k.run(t, "-n", ns, "create", "deploy", "web", "--image=nginx", "--dry-run=server"),
				`deployments.apps "web" already exists`)
		})
		t.Run("create-server-invalid", func(t *testing.T) {
			fails(t, k.run(t, "-n", ns, "create", "cm", "Bad_Name", "--from-literal=a=b", "--dry-run=server"),
				"is invalid", "metadata.name: Invalid value")
		})
		t.Run("create-client", func(t *testing.T) {
			r := k.run(t, "-n", ns, "create", "deploy", "cdry", "--image=nginx", "--dry-run=client", "-o", "yaml")
			if obj, good := decodeYAML(t, r); good {
				fieldIs(t, r, obj, "kind", "Deployment")
				fieldIs(t, r, obj, "metadata.name", "cdry")
			}
			okWith(t, k.run(t, "-n", ns, "create", "cm", "cdry", "--from-literal=a=b", "--dry-run=client"), "configmap/cdry created (dry run)")
			fails(t, k.run(t, "-n", ns, "get", "deploy", "cdry"), `deployments.apps "cdry" not found`)
			fails(t, k.run(t, "-n", ns, "get", "cm", "cdry"), `configmaps "cdry" not found`)
		})
		t.Run("apply-server", func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "app.yaml", appManifest)
			okWith(t, k.run(t, "-n", ns, "apply", "-f", path, "--dry-run=server", "--validate=false"),
				"deployment.apps/app created (server dry run)", "configmap/app-config created (server dry run)")
			fails(t, k.run(t, "-n", ns, "get", "deploy", "app"), `deployments.apps "app" not found`)
			fails(t, k.run(t, "-n", ns, "get", "cm", "app-config"), `configmaps "app-config" not found`)
		})
		t.Run("apply-client", func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "app.yaml", appManifest)
			okWith(t, k.run(t, "-n", ns, "apply", "-f", path, "--dry-run=client", "--validate=false"),
				"deployment.apps/app created (dry run)", "configmap/app-config created (dry run)")
			fails(t, k.run(t, "-n", ns, "get", "deploy", "app"), `deployments.apps "app" not found`)
		})
		t.Run("modify-server", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "scale", "deploy", "web", "--replicas=7", "--dry-run=server"), "deployment.apps/web scaled (server dry run)")
			okWith(t, k.run(t, "-n", ns, "label", "deploy", "web", "dry=run", "--dry-run=server"), "deployment.apps/web labeled (server dry run)")
			// kubectl patch does not say "(server dry run)".
			okWith(t, k.run(t, "-n", ns, "patch", "deploy", "web", "-p", `{"spec":{"replicas":9}}`, "--dry-run=server"), "deployment.apps/web patched")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}|{.metadata.labels.dry}"), "1|")
		})
		t.Run("delete-server", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "delete", "deploy", "web", "--dry-run=server"), `deployment.apps "web" deleted (server dry run)`)
			okWith(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "name"), "deployment.apps/web")
		})
	})
}

func TestBadInput(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("bad", k))
		dir := t.TempDir()
		file := func(name, content string) string { return writeFile(t, dir, name, content) }
		raw := "/api/v1/namespaces/" + ns + "/configmaps"
		t.Run("malformed-json", func(t *testing.T) {
			bad := file("bad.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"`)
			fails(t, k.run(t, "-n", ns, "create", "-f", bad), "error parsing "+bad)
			// The same bytes sent to the server as they are.
			fails(t, k.run(t, "create", "--raw", raw, "-f", bad), "Error from server (BadRequest)", "json parse error")
		})
		t.Run("malformed-yaml", func(t *testing.T) {
			bad := file("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data:\n  a: b\n")
			fails(t, k.run(t, "-n", ns, "create", "-f", bad), "error parsing "+bad, "line 4: did not find expected key")
		})
		t.Run("unknown-kind", func(t *testing.T) {
			f := file("kind.yaml", "apiVersion: v1\nkind: Fruit\nmetadata:\n  name: x\n")
			fails(t, k.run(t, "-n", ns, "create", "-f", f, "--validate=false"), `no matches for kind "Fruit" in version "v1"`, "ensure CRDs are installed first")
			f = file("version.yaml", "apiVersion: apps/v9\nkind: Deployment\nmetadata:\n  name: x\n")
			fails(t, k.run(t, "-n", ns, "create", "-f", f, "--validate=false"), `no matches for kind "Deployment" in version "apps/v9"`)
			// Sent to the server as they are.
			f = file("secret.json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`)
			fails(t, k.run(t, "create", "--raw", raw, "-f", f), "Error from server (BadRequest)", "Secret", "ConfigMap")
			f = file("v9.json", `{"apiVersion":"apps/v9","kind":"Deployment","metadata":{"name":"d"}}`)
			fails(t, k.run(t, "create", "--raw", "/apis/apps/v1/namespaces/"+ns+"/deployments", "-f", f), "Error from server (BadRequest)", "apps/v9")
		})
		t.Run("unknown-field", func(t *testing.T) {
			yml := file("unknown.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unknown\ndata:\n  a: b\nbogus: 1\n")
			// --validate=false: the server drops the field silently.
			okWith(t, k.run(t, "-n", ns, "create", "-f", yml, "--validate=false"), "configmap/unknown created")
			// Server-side field validation, asked for directly (kubectl's
			// --validate=strict needs OpenAPI: see TestOpenAPIDependent).
			js := file("unknown.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"unknown2"},"data":{"a":"b"},"bogus":1}`)
			fails(t, k.run(t, "create", "--raw", raw+"?fieldValidation=Strict", "-f", js), "Error from server (BadRequest)", `strict decoding error: unknown field "bogus"`)
			r := k.run(t, "create", "--raw", raw+"?fieldValidation=Warn", "-f", js)
			if ok(t, r) {
				contains(t, r, r.stderr, "stderr", `Warning: unknown field "bogus"`)
			}
		})
		t.Run("invalid-names", func(t *testing.T) {
			fails(t, k.run(t, "-n", ns, "create", "cm", "Bad_Name", "--from-literal=a=b"),
				`ConfigMap "Bad_Name" is invalid`, `metadata.name: Invalid value: "Bad_Name"`, "a lowercase RFC 1123 subdomain must consist of")
			long := strings.Repeat("a", 254)
			fails(t, k.run(t, "-n", ns, "create", "cm", long, "--from-literal=a=b"),
				"is invalid", "metadata.name: Invalid value", "must be no more than 253 characters")
			// Namespaces are DNS labels: 63 characters, no dots.
			fails(t, k.run(t, "create", "ns", strings.Repeat("n", 64)),
				`metadata.name: Invalid value: "nnnn`, "must be no more than 63 characters")
			fails(t, k.run(t, "create", "ns", "ns_1"),
				`The Namespace "ns_1" is invalid`, "a lowercase RFC 1123 label must consist of")
			// A valid DNS subdomain, not a label (upstream 1.37 words it
			// "must not contain dots").
			fails(t, k.run(t, "create", "ns", "bad.ns"),
				`The Namespace "bad.ns" is invalid`, `metadata.name: Invalid value: "bad.ns"`)
			// Services are DNS-1035 labels: they start with a letter.
			fails(t, k.run(t, "-n", ns, "create", "svc", "clusterip", "1svc", "--tcp=80"),
				`Service "1svc" is invalid`, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character")
			fails(t, k.run(t, "-n", ns, "run", "Bad_Pod", "--image=busybox"), `Pod "Bad_Pod" is invalid`)
			equals(t, k.run(t, "-n", ns, "get", "svc,pods", "-o", "name"), "")
		})
		t.Run("invalid-spec", func(t *testing.T) {
			must(t, k, "-n", ns, "create", "deploy", "web", "--image=nginx")
			fails(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"replicas":-1}}`),
				`The Deployment "web" is invalid`, "spec.replicas: Invalid value: -1: must be greater than or equal to 0")
			fails(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"template":{"metadata":{"labels":{"app":"other"}}}}}`),
				`The Deployment "web" is invalid`, "`selector` does not match template `labels`")
			fails(t, k.run(t, "-n", ns, "patch", "deploy", "web", "--type=merge", "-p", `{"spec":{"selector":{"matchLabels":{"app":"new"}},"template":{"metadata":{"labels":{"app":"new"}}}}}`),
				`The Deployment "web" is invalid`, "spec.selector", "field is immutable")
			equals(t, k.run(t, "-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.selector.matchLabels.app}"), "1 web")
		})
		t.Run("missing-namespace", func(t *testing.T) {
			fails(t, k.run(t, "-n", "no-such-ns", "create", "cm", "x", "--from-literal=a=b"), `namespaces "no-such-ns" not found`)
		})
		t.Run("configmap-over-1MiB", func(t *testing.T) {
			f := file("mid.yaml", bigConfigMap("mid", 1536<<10))
			fails(t, k.run(t, "-n", ns, "create", "-f", f, "--validate=false"),
				`The ConfigMap "mid" is invalid`, "Too long", "1048576 bytes")
			fails(t, k.run(t, "-n", ns, "get", "cm", "mid"), `configmaps "mid" not found`)
		})
		t.Run("configmap-over-3MiB", func(t *testing.T) {
			f := file("big.yaml", bigConfigMap("big", 3<<20+1024))
			fails(t, k.run(t, "-n", ns, "create", "-f", f, "--validate=false"),
				"Error from server (RequestEntityTooLarge)", "Request entity too large", "3145728")
			fails(t, k.run(t, "-n", ns, "get", "cm", "big"), `configmaps "big" not found`)
		})
	})
}

func bigConfigMap(name string, size int) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  blob: " + strings.Repeat("x", size) + "\n"
}

func chmodX(path string) error { return os.Chmod(path, 0o755) }
