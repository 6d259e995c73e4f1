/**
 * A second (third, ...) process for the multi-process store tests. Forked with
 * `[location, mode]`; talks to the parent over IPC:
 *   child -> {type:'ready'}; parent -> {type:'go', payload}; child -> {type:'done', result}.
 * Modes: 'open' (opens only after 'go', so several processes migrate a fresh store at once),
 * 'consume' (payload: hex digests; result: those this process consumed), 'audit' (payload: {count, tag};
 * appends that many entries, one transaction each; result: their seqs), 'release' (see broker tests).
 */
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';

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

async function run(store: Store, payload: unknown): Promise<unknown> {
  switch (mode) {
    case 'open':
      return (await store.auditHead()).seq;
    case 'consume': {
      const mine: string[] = [];
      for (const hex of payload as string[]) {
        if (await store.consumeChallenge(Buffer.from(hex, 'hex'))) mine.push(hex);
      }
      return mine;
    }
    case 'audit': {
      const { count, tag } = payload as { count: number; tag: string };
      const seqs: number[] = [];
      for (let i = 0; i < count; i++) {
        const e = await store.transaction((tx) =>
          tx.appendAudit({
            time: Date.now(),
            kind: 'test',
            instance: null,
            decision: 'accept',
            reasons: [`${tag}.${i}`],
            evidenceDigest: null,
            details: { pid: process.pid },
          }),
        );
        seqs.push(e.seq);
      }
      return seqs;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

async function main(): Promise<void> {
  let store: Store | undefined;
  if (mode !== 'open') store = await openStore(location);
  const go = nextGo();
  await send({ type: 'ready' });
  const payload = await go;
  if (!store) store = await openStore(location);
  try {
    const result = await run(store, payload);
    await send({ type: 'done', result });
  } finally {
    await store.close();
  }
}

main().then(
  () => process.exit(0),
  async (e) => {
    await send({ type: 'error', message: String(e?.stack ?? e) }).catch(() => {});
    process.exit(1);
  },
);
