import { type ChildProcess, fork } from 'node:child_process';
import { loaderFor } from '../helpers/paths.js';

/**
 * Forks one Node process (running `script`: compiled, or the .ts source through tsx) per payload, waits until every one reports
 * ready, then releases them all at once and collects their results. Fails on any child error or exit.
 */
export async function raceChildren<T>(script: string, args: string[], payloads: unknown[]): Promise<T[]> {
  const children = payloads.map(() =>
    fork(script, args, { execArgv: loaderFor(script), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const exited = children.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
  let ok = false;
  try {
    await Promise.all(children.map((c) => waitFor(c, 'ready')));
    const done = children.map((c) => waitFor(c, 'done'));
    for (const [i, c] of children.entries()) c.send({ type: 'go', payload: payloads[i] });
    const results = (await Promise.all(done)) as T[];
    ok = true;
    return results;
  } finally {
    if (!ok) for (const c of children) if (c.exitCode === null) c.kill();
    await Promise.all(exited);
  }
}

function waitFor(c: ChildProcess, want: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type: string; result?: unknown; message?: string }) => {
      if (m.type === want) {
        cleanup();
        resolve(m.result);
      } else if (m.type === 'error') {
        cleanup();
        reject(new Error(`child failed: ${m.message}`));
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) before '${want}'`));
    };
    const cleanup = () => {
      c.off('message', onMsg);
      c.off('exit', onExit);
    };
    c.on('message', onMsg);
    c.once('exit', onExit);
  });
}
