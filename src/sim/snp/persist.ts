import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgument } from '../../errors.js';
import { isSnpProduct, type TcbParts } from '../../formats/snp/index.js';
import { fromHex, toHex } from '../../util/bytes.js';
import type { SimCert, SimChain } from './chain.js';

const ROLES = ['ark', 'ask', 'asvk', 'vcek', 'vlek'] as const;

/**
 * Saves a simulated chain to a directory (`chain.json`, `<role>.der`, `<role>.key.pem` with mode 0600) so
 * separate processes — `vouchsafe guest boot --provider sim` and a broker started with `--trust-sim-root` —
 * can share one simulated platform. These are test keys for a simulator, never secrets of a real system.
 */
export function saveSimChain(dir: string, chain: SimChain): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const meta = {
    product: chain.product,
    chipId: toHex(chain.chipId),
    tcb: chain.tcb,
    rootSha256: chain.rootSha256,
  };
  writeFileSync(join(dir, 'chain.json'), `${JSON.stringify(meta, null, 2)}\n`);
  for (const role of ROLES) {
    writeFileSync(join(dir, `${role}.der`), chain[role].der);
    const pem = chain[role].privateKey.export({ format: 'pem', type: 'pkcs8' });
    writeFileSync(join(dir, `${role}.key.pem`), pem, { mode: 0o600 });
  }
}

/** Loads a chain saved by saveSimChain; InvalidArgument `sim.snp.saved_chain` when the directory is not one. */
export function loadSimChain(dir: string): SimChain {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'chain.json'), 'utf8')) as {
      product: string;
      chipId: string;
      tcb: TcbParts;
      rootSha256: string;
    };
    const chipId = fromHex(meta.chipId);
    if (!isSnpProduct(meta.product) || !chipId || chipId.length !== 64) throw new Error('bad chain.json');
    const cert = (role: (typeof ROLES)[number]): SimCert => {
      const privateKey = createPrivateKey(readFileSync(join(dir, `${role}.key.pem`)));
      return {
        der: new Uint8Array(readFileSync(join(dir, `${role}.der`))),
        privateKey,
        publicKey: createPublicKey(privateKey),
      };
    };
    return {
      product: meta.product,
      ark: cert('ark'),
      ask: cert('ask'),
      asvk: cert('asvk'),
      vcek: cert('vcek'),
      vlek: cert('vlek'),
      chipId,
      tcb: meta.tcb,
      rootSha256: meta.rootSha256,
    };
  } catch (e) {
    throw new InvalidArgument(
      'sim.snp.saved_chain',
      `${dir} does not hold a saved simulator chain (${(e as Error).message})`,
    );
  }
}
