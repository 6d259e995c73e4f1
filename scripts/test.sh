#!/usr/bin/env bash
# Runs the test suite (or the test files and folders named: `npm test -- test/store`). As root on Debian, first installs the system packages the tests use
# (swtpm, tpm2-tools, PostgreSQL server binaries, SoftHSM2, socat); elsewhere it checks for them and the
# tests that need a missing one fail with a message naming the package.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# The CLI tests run the compiled CLI (bin/vouchsafe.js -> dist/), so build it from the current sources first
# (incremental). tsc emits even when it reports type errors; those fail `npm run typecheck` (CI runs it), and
# the tests still run against what was emitted rather than against an older build.
if ! npx tsc -p tsconfig.build.json; then
  echo "warning: the build reported type errors (see above); testing the JavaScript it emitted" >&2
fi

# The simulator's RSA-4096 keys are generated once per run and shared by every test process
# (src/sim/snp/key-pool.ts); the pool is removed when the run ends.
VOUCHSAFE_SIM_KEY_POOL=$(mktemp -d -t vouchsafe-sim-keys.XXXXXX)
export VOUCHSAFE_SIM_KEY_POOL
trap 'rm -rf "$VOUCHSAFE_SIM_KEY_POOL"' EXIT

# The tests run compiled (scripts/build-tests.mjs: src/ and test/ to .build/), without a TypeScript loader in
# each test process and each child process a test starts; `--tsx` runs the .ts sources through tsx instead.
# Arguments name test files or folders (default: test/); the files are always the sources' *.test.ts.
loader=()
if [ "${1:-}" = --tsx ]; then
  loader=(--import tsx)
  shift
else
  node scripts/build-tests.mjs
fi
files=()
while IFS= read -r f; do
  if [ ${#loader[@]} -eq 0 ]; then files+=(".build/${f%.ts}.js"); else files+=("$f"); fi
done < <(find "${@:-test}" -name '*.test.ts' | sort)
# With no file, node --test would look for tests of its own accord (and find every one under .build/).
if [ ${#files[@]} -eq 0 ]; then
  echo "no *.test.ts under: ${*:-test}" >&2
  exit 2
fi
node "${loader[@]}" --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
