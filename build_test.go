package main

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestBuildLinksNoPlugin checks that scripts/build.sh's tags keep Go's
// plugin package out of labctl: a dependency that brings it back would
// make every labctl process about 30 MB bigger (see scripts/build.sh).
func TestBuildLinksNoPlugin(t *testing.T) {
	script, err := os.ReadFile("scripts/build.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build -tags (\S+)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/build.sh gives no -tags")
	}
	out, err := exec.Command("go", "list", "-deps", "-tags", string(m[1]), ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if deps := strings.Fields(string(out)); slices.Contains(deps, "plugin") {
		var importers []string
		imp, _ := exec.Command("go", "list", "-deps", "-tags", string(m[1]), "-f", `{{.ImportPath}}: {{join .Imports " "}}`, ".").Output()
		for _, line := range strings.Split(string(imp), "\n") {
			if pkg, imports, ok := strings.Cut(line, ": "); ok && slices.Contains(strings.Fields(imports), "plugin") {
				importers = append(importers, pkg)
			}
		}
		t.Errorf("labctl built with -tags %s links the plugin package, imported by %v: find the build tag that drops it and add it to scripts/build.sh", m[1], importers)
	}
}
