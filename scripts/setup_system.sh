#!/usr/bin/env bash
# System packages the tests and local servers need: redis-server (Argilla review server) and chromium
# (the report's rendering test). Installed with apt when missing and running as root; otherwise a warning.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  printf '\033[1m[setup]\033[0m installing %s (Debian packages)\n' "${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
else
  printf '\033[1m[setup]\033[0m WARNING: missing %s; install them (apt-get install %s)\n' "${missing[*]}" "${missing[*]}"
fi
