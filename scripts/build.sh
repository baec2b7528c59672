#!/usr/bin/env bash
# Builds labctl into $1 (default ./labctl). Every build of labctl that is
# installed, tested or measured goes through here.
#
# The tags drop Go's plugin package, which containerd's client and
# kustomize (in the embedded kubectl) would link only to load plugins
# labctl never loads: a binary that links it exports every symbol for the
# dynamic loader, which makes it 36 MB bigger and touches 30 MB more of it
# at start (idle RSS of `labctl server --disable-agent`: 88 MB without the
# tags, 55 MB with them; BENCHMARKS.md). A plain `go build .` works too,
# only fatter.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go build -tags kustomize_disable_go_plugin_support,no_dynamic_plugins -o "${1:-labctl}" .
