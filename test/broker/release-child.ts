/**
 * A broker in another process, for the multi-process release race (suite.ts). Forked with
 * `[location, kekPath]`; IPC as in test/store/child.ts. Payload: release requests (hex fields); result:
 * per request {key} (hex) or {reason}.
 */
import { Broker } from '../../src/broker/broker.js';
import { openFileKek } from '../../src/broker/kek.js';
import { openStore } from '../../src/store/open.js';
import { testAppraiser } from './fixtures.js';
import { unverifiedTestVerifier } from './unverified-test-verifier.js';

export interface WireRequest {
  report: string;
  challenge: string;
  expectedReportData: string;
}
export type Outcome = { key: string } | { reason: string };

const [location, kekPath] = process.argv.slice(2) as [string, string];
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const send = (msg: unknown) =>
  new Promise<void>((resolve, reject) =>
    process.send!(msg, (e: Error | null) => (e ? reject(e) : resolve())),
  );

async function main(): Promise<void> {
  const store = await openStore(location);
  const broker = new Broker({
    store,
    kek: openFileKek(kekPath, { create: false }),
    verifyEvidence: unverifiedTestVerifier,
    appraise: testAppraiser,
  });
  const go = new Promise<WireRequest[]>((resolve) =>
    process.once('message', (m: { payload: WireRequest[] }) => resolve(m.payload)),
  );
  await send({ type: 'ready' });
  const reqs = await go;
  try {
    const results = await Promise.all(
      reqs.map(async (r): Promise<Outcome> => {
        try {
          const out = await broker.release({
            tee: 'snp',
            report: hex(r.report),
            challenge: hex(r.challenge),
            expectedReportData: hex(r.expectedReportData),
            stateCounter: null,
          });
          return { key: Buffer.from(out.key).toString('hex') };
        } catch (e) {
          return { reason: (e as { reason?: string }).reason ?? String(e) };
        }
      }),
    );
    await send({ type: 'done', result: results });
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
