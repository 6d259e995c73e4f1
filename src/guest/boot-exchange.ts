import type { KeyObject } from 'node:crypto';
import {
  AttestationError,
  type ErrorCode,
  MalformedEvidence,
  PolicyRejected,
  SignatureInvalid,
} from '../errors.js';
import { encodeAttestationRequest, parseAttestationResponse } from '../formats/aproxy/attestation.js';
import { isErrorReply } from '../formats/aproxy/error-reply.js';
import { encodeNegotiationRequest, parseNegotiationResponse } from '../formats/aproxy/negotiation.js';
import { computeReportData, PARAMS_0_2_0 } from '../formats/aproxy/report-data.js';
import {
  type AesGcmData,
  type EcPublicKey,
  type ErrorReply,
  type NegotiationParam,
  type NegotiationResponse,
  type ProtocolVersion,
  VERSION_TUPLES,
} from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import { verifyAttestationResponse } from '../native/broker-signature.js';
import { generateP521KeyPair, type P521KeyPair, p521PointOf } from '../native/p521.js';
import type { AproxyChannel } from './channel.js';
import { firstReply } from './dialects.js';
import type { ReportProvider } from './report-provider.js';

/**
 * The main-dialect exchange of one boot, phase by phase (reference svsm-protocol.md §2; docs/protocol.md
 * "Guest flow"): negotiate, attest, check the broker's signature. bootGuest (boot.ts) runs them in order.
 */

/** What the guest states about its state file (0.2.0): the header's counter and key version, and its digest. */
export interface StatedState {
  readonly counter: bigint | null;
  readonly digest: Uint8Array | null;
  readonly keyVersion: number | null;
}

/** A successful AttestationResponse: the wrapped secret and what the broker bound to it. */
export interface ReleasedSecret {
  readonly keys: P521KeyPair;
  /** The guest's P-521 point that the secret is wrapped to. */
  readonly key: EcPublicKey;
  /** What REPORT_DATA the report was requested with. */
  readonly reportData: Uint8Array;
  readonly decryption: AesGcmData;
  readonly ciphertext: Uint8Array;
  readonly identity: PlatformIdentity | null;
  readonly signature: Uint8Array | null | undefined;
}

/**
 * Phase 1: sends the NegotiationRequest and returns the proxy's challenge and params, which must be
 * exactly what {@link checkParams} allows. Throws the proxy's refusal, MalformedEvidence `aproxy.*`,
 * `guest.dialect.mismatch` or `guest.params`.
 */
export async function negotiate(
  ch: AproxyChannel,
  version: ProtocolVersion,
  timeoutMs: number,
): Promise<NegotiationResponse> {
  await ch.send(encodeNegotiationRequest({ version: VERSION_TUPLES[version], tee: 'snp' }));
  const neg = throwIfError(
    firstReply(await ch.receive(timeoutMs), 'main', (b) => parseNegotiationResponse(b, version)),
  );
  checkParams(neg.params, version);
  return neg;
}

/**
 * Phase 2: a fresh P-521 key, REPORT_DATA over the negotiated params (0.2.0: with the stated counter and
 * digest), a report from the provider, the AttestationRequest, and the response. Throws the proxy's refusal,
 * PolicyRejected `aproxy.refused` (`success:false`), MalformedEvidence `guest.secret_missing`.
 */
export async function requestSecret(
  ch: AproxyChannel,
  provider: ReportProvider,
  version: ProtocolVersion,
  neg: NegotiationResponse,
  stated: StatedState,
  timeoutMs: number,
  keyPair: () => Promise<P521KeyPair> = generateP521KeyPair,
): Promise<ReleasedSecret> {
  const keys = await keyPair();
  const key = p521PointOf(keys.publicKey);
  const reportData = computeReportData(neg.params, {
    challenge: neg.challenge,
    key,
    ...(version === '0.2.0' ? { stateCounter: stated.counter, stateDigest: stated.digest } : {}),
  });
  const evidence = await provider.getReport(reportData);
  await ch.send(
    encodeAttestationRequest(
      {
        tee: 'snp',
        evidence: evidence.certTable
          ? { report: evidence.report, certsBuf: evidence.certTable }
          : { report: evidence.report },
        challenge: neg.challenge,
        key,
        // Stating the key version (even null) also says this guest reads secret payload format 2.
        ...(version === '0.2.0'
          ? { stateCounter: stated.counter, stateDigest: stated.digest, stateKeyVersion: stated.keyVersion }
          : {}),
      },
      version,
    ),
  );
  const resp = throwIfError(parseAttestationResponse(await ch.receive(timeoutMs), version));
  if (!resp.success) {
    throw new PolicyRejected([{ code: 'aproxy.refused', message: 'the proxy answered success:false' }]);
  }
  if (resp.secret === undefined || resp.decryption === null) {
    throw new MalformedEvidence('guest.secret_missing', 'a successful response carries no secret');
  }
  return {
    keys,
    key,
    reportData,
    decryption: resp.decryption,
    ciphertext: resp.secret,
    identity: resp.identity ?? null,
    signature: resp.signature,
  };
}

/**
 * Phase 3 (0.2.0 with a pinned broker key): the response must be signed over the challenge, the key, the
 * wrapped secret, the identity and the stated state, before anything is decrypted. Returns whether it was
 * checked (false: no key pinned). Throws SignatureInvalid `aproxy.signature*`.
 */
export function verifyReleasedSecret(
  brokerKey: KeyObject | undefined,
  neg: NegotiationResponse,
  released: ReleasedSecret,
  stated: StatedState,
): boolean {
  if (!brokerKey) return false;
  if (!released.signature)
    throw new SignatureInvalid('aproxy.signature.missing', 'the response is not signed');
  verifyAttestationResponse(
    brokerKey,
    {
      challenge: neg.challenge,
      key: released.key,
      decryption: released.decryption,
      ciphertext: released.ciphertext,
      identity: released.identity,
      stateCounter: stated.counter,
      stateDigest: stated.digest,
    },
    released.signature,
  );
  return true;
}

/** Throws the proxy's ErrorReply as an AttestationError with the code and reason it sent. */
export function throwIfError<T extends object>(r: T | ErrorReply): T {
  if (isErrorReply(r)) {
    // The code was checked against ErrorCode when the reply was parsed.
    throw new AttestationError(r.error.code as ErrorCode, r.error.reason, `proxy: ${r.error.message}`);
  }
  return r;
}

/**
 * 0.1.0: `Challenge` and `EcPublicKeyBytes`, each exactly once (in either order, as COCONUT's SVSM takes
 * them). 0.2.0: exactly {@link PARAMS_0_2_0}, in that order: the proxy is untrusted, and a binding it could
 * reorder, shorten or repeat would not be the one docs/protocol.md §6.1 argues is apart from 0.1.0's.
 */
function checkParams(params: readonly NegotiationParam[], version: ProtocolVersion): void {
  if (version === '0.2.0') {
    if (params.length !== PARAMS_0_2_0.length || params.some((p, i) => p !== PARAMS_0_2_0[i])) {
      throw new MalformedEvidence('guest.params', `0.2.0 params must be ${PARAMS_0_2_0.join(',')}`);
    }
    return;
  }
  for (const p of ['Challenge', 'EcPublicKeyBytes'] as const) {
    const n = params.filter((q) => q === p).length;
    if (n !== 1) throw new MalformedEvidence('guest.params', `param ${p} appears ${n} times; expected once`);
  }
  if (params.length !== 2) throw new MalformedEvidence('guest.params', 'unexpected extra params');
}
