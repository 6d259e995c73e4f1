import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loaderFor, sibling } from '../helpers/paths.js';

const CHILD = sibling(import.meta.url, 'collector-child.ts');

/** V8's own trace of its pretenuring decisions for the child's long-lived allocations. */
async function pretenuringTrace(mode: 'default' | 'young'): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--trace-pretenuring', '--trace-pretenuring-statistics', ...loaderFor(CHILD), CHILD, mode],
    { maxBuffer: 16 << 20 },
  );
  assert.match(stdout, /^kept 1000000$/m);
  return stdout;
}

test('preferYoungAllocation: V8 no longer moves an allocation site to the old generation', async () => {
  // The control: without the call, objects that survive scavenges get their site tenured.
  assert.match(await pretenuringTrace('default'), /=> tenure/);
  assert.doesNotMatch(await pretenuringTrace('young'), /tenure/);
});
