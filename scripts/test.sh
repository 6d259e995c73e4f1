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
# Hang guards, far above any file's time (the slowest takes ~30 s here): they turn a test process that never
# ends into a failure that names it, instead of a CI run that runs out of time and says nothing. A file's test
# process still running after VOUCHSAFE_TEST_FILE_TIMEOUT_S (node's --test-timeout, which in Node 20 bounds
# each file) is killed and reported as timed out. The whole run is bounded by VOUCHSAFE_TEST_RUN_TIMEOUT_S
# too, for what --test-timeout cannot end (a process a test started that outlives it and holds the runner's
# pipe open): then the processes still running are listed and the run fails. --foreground keeps node in the
# terminal's process group, so that Ctrl-C still reaches the runner (which stops its test processes).
file_timeout=${VOUCHSAFE_TEST_FILE_TIMEOUT_S:-900}
run_timeout=${VOUCHSAFE_TEST_RUN_TIMEOUT_S:-4500}
status=0
timeout --foreground --kill-after=30 "$run_timeout" node "${loader[@]}" --test --test-reporter=spec --test-concurrency=2 \
  --test-timeout=$((file_timeout * 1000)) "${files[@]}" || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  echo "error: the test run did not end within ${run_timeout} s; processes it started that still run:" >&2
  ps -eo pid,ppid,etimes,args --sort=start_time | awk -v t="$run_timeout" 'NR > 1 && $3 <= t + 60 && $4 != "ps" && $4 != "awk"' | cut -c1-240 >&2 || true
fi
exit "$status"
