import type { KeyObject } from 'node:crypto';
import { AttestationError, ErrorCode, MalformedEvidence, PolicyRejected, Unavailable } from '../errors.js';
import { parseAttestationResponse } from '../formats/aproxy/attestation.js';
import { type Dialect, sniffDialect } from '../formats/aproxy/dialect.js';
import { computeDialectReportData } from '../formats/aproxy/dialect-binding.js';
import { isErrorReply } from '../formats/aproxy/error-reply.js';
import { jweToAesGcm } from '../formats/aproxy/kbs-jwe.js';
import { encodeNegotiationRequest } from '../formats/aproxy/negotiation.js';
import { encodeAttestationRequest1122, parseNegotiationResponse1122 } from '../formats/aproxy/pr1122.js';
import {
  type ConfigResponse,
  encodeProxyRequest,
  type HttpMethod,
  type ProxyResponse,
  parseConfigResponse,
  parseProxyResponse,
} from '../formats/aproxy/pr1203.js';
import type { EcPublicKey, NegotiationParam } from '../formats/aproxy/types.js';
import { unwrapSecret } from '../native/jwe-ecdh-es.js';
import { generateP521KeyPair, p521PointOf } from '../native/p521.js';
import { decodeBase64, encodeBase64, encodeBase64Url } from '../util/base64.js';
import { isObject } from '../util/json-object.js';
import type { AproxyChannel } from './channel.js';
import type { ReportProvider } from './report-provider.js';

/** The SNP primary evidence forms a PR #1203 guest can post (ProposalOptions.evidenceSpelling). */
export type Pr1203EvidenceSpelling = 'svsm-pr1203' | 'snp-report' | 'attestation_report';

/** What a proposal dialect's exchange yields: the released secret and the REPORT_DATA it was bound to. */
export interface ProposalSecret {
  readonly plaintext: Uint8Array;
  readonly reportData: Uint8Array;
}

export interface ProposalOptions {
  readonly provider: ReportProvider;
  readonly timeoutMs: number;
  /**
   * PR #1203 only: how the SNP primary evidence is spelled to the KBS. `svsm-pr1203` (default): what the
   * PR's SVSM sends, `{"Snp":{"report","certs_buf"?}}` (Vouchsafe's KBS reads it; no released KBS does);
   * `snp-report` (`{"snp-report","certs-buf"}`) or `attestation_report` (`{"attestation_report",
   * "cert_chain"}`) for a KBS that reads today's spellings.
   */
  readonly evidenceSpelling?: Pr1203EvidenceSpelling;
}

/** svsm PR #1122 / #1203 guests send main's opening, version [0,1,0] (reference svsm-protocol.md §8). */
const OPENING = encodeNegotiationRequest({ version: [0, 1, 0], tee: 'snp' });

/**
 * Parses the proxy's first reply with `parse`; when it fails and the reply is recognisably another
 * dialect's, says so: MalformedEvidence `guest.dialect.mismatch` (the operator configured the proxy's
 * listener for another dialect).
 */
export function firstReply<T>(bytes: Uint8Array, mine: Dialect, parse: (b: Uint8Array) => T): T {
  try {
    return parse(bytes);
  } catch (e) {
    const seen = sniffDialect(bytes);
    if (seen !== undefined && seen !== mine) {
      throw new MalformedEvidence(
        'guest.dialect.mismatch',
        `this guest speaks ${mine}; the proxy answered in ${seen}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * The svsm PR #1122 exchange (head 3e503918): NegotiationResponse with hash_algo/payload_format, REPORT_DATA
 * by that binding, AttestationRequest with `attestation_report`/`cert_chain`, main's AttestationResponse.
 * Throws as bootGuest does; PolicyRejected `aproxy.refused` for `success:false`.
 */
export async function secretVia1122(ch: AproxyChannel, o: ProposalOptions): Promise<ProposalSecret> {
  await ch.send(OPENING);
  const neg = firstReply(await ch.receive(o.timeoutMs), 'pr1122', parseNegotiationResponse1122);
  const keys = await generateP521KeyPair();
  const key = p521PointOf(keys.publicKey);
  const reportData = computeDialectReportData(neg, neg.challenge, key);
  const ev = await o.provider.getReport(reportData);
  await ch.send(
    encodeAttestationRequest1122({
      tee: 'snp',
      // The PR's aproxy exits on `"cert_chain": null`; leaving it out works.
      evidence: ev.certTable ? { report: ev.report, certsBuf: ev.certTable } : { report: ev.report },
      challenge: neg.challenge,
      key,
    }),
  );
  const resp = parseAttestationResponse(await ch.receive(o.timeoutMs), '0.1.0');
  if (isErrorReply(resp) || !resp.success) {
    throw new PolicyRejected([{ code: 'aproxy.refused', message: 'the proxy answered success:false' }]);
  }
  if (resp.secret === undefined || resp.decryption === null) {
    throw new MalformedEvidence('guest.secret_missing', 'a successful response carries no secret');
  }
  return {
    plaintext: unwrapSecret(keys.privateKey, { decryption: resp.decryption, ciphertext: resp.secret }),
    reportData,
  };
}

/**
 * The svsm PR #1203 exchange (head bdf46eda): the guest speaks KBS 0.4.0 itself through the proxy's
 * forwarder (ConfigRequest -> ConfigResponse, then ProxyRequest/ProxyResponse for auth, attest and the
 * resource) and opens the resource's JWE with its own P-521 key. A non-200 answer is the KBS's refusal:
 * its problem `code`/`reason` when it sends known ones, else ERR_POLICY_REJECTED `guest.kbs.refused`.
 */
export async function secretVia1203(ch: AproxyChannel, o: ProposalOptions): Promise<ProposalSecret> {
  await ch.send(OPENING);
  const cfg = firstReply(await ch.receive(o.timeoutMs), 'pr1203', parseConfigResponse);
  const exchange = async (endpoint: string, method: HttpMethod, body: unknown): Promise<unknown> => {
    await ch.send(encodeProxyRequest({ endpoint, method, body }));
    const r = parseProxyResponse(await ch.receive(o.timeoutMs));
    if (r.status !== 200) throw kbsRefusal(r);
    return kbsJson(r.body);
  };
  const challenge = await exchange(cfg.authEndpoint, 'POST', {
    version: '0.4.0',
    tee: 'snp',
    'extra-params': null,
  });
  const { nonce, params } = parseChallenge(challenge, cfg);
  const keys = await generateP521KeyPair();
  const key = p521PointOf(keys.publicKey);
  const reportData = computeDialectReportData(cfg, nonce, key, params);
  const ev = await o.provider.getReport(reportData);
  await exchange(cfg.attestEndpoint, 'POST', attestBody(nonce, key, ev, o.evidenceSpelling ?? 'svsm-pr1203'));
  const jwe = await exchange(cfg.resourceEndpoint, 'GET', null);
  return { plaintext: unwrapSecret(keys.privateKey as KeyObject, jweToAesGcm(jwe)), reportData };
}

function attestBody(
  nonce: Uint8Array,
  key: EcPublicKey,
  ev: { report: Uint8Array; certTable?: Uint8Array },
  spelling: Pr1203EvidenceSpelling,
): unknown {
  const report = encodeBase64(ev.report);
  const certs = ev.certTable ? encodeBase64(ev.certTable) : null;
  // svsm PR #1203 (kernel/src/attest.rs attest_kbs): serde's externally tagged AttestationEvidence::Snp,
  // certs_buf skipped when there is none (its SVSM never has one; a provider with a table sends it).
  const pr1203 = { Snp: { report, ...(certs !== null ? { certs_buf: certs } : {}) } };
  return {
    'init-data': null,
    'runtime-data': {
      nonce: encodeBase64(nonce),
      'tee-pubkey': {
        kty: 'EC',
        crv: 'P-521',
        alg: 'ECDH-ES+A256KW',
        x: encodeBase64Url(key.x),
        y: encodeBase64Url(key.y),
      },
    },
    'tee-evidence': {
      primary_evidence:
        spelling === 'svsm-pr1203'
          ? pr1203
          : spelling === 'snp-report'
            ? { 'snp-report': report, 'certs-buf': certs }
            : { attestation_report: report, cert_chain: certs },
      additional_evidence: '',
    },
  };
}

/**
 * kbs_types `Challenge` `{nonce, extra-params}`, or kbs-test's legacy `{nonce, params}` (whose order PR
 * #1203's RawBinary hashes; absent: x || y || nonce). The nonce is standard base64.
 */
function parseChallenge(v: unknown, cfg: ConfigResponse): { nonce: Uint8Array; params?: NegotiationParam[] } {
  if (!isObject(v) || typeof v.nonce !== 'string' || v.nonce.length > 1400) {
    throw new MalformedEvidence('guest.kbs.challenge', 'the KBS challenge has no usable nonce');
  }
  const nonce = decodeBase64(v.nonce, 'aproxy.base64', 'nonce');
  if (nonce.length === 0) throw new MalformedEvidence('guest.kbs.challenge', 'empty nonce');
  if (cfg.payloadFormat !== 'RawBinary' || v.params === undefined) return { nonce };
  const p = v.params;
  const ok = Array.isArray(p) && p.length === 2 && p.includes('Challenge') && p.includes('EcPublicKeyBytes');
  if (!ok)
    throw new MalformedEvidence('guest.params', 'params must name Challenge and EcPublicKeyBytes once each');
  return { nonce, params: p as NegotiationParam[] };
}

function kbsJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (cause) {
    throw new MalformedEvidence('guest.kbs.body', 'the KBS answer is not JSON', { cause });
  }
}

const CODES: readonly string[] = Object.values(ErrorCode);

function kbsRefusal(r: ProxyResponse): AttestationError {
  // The forwarder's own failure (the KBS could not be asked), as PR #1203's aproxy reports transport errors.
  if (r.status === 500 && r.body.startsWith('proxy: ')) {
    return new Unavailable('guest.kbs.unavailable', 'the proxy could not reach the KBS');
  }
  let p: unknown;
  try {
    p = JSON.parse(r.body);
  } catch {
    p = undefined;
  }
  if (
    isObject(p) &&
    typeof p.code === 'string' &&
    CODES.includes(p.code) &&
    typeof p.reason === 'string' &&
    /^[a-z0-9_]+(?:\.[a-z0-9_]+){0,8}$/.test(p.reason) &&
    p.reason.length <= 128
  ) {
    return new AttestationError(p.code as ErrorCode, p.reason, `KBS refused (${r.status})`);
  }
  return new AttestationError(ErrorCode.PolicyRejected, 'guest.kbs.refused', `KBS answered ${r.status}`);
}
