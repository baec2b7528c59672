package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// crdManifest is a CRD like the course's chapter 18 has students write:
// a schema with a required field, a minimum, a default and an enum,
// printer columns, the status and scale subresources, a short name, the
// "all" category, and two versions (v1 stored, v1beta1 deprecated). Each
// kubectl version gets a group of its own: CRDs are cluster-wide.
func crdManifest(group string) string {
	version := func(name string, storage bool, extra string) string {
		return fmt.Sprintf(`
  - name: %s
    served: true
    storage: %t%s
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                default: 1
              mode:
                type: string
                enum: [fast, slow]
          status:
            type: object
            properties:
              replicas:
                type: integer
              selector:
                type: string`, name, storage, extra)
	}
	return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.` + group + `
spec:
  group: ` + group + `
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:` + version("v1", true, "") + version("v1beta1", false, "\n    deprecated: true\n    deprecationWarning: \"v1beta1 CronTab is old: use v1\"") + "\n"
}

func crontabManifest(group, name, spec string) string {
	return fmt.Sprintf("apiVersion: %s/v1\nkind: CronTab\nmetadata:\n  name: %s\nspec:\n%s", group, name, spec)
}

// TestCustomResources drives a CRD with stock kubectl: the CRD applied and
// established, objects created, listed with their printer columns,
// validated (with the field named), defaulted and pruned, explained,
// served in both versions, their status and scale subresources, and the
// CRD's deletion taking its objects along.
func TestCustomResources(t *testing.T) {
	c := startCluster(t)
	forVersions(t, c, func(t *testing.T, k *kubectl) {
		// Both versions' CRDs serve "crontabs" (in groups of their own):
		// names are qualified with the group, as kubectl would pick either.
		group := fmt.Sprintf("s%d.example.com", k.minor)
		crd := "crontabs." + group
		ct := "crontab." + group
		ns := newNamespace(t, k, nsFor("crd", k))
		dir := t.TempDir()
		okWith(t, k.run(t, "apply", "-f", writeFile(t, dir, "crd.yaml", crdManifest(group))),
			"customresourcedefinition.apiextensions.k8s.io/"+crd+" created")
		okWith(t, k.run(t, "wait", "--for", "condition=Established", "--timeout", "20s", "crd/"+crd), "condition met")

		t.Run("create and list with the printer columns", func(t *testing.T) {
			okWith(t, k.run(t, "-n", ns, "apply", "-f", writeFile(t, dir, "a.yaml",
				crontabManifest(group, "a", "  cronSpec: \"*/5 * * * *\"\n  image: busybox\n"))), "crontab."+group+"/a created")
			r := k.run(t, "-n", ns, "get", crd)
			if okWith(t, r, "NAME", "SPEC", "REPLICAS", "AGE") {
				if !regexp.MustCompile(`(?m)^a\s+\*/5 \* \* \* \*\s+1\s+\d+s$`).MatchString(r.stdout) {
					t.Errorf("the row of a:\n%s", r)
				}
			}
			okWith(t, k.run(t, "-n", ns, "get", "ct."+group, "a", "-o", "name"), "crontab."+group+"/a")
			okWith(t, k.run(t, "-n", ns, "get", "all"), "crontab."+group+"/a")
		})

		t.Run("validation", func(t *testing.T) {
			fails(t, k.run(t, "-n", ns, "apply", "-f", writeFile(t, dir, "bad.yaml",
				crontabManifest(group, "bad", "  cronSpec: x\n  replicas: 0\n  mode: medium\n"))),
				"spec.replicas: Invalid value: 0", "should be greater than or equal to 1",
				`spec.mode: Unsupported value: "medium"`)
			fails(t, k.run(t, "-n", ns, "apply", "-f", writeFile(t, dir, "bad2.yaml",
				crontabManifest(group, "bad2", "  image: x\n"))), "spec.cronSpec: Required value")
			// Unknown fields: refused by kubectl's default strict
			// validation, pruned when validation is off.
			unknown := writeFile(t, dir, "unknown.yaml", crontabManifest(group, "u", "  cronSpec: x\n  colour: red\n"))
			fails(t, k.run(t, "-n", ns, "create", "-f", unknown), "colour")
			ok(t, k.run(t, "-n", ns, "create", "--validate=false", "-f", unknown))
			r := k.run(t, "-n", ns, "get", ct, "u", "-o", "jsonpath={.spec}")
			if ok(t, r) && (strings.Contains(r.stdout, "colour") || !strings.Contains(r.stdout, `"replicas":1`)) {
				t.Errorf("want colour pruned and replicas defaulted:\n%s", r)
			}
		})

		t.Run("explain", func(t *testing.T) {
			okWith(t, k.run(t, "explain", "crontabs."+group+".spec"), "cronSpec", "The schedule, in cron format.", "replicas")
		})

		t.Run("both versions", func(t *testing.T) {
			r := k.run(t, "-n", ns, "get", "crontabs.v1beta1."+group, "a", "-o", "jsonpath={.apiVersion}")
			if okWith(t, r, group+"/v1beta1") && !strings.Contains(r.stderr, "v1beta1 CronTab is old: use v1") {
				t.Errorf("want the deprecation warning:\n%s", r)
			}
		})

		t.Run("status and scale", func(t *testing.T) {
			ok(t, k.run(t, "-n", ns, "patch", ct, "a", "--subresource=status", "--type=merge",
				"-p", `{"status":{"replicas":2,"selector":"app=a"}}`))
			okWith(t, k.run(t, "-n", ns, "get", ct, "a", "-o", "jsonpath={.status.replicas} {.metadata.generation}"), "2 1")
			okWith(t, k.run(t, "-n", ns, "scale", ct, "a", "--replicas=3"), "crontab."+group+"/a scaled")
			okWith(t, k.run(t, "-n", ns, "get", ct, "a", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"), "3 2")
		})

		t.Run("server-side apply", func(t *testing.T) {
			path := writeFile(t, dir, "ssa.yaml", crontabManifest(group, "ssa", "  cronSpec: \"0 * * * *\"\n  image: one\n"))
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "-f", path), "crontab."+group+"/ssa serverside-applied")
			other := writeFile(t, dir, "ssa2.yaml", crontabManifest(group, "ssa", "  cronSpec: \"0 * * * *\"\n  image: two\n"))
			fails(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager", "other", "-f", other),
				"Apply failed with 1 conflict", ".spec.image")
			okWith(t, k.run(t, "-n", ns, "apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", other),
				"serverside-applied")
			okWith(t, k.run(t, "-n", ns, "get", ct, "ssa", "-o", "jsonpath={.spec.image}"), "two")
		})

		t.Run("deleting the CRD deletes its objects", func(t *testing.T) {
			okWith(t, k.run(t, "delete", "crd", crd, "--timeout", "30s"), `customresourcedefinition.apiextensions.k8s.io "`+crd+`" deleted`)
			fails(t, k.run(t, "-n", ns, "get", "crontabs."+group), "the server doesn't have a resource type")
		})
	})
}
