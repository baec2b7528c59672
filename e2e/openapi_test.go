package e2e

import (
	"net/http"
	"regexp"
	"testing"
)

// openAPIServed reports whether the server publishes /openapi/v2 or
// /openapi/v3.
func (c *cluster) openAPIServed(t *testing.T) bool {
	served := false
	for _, path := range []string{"/openapi/v2", "/openapi/v3"} {
		code, _, err := c.get(path)
		t.Logf("GET %s: %d %v", path, code, err)
		if err == nil && code == http.StatusOK {
			served = true
		}
	}
	return served
}

// TestOpenAPIDependent holds the checks that need the server's OpenAPI
// documents: kubectl's client-side and strict validation (apply, create and
// edit without --validate=false), kubectl explain, and kubectl diff before
// 1.29 (which reads /openapi/v2). They assert upstream's behaviour.
//
// While the server publishes neither /openapi/v2 nor /openapi/v3 their
// failures are expected: they are logged as EXPECTED FAILURE and do not
// fail the test. As soon as either document is served they count like any
// other check.
func TestOpenAPIDependent(t *testing.T) {
	c := startCluster(t)
	served := c.openAPIServed(t)
	if !served {
		t.Log("the server publishes no OpenAPI yet: failures below are logged as EXPECTED FAILURE and do not fail the test")
	}
	// check runs fn as a subtest whose failures are expected while the
	// server publishes no OpenAPI.
	check := func(t *testing.T, name string, fn func(t *testing.T, tb testing.TB)) {
		t.Run(name, func(t *testing.T) {
			if served {
				fn(t, t)
				return
			}
			soft := &softT{TB: t, why: "no OpenAPI yet"}
			fn(t, soft)
			if soft.failures == 0 {
				t.Log("passes although the server publishes no OpenAPI")
			}
		})
	}
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		ns := newNamespace(t, k, nsFor("openapi", k))
		dir := t.TempDir()
		check(t, "apply", func(t *testing.T, tb testing.TB) {
			path := writeFile(t, dir, "app.yaml", appManifest)
			okWith(tb, k.run(tb, "-n", ns, "apply", "-f", path), "deployment.apps/app created", "configmap/app-config created")
			okWith(tb, k.run(tb, "-n", ns, "apply", "-f", path), "deployment.apps/app unchanged", "configmap/app-config unchanged")
			path = writeFile(t, dir, "app2.yaml", appManifestWith("color: blue", "color: green"))
			okWith(tb, k.run(tb, "-n", ns, "apply", "-f", path), "configmap/app-config configured")
		})
		check(t, "create", func(t *testing.T, tb testing.TB) {
			path := writeFile(t, dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: validated\ndata:\n  a: b\n")
			okWith(tb, k.run(tb, "-n", ns, "create", "-f", path), "configmap/validated created")
		})
		check(t, "validate-strict", func(t *testing.T, tb testing.TB) {
			path := writeFile(t, dir, "unknown.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unknown\ndata:\n  a: b\nbogus: 1\n")
			fails(tb, k.run(tb, "-n", ns, "create", "-f", path, "--validate=strict"), `unknown field "bogus"`)
			fails(tb, k.run(tb, "-n", ns, "get", "cm", "unknown"), `configmaps "unknown" not found`)
			// Warn: created, with a warning.
			r := k.run(tb, "-n", ns, "create", "-f", path, "--validate=warn")
			if okWith(tb, r, "configmap/unknown created") {
				contains(tb, r, r.stderr, "stderr", `unknown field "bogus"`)
			}
		})
		check(t, "edit", func(t *testing.T, tb testing.TB) {
			must(t, k, "-n", ns, "create", "cm", "edited", "--from-literal=color=blue")
			script := writeFile(t, dir, "editor.sh", "#!/bin/sh\nsed -i 's/color: blue/color: red/' \"$1\"\n")
			if err := chmodX(script); err != nil {
				t.Fatal(err)
			}
			okWith(tb, k.withEnv("KUBE_EDITOR="+script).run(tb, "-n", ns, "edit", "cm", "edited"), "configmap/edited edited")
			equals(tb, k.run(tb, "-n", ns, "get", "cm", "edited", "-o", "jsonpath={.data.color}"), "red")
		})
		check(t, "explain", func(t *testing.T, tb testing.TB) {
			r := k.run(tb, "explain", "deployment.spec.replicas")
			if ok(tb, r) {
				for _, re := range []string{`KIND:\s+Deployment`, `VERSION:\s+(apps/)?v1`, `FIELD:\s+replicas\s+<integer>`, `DESCRIPTION:`, `Number of desired pods`} {
					if !regexp.MustCompile(re).MatchString(r.stdout) {
						tb.Errorf("want explain's output to match %q\n%s", re, r)
					}
				}
			}
			r = k.run(tb, "explain", "pods")
			if ok(tb, r) {
				contains(tb, r, r.stdout, "stdout", "FIELDS:", "spec", "status")
			}
		})
		if k.minor < 29 {
			check(t, "diff", func(t *testing.T, tb testing.TB) {
				testDiff(t, tb, k, nsFor("openapi-diff", k))
			})
		}
	})
}
