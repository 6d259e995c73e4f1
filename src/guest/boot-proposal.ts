import { randomBytes } from 'node:crypto';
import type { Dialect } from '../formats/aproxy/dialect.js';
import { zeroize } from '../util/zeroize.js';
import type { BootGuestOptions, BootResult } from './boot.js';
import { openAproxyChannel } from './channel.js';
import { secretVia1122, secretVia1203 } from './dialects.js';
import {
  deriveStateKey,
  parseStateHeader,
  readStateFile,
  sealState,
  unsealState,
  writeStateFileAtomic,
} from './state-file.js';

/**
 * bootGuest for a guest of one of COCONUT's open proposals (svsm PR #1122, PR #1203; docs/protocol.md
 * "Dialects"). Both are 0.1.0 in everything Vouchsafe adds: no identity, no commit, no lease, so the state
 * file is handled exactly as a 0.1.0 guest does (read, unseal or create, write counter + 1 in place).
 */
export async function bootProposalGuest(
  opts: BootGuestOptions,
  dialect: Exclude<Dialect, 'main'>,
): Promise<BootResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const existing = await readStateFile(opts.statePath);
  const header = existing ? parseStateHeader(existing) : undefined;
  const ch = await openAproxyChannel(opts.connect, timeoutMs);
  let plaintext: Uint8Array | undefined;
  let stateKey: Buffer | undefined;
  try {
    const o = {
      provider: opts.provider,
      timeoutMs,
      ...(opts.evidenceSpelling ? { evidenceSpelling: opts.evidenceSpelling } : {}),
    };
    const got = dialect === 'pr1122' ? await secretVia1122(ch, o) : await secretVia1203(ch, o);
    plaintext = got.plaintext;
    stateKey = deriveStateKey(plaintext);
    let body: Uint8Array;
    let binding: Uint8Array = new Uint8Array(32);
    if (existing) {
      const opened = unsealState(existing, stateKey, undefined);
      body = opened.body;
      binding = opened.header.instanceBinding;
    } else {
      body = opts.initialState ?? new Uint8Array(randomBytes(32));
    }
    const statedCounter = header ? header.counter : null;
    const counter = (statedCounter ?? 0n) + 1n;
    const keyVersion = header?.keyVersion ?? 0;
    await writeStateFileAtomic(
      opts.statePath,
      sealState({ key: stateKey, counter, instanceBinding: binding, body, keyVersion }),
    );
    return {
      version: '0.1.0',
      firstBoot: existing === undefined,
      counter,
      statedCounter,
      state: body,
      identity: null,
      bootId: null,
      committed: false,
      brokerVerified: false,
      reportData: got.reportData,
      keyVersion: keyVersion === 0 ? null : keyVersion,
      previousKeyVersion: null,
      session: null,
      variableKey: null,
    };
  } finally {
    zeroize(plaintext, stateKey);
    ch.close();
  }
}
