/** A load worker (bench/load-workers.ts): builds its operation from the spec, then runs loops on command. */
import { parentPort } from 'node:worker_threads';
import { p521PointOf } from '../src/native/p521.js';
import { closedLoop, ItemPool, type LoadOp, openLoop } from './broker-load.js';
import type { WorkerCommand, WorkerReply, WorkerSpec } from './load-workers.js';
import { httpReleaseOp, proxyOp, simInstance } from './release-ops.js';

const port = parentPort!;
const post = (m: WorkerReply) => port.postMessage(m);

port.once('message', (spec: WorkerSpec) => {
  const pool = new ItemPool(
    spec.instances.map((i) => simInstance(spec.chain, i.id, i.hostData, i.statePath)),
  );
  let op: LoadOp;
  if (spec.kind === 'http') {
    const url = spec.brokerUrl!;
    const keys = spec.keys.map((k) => ({ privateKey: k.privateKey, point: p521PointOf(k.publicKey) }));
    op = httpReleaseOp(() => ({ challenge: url, attest: url }), pool, keys);
  } else {
    op = proxyOp(spec.brokerPublicKey!, spec.connect!, pool, spec.keys);
  }
  port.on('message', (c: WorkerCommand) => {
    const run =
      c.cmd === 'closed' ? closedLoop(op, c.concurrency, c.ms, c.first) : openLoop(op, c.rate, c.ms, c.first);
    run.then(
      (ok) => post({ ok }),
      (e: unknown) => post({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  post({ ready: true });
});
