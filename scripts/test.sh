#!/usr/bin/env bash
# Runs labctl's test suite (as root, so that the tests that need root run):
# installs what the tests need, vets, runs every test, then runs each fuzz
# target briefly. FUZZTIME (default 400000x, some 10 s here) sets how long
# each fuzzes. A count, not a duration: with a duration, Go 1.26's fuzzer
# can fail a target at the deadline with "context deadline exceeded" and
# no failing input (golang/go#75804, fixed in Go 1.27), as it once did here.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || echo "labctl: not root: tests that need root will be skipped" >&2
. scripts/deps.sh

# Helm 3 and 4 for the chart tests (e2e/helm_test.go), built from the Go
# module proxy once per machine.
HELM_DIR=/usr/local/lib/labctl-test
for h in "helm3 helm.sh/helm/v3/cmd/helm@v3.22.0 v3.22.0" "helm4 helm.sh/helm/v4/cmd/helm@v4.3.1 v4.3.1"; do
	set -- $h
	# go install stamps no full version into helm: a file beside it says
	# which module version it is.
	if [ ! -x "$HELM_DIR/$1/helm" ] || [ "$(cat "$HELM_DIR/$1/module-version" 2>/dev/null)" != "$3" ]; then
		echo "== building $1 ($2)" >&2
		GOBIN="$HELM_DIR/$1" go install "$2"
		echo "$3" >"$HELM_DIR/$1/module-version"
	fi
done

echo "== go vet" >&2
go vet ./...
echo "== go test" >&2
# The node agent's packages and networking start containerd instances and
# change the host's network: they run one package at a time, after the
# rest (which run in parallel).
go test -count=1 -timeout 20m $(go list ./... | grep -v -e '/agent/' -e '/networking')
go test -count=1 -timeout 10m -p 1 ./agent/... ./networking/...
echo "== fuzz" >&2
for target in FuzzKeyEncoding FuzzDecode; do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-400000x}" ./datastore
done
