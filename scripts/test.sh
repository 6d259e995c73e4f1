#!/usr/bin/env bash
# Runs the whole test suite. As root on Debian, first installs the system packages the tests use
# (swtpm, tpm2-tools, PostgreSQL server binaries, SoftHSM2, socat); elsewhere it checks for them and the
# tests that need a missing one fail with a message naming the package.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# The simulator's RSA-4096 keys are generated once per run and shared by every test process
# (src/sim/snp/key-pool.ts); the pool is removed when the run ends.
VOUCHSAFE_SIM_KEY_POOL=$(mktemp -d -t vouchsafe-sim-keys.XXXXXX)
export VOUCHSAFE_SIM_KEY_POOL
trap 'rm -rf "$VOUCHSAFE_SIM_KEY_POOL"' EXIT

files=$(find test -name '*.test.ts' | sort)
node --import tsx --test --test-reporter=spec --test-concurrency=2 $files
