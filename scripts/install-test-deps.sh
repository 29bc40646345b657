#!/usr/bin/env bash
# Installs, when missing, the programs the integration and end-to-end tests start themselves.
# Safe to run again and again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || apt_packages+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || apt_packages+=(redis-tools)

if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${apt_packages[*]} (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
echo "test dependencies present: redis-server $(redis-server --version | awk '{print $3}')"
