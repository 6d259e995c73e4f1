#!/usr/bin/env bash
# Installs the Debian packages the tests need when running as root with apt-get; otherwise names what is
# missing (the tests that need a missing package fail with a message saying which one to install).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_initdb() { have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }

missing=()
have swtpm || missing+=(swtpm swtpm-tools)
have tpm2_createek || missing+=(tpm2-tools)
have_initdb || missing+=(postgresql)
have openssl || missing+=(openssl)
have socat || missing+=(socat)
have softhsm2-util || missing+=(softhsm2)   # PKCS#11 keys (test/keys, src/keys)
[ -x /usr/bin/chromium ] || missing+=(chromium)   # the dashboard's browser tests (test/web, playwright-core)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: missing Debian packages (the tests that need them will fail): ${missing[*]}" >&2
  echo "         install them with: sudo apt-get install ${missing[*]}" >&2
fi
