# SPDX-License-Identifier: MIT OR Apache-2.0
# Sourced by tests/run.sh and examples/doctor.sh: installs the tools the kernel
# tests and the doctor demo use (Debian/Ubuntu, as root), and loads ctnetlink.
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v conntrack >/dev/null 2>&1 || missing="$missing conntrack"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v setpriv >/dev/null 2>&1 || missing="$missing util-linux"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "missing tools:$missing (install them, or run as root on Debian/Ubuntu)" >&2
        exit 1
    fi
fi
# The exporter's tests check its output with the reference Prometheus parsers
# and its Kubernetes manifest against the API schemas, offline.
if ! python3 -c "import prometheus_client, yaml, kubernetes_validate" >/dev/null 2>&1; then
    echo "installing: prometheus-client pyyaml kubernetes-validate (pip)"
    python3 -m pip install --quiet --disable-pip-version-check \
        "prometheus-client>=0.20" pyyaml kubernetes-validate
fi
if [ "$(id -u)" = 0 ]; then
    modprobe nf_conntrack_netlink 2>/dev/null || true
fi
