#!/usr/bin/env bash
# Installs what labctl needs on a Debian or Ubuntu machine, skipping what is
# already there: the Go toolchain to build it (1.21 or newer, which fetches
# the exact version go.mod names through the Go module proxy), containerd,
# runc, the standard CNI plugins, iptables/nftables, and Debian's static
# busybox (the tests build their images from it). Sourced by install.sh and
# test.sh; safe to run again.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have containerd || need_pkgs+=(containerd)
have runc || need_pkgs+=(runc)
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need_pkgs+=(containernetworking-plugins)
have iptables || need_pkgs+=(iptables)
have nft || need_pkgs+=(nftables)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
have curl || need_pkgs+=(curl)
have git || need_pkgs+=(git)

# Go: the machine's, /usr/local/go's, or Debian's/Ubuntu's package.
[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
go_ok() {
	have go || return 1
	local v
	v=$(go env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
	# 1.21+ can switch to the toolchain go.mod asks for.
	[ "$(printf '%s\n1.21\n' "$v" | sort -V | head -n1)" = "1.21" ]
}
go_ok || need_pkgs+=(golang-go)

if [ ${#need_pkgs[@]} -gt 0 ]; then
	echo "labctl: installing ${need_pkgs[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
if ! go_ok; then
	echo "labctl: Go 1.21 or newer is needed to build labctl and this system's package is older." >&2
	echo "        Install a newer Go (e.g. from your distribution's backports) and run this again." >&2
	exit 1
fi
# Let an older Go fetch the version go.mod asks for from the module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
