/** A load worker (bench/load-workers.ts): builds its operation from the spec, then runs loops on command. */
import { parentPort } from 'node:worker_threads';
import { bootGuest, simulatorReportProvider } from '../src/guest/index.js';
import { p521PointOf } from '../src/native/p521.js';
import { closedLoop, ItemPool, type LoadOp, type LoadResult, openLoop } from './broker-load.js';
import type { WorkerCommand, WorkerReply, WorkerSpec } from './load-workers.js';
import { httpReleaseOp, proxyOp, simInstance } from './release-ops.js';

const port = parentPort!;
const post = (m: WorkerReply) => port.postMessage(m);

/** Every instance of this worker boots once, all at the same moment; latencies from the start. */
async function burst(spec: WorkerSpec): Promise<LoadResult> {
  const start = performance.now();
  const latencies: number[] = [];
  await Promise.all(
    spec.instances.map(async (i, k) => {
      const r = await bootGuest({
        connect: i.connect ?? spec.connect!,
        provider: simulatorReportProvider(simInstance(spec.chain, i.id, i.hostData, i.statePath).fw),
        statePath: i.statePath,
        version: '0.2.0',
        brokerPublicKey: spec.brokerPublicKey!,
        timeoutMs: 600_000,
        keyPair: () => Promise.resolve(spec.keys[k % spec.keys.length]!),
      });
      if (!r.committed || !r.brokerVerified) throw new Error('fleet: a guest did not commit or verify');
      latencies.push(performance.now() - start);
    }),
  );
  return { rate: latencies.length / ((performance.now() - start) / 1000), ops: latencies.length, latencies };
}

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
      c.cmd === 'closed'
        ? closedLoop(op, c.concurrency, c.ms, c.first)
        : c.cmd === 'open'
          ? openLoop(op, c.rate, c.ms, c.first, c.phaseMs)
          : burst(spec);
    run.then(
      (ok) => post({ ok }),
      (e: unknown) => post({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  post({ ready: true });
});
