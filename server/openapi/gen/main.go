// Command gen regenerates ../zz_generated.openapi.go: the OpenAPI
// definitions of the k8s.io/api and k8s.io/apimachinery types, written by
// kube-openapi's openapi-gen.
//
// Run it through go generate from the package directory:
//
//	go generate ./server/openapi
//
// It runs openapi-gen at the k8s.io/kube-openapi version go.mod requires
// (go run k8s.io/kube-openapi/cmd/openapi-gen@<version>), so the generator
// never becomes a dependency of labctl, and the types are read at the
// versions go.mod requires. The module cache is tried before the module
// proxy: once openapi-gen and its dependencies (k8s.io/gengo/v2,
// github.com/spf13/pflag, golang.org/x/tools) have been downloaded, the
// command works offline.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// packages are the packages openapi-gen reads. Only those tagged
// +k8s:openapi-gen=true produce definitions; k8s.io/api/... is every group
// and version, served or not, so that the API server can add any of them
// without regenerating.
var packages = []string{
	"k8s.io/api/...",
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1",
	"k8s.io/apimachinery/pkg/apis/meta/v1",
	"k8s.io/apimachinery/pkg/apis/meta/v1beta1",
	"k8s.io/apimachinery/pkg/runtime",
	"k8s.io/apimachinery/pkg/util/intstr",
	"k8s.io/apimachinery/pkg/api/resource",
	"k8s.io/apimachinery/pkg/version",
}

const outputFile = "zz_generated.openapi.go"

func main() {
	out := flag.String("output-dir", ".", "directory of the package to write "+outputFile+" into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(outDir string) error {
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	version, err := goCmd(outDir, "list", "-m", "-f", "{{.Version}}", "k8s.io/kube-openapi")
	if err != nil {
		return err
	}
	pkg, err := goCmd(outDir, "list", "-f", "{{.ImportPath}}", ".")
	if err != nil {
		return err
	}
	modCache, err := goCmd(outDir, "env", "GOMODCACHE")
	if err != nil {
		return err
	}
	proxy, err := goCmd(outDir, "env", "GOPROXY")
	if err != nil {
		return err
	}
	// The module cache's download directory is a module proxy; listing it
	// first makes the command work offline, and the configured proxy still
	// serves what is missing.
	cacheProxy := "file://" + filepath.ToSlash(filepath.Join(modCache, "cache", "download"))
	if proxy == "" || proxy == "off" {
		proxy = cacheProxy
	} else {
		proxy = cacheProxy + "," + proxy
	}

	report, err := os.CreateTemp("", "openapi-gen-violations-*.txt")
	if err != nil {
		return err
	}
	report.Close()
	defer os.Remove(report.Name())

	args := []string{"run", "k8s.io/kube-openapi/cmd/openapi-gen@" + version,
		"--output-dir", outDir,
		"--output-pkg", pkg,
		"--output-file", outputFile,
		// The API rule violations of k8s.io/api are upstream's business;
		// a report file keeps them from failing the run.
		"--report-filename", report.Name(),
	}
	args = append(args, packages...)
	cmd := exec.Command("go", args...)
	cmd.Dir = outDir
	cmd.Env = append(os.Environ(), "GOPROXY="+proxy)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Fprintf(os.Stderr, "gen: openapi-gen@%s into %s\n", version, filepath.Join(outDir, outputFile))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("openapi-gen: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(outDir, outputFile))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: wrote %d bytes, %d definitions\n", len(data), bytes.Count(data, []byte("\nfunc schema_")))
	return nil
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
