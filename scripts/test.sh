#!/usr/bin/env bash
# Runs the whole test suite. As root on Debian, first installs the system packages the tests use
# (swtpm, tpm2-tools, PostgreSQL server binaries, SoftHSM2, socat); elsewhere it checks for them and the
# tests that need a missing one fail with a message naming the package.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

files=$(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-reporter=spec --test-concurrency=2 $files
