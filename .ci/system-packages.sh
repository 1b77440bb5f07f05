#!/usr/bin/env bash
# The Debian packages the netns dataplane tests (tests/netns) need, installed in one place for both
# `make setup` and `.ci/run`. As root with apt-get, installs what is missing and says so in one line;
# otherwise prints the one command that would. Nothing missing: prints nothing.
# Usage: .ci/system-packages.sh [tool:package ...]   (extra pairs, e.g. make:make for a bare CI image)
set -euo pipefail

pairs=(ip:iproute2 nft:nftables dnsmasq:dnsmasq-base ping:iputils-ping "$@")
missing=()
for pair in "${pairs[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
    echo "system packages: the dataplane tests (tests/netns, root) need ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: the dataplane tests need ${missing[*]} (Debian names); no apt-get here, install them with your package manager" >&2
    exit 1
fi
echo "system packages: apt-get install ${missing[*]} (for the netns dataplane tests)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
