#!/usr/bin/env bash
# Sets up and starts a labctl cluster on this machine (Debian or Ubuntu, as
# root): installs what is missing, builds labctl into /usr/local/bin, and
# starts `labctl server` in the background (a systemd unit where systemd
# runs, else a detached process logging to /var/log/labctl.log). Extra
# arguments go to `labctl server`, e.g. --disable-agent.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "labctl: run this as root (sudo $0)" >&2; exit 1; }
. scripts/deps.sh

echo "labctl: building" >&2
# Built aside, then copied into place: the copy replaces a running binary
# cleanly, and the kernel holds a copied file's pages in its cache the way
# it holds one read from disk, where the linker's own output would count
# 12-35 MB more in labctl's RSS on kernels with large page-cache folios
# (BENCHMARKS.md, "How the binary was written").
built=$(mktemp /usr/local/bin/.labctl.XXXXXX)
trap 'rm -f "$built"' EXIT
bash scripts/build.sh "$built"

if pgrep -x labctl >/dev/null; then
	echo "labctl: stopping the running labctl server" >&2
	pkill -x labctl || true
	for _ in $(seq 50); do pgrep -x labctl >/dev/null || break; sleep 0.1; done
fi
install -m 0755 "$built" /usr/local/bin/labctl

if [ -d /run/systemd/system ]; then
	cat > /etc/systemd/system/labctl.service <<UNIT
[Unit]
Description=labctl: a Kubernetes cluster in one binary
After=network-online.target

[Service]
ExecStart=/usr/local/bin/labctl server $*
Restart=always
KillMode=process
Delegate=yes
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
UNIT
	systemctl daemon-reload
	systemctl enable --now labctl.service
	systemctl restart labctl.service
else
	nohup /usr/local/bin/labctl server "$@" >>/var/log/labctl.log 2>&1 </dev/null &
fi

port=6443
for _ in $(seq 100); do
	if curl -ksf "https://127.0.0.1:$port/healthz" >/dev/null; then
		echo "labctl: the server is up on https://127.0.0.1:$port (logs: /var/log/labctl.log or journalctl -u labctl)" >&2
		echo "labctl: kubeconfig: /etc/labctl/labctl.yaml" >&2
		case " $* " in
		*" --disable-agent "*) exit 0 ;;
		esac
		for _ in $(seq 300); do
			if /usr/local/bin/labctl kubectl get nodes --no-headers 2>/dev/null | grep -q " Ready "; then
				/usr/local/bin/labctl kubectl get nodes >&2
				exit 0
			fi
			sleep 0.1
		done
		echo "labctl: the node is not Ready after 30 s; see /var/log/labctl.log or journalctl -u labctl" >&2
		exit 1
	fi
	sleep 0.1
done
echo "labctl: the server did not answer /healthz within 10 s; see /var/log/labctl.log or journalctl -u labctl" >&2
exit 1
