/**
 * A second (third, ...) process for the multi-process CA store tests, driven by race.ts over IPC:
 *   child -> {type:'ready'}; parent -> {type:'go', payload}; child -> {type:'done', result}.
 * Modes: 'open' (opens only after 'go', so several processes migrate a fresh location at once; result:
 * the log head seq), 'log' (payload {count, tag}: appends that many entries; result: their seqs),
 * 'crl' (payload: count; reserves that many CRL numbers; result: the numbers), 'nonce' (payload: hex
 * digests; result: those this process consumed).
 */
import { openCaRepository } from '../../src/store/ca-open.js';
import type { CaRepository } from '../../src/store/ca-types.js';

const [location, mode] = process.argv.slice(2) as [string, string];

function send(msg: unknown): Promise<void> {
  return new Promise((resolve, reject) =>
    process.send!(msg, (e: Error | null) => (e ? reject(e) : resolve())),
  );
}

function nextGo(): Promise<unknown> {
  return new Promise((resolve) => {
    process.once('message', (m: { type: string; payload: unknown }) => resolve(m.payload));
  });
}

async function run(repo: CaRepository, payload: unknown): Promise<unknown> {
  switch (mode) {
    case 'open':
      return (await repo.logHead()).seq;
    case 'log': {
      const { count, tag } = payload as { count: number; tag: string };
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) {
        const e = await repo.appendLog({
          time: Date.now(),
          kind: 'ca.test',
          instance: null,
          decision: 'refuse',
          reasons: [`${tag}.${i}`],
          evidenceDigest: null,
          details: { pid: process.pid },
        });
        seqs.push(e.seq);
      }
      return seqs;
    }
    case 'crl': {
      const numbers: number[] = [];
      for (let i = 0; i < (payload as number); i++) numbers.push(await repo.nextCrlNumber());
      return numbers;
    }
    case 'nonce': {
      const mine: string[] = [];
      for (const hex of payload as string[]) {
        if (await repo.consumeNonce(Buffer.from(hex, 'hex'))) mine.push(hex);
      }
      return mine;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

async function main(): Promise<void> {
  let repo: CaRepository | undefined;
  if (mode !== 'open') repo = await openCaRepository(location);
  const go = nextGo();
  await send({ type: 'ready' });
  const payload = await go;
  if (!repo) repo = await openCaRepository(location);
  try {
    await send({ type: 'done', result: await run(repo, payload) });
  } finally {
    await repo.close();
  }
}

main().then(
  () => process.exit(0),
  async (e) => {
    await send({ type: 'error', message: String(e?.stack ?? e) }).catch(() => {});
    process.exit(1);
  },
);
