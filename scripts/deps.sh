#!/usr/bin/env bash
# Installs the Debian packages the tests need when running as root with apt; otherwise lists what is missing.
set -euo pipefail
# command -> Debian package
declare -A need=(
  [socat]=socat
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: missing packages (tests that need them will fail): ${missing[*]}" >&2
  echo "         install with: sudo apt-get install ${missing[*]}" >&2
fi
