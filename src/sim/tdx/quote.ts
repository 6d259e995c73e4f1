import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import {
  ATT_KEY_ECDSA_P256,
  BODY_TYPE,
  CERT_DATA,
  HEADER_SIZE,
  QE_REPORT_SIZE,
  TD10_BODY_SIZE,
  TD15_BODY_SIZE,
  TEE_TYPE_TDX,
} from '../../formats/tdx/quote.js';
import { decodeBase64Url } from '../../util/base64.js';
import { concatBytes } from '../../util/bytes.js';

/**
 * Encodes TDX quotes as a QE would (Intel TDX DCAP "Quote Format" v4/v5; the mirror of parseTdxQuote):
 * header and body signed by the attestation key, the QE report signed by the PCK key and binding the
 * attestation key, the PCK chain as PEM. For the simulator and tests.
 */

export const INTEL_QE_VENDOR_ID = Uint8Array.from(Buffer.from('939a7233f79c4ca9940a0db3957f0607', 'hex'));

export interface SimTdBody {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly Uint8Array[];
  readonly reportData: Uint8Array;
  readonly teeTcbSvn2?: Uint8Array;
  readonly mrServiceTd?: Uint8Array;
}

export interface SimQeReport {
  readonly cpuSvn: Uint8Array;
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
}

const u16 = (v: number) => Uint8Array.of(v & 0xff, (v >> 8) & 0xff);
const u32 = (v: number) => Uint8Array.of(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);

function fixed(b: Uint8Array, n: number): Uint8Array {
  if (b.length !== n) throw new RangeError(`expected ${n} bytes, got ${b.length}`);
  return b;
}

export function encodeTdBody(b: SimTdBody, kind: 'td1.0' | 'td1.5'): Uint8Array {
  const parts = [
    fixed(b.teeTcbSvn, 16),
    fixed(b.mrSeam, 48),
    fixed(b.mrSignerSeam, 48),
    fixed(b.seamAttributes, 8),
    fixed(b.tdAttributes, 8),
    fixed(b.xfam, 8),
    fixed(b.mrTd, 48),
    fixed(b.mrConfigId, 48),
    fixed(b.mrOwner, 48),
    fixed(b.mrOwnerConfig, 48),
    ...b.rtmrs.map((r) => fixed(r, 48)),
    fixed(b.reportData, 64),
  ];
  if (kind === 'td1.5')
    parts.push(fixed(b.teeTcbSvn2 ?? new Uint8Array(16), 16), fixed(b.mrServiceTd ?? new Uint8Array(48), 48));
  const out = concatBytes(parts);
  if (out.length !== (kind === 'td1.0' ? TD10_BODY_SIZE : TD15_BODY_SIZE)) throw new RangeError('body size');
  return out;
}

export function encodeQeReport(q: SimQeReport, reportData: Uint8Array): Uint8Array {
  const r = new Uint8Array(QE_REPORT_SIZE);
  r.set(fixed(q.cpuSvn, 16), 0x00);
  r.set(fixed(q.attributes, 16), 0x30);
  r.set(fixed(q.mrEnclave, 32), 0x40);
  r.set(fixed(q.mrSigner, 32), 0x80);
  r.set(u16(q.isvProdId), 0x100);
  r.set(u16(q.isvSvn), 0x102);
  r.set(fixed(reportData, 64), 0x140);
  return r;
}

/** Raw x||y of a P-256 public key. */
export function rawP256(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return concatBytes([decodeBase64Url(jwk.x, 'sim.jwk', 'x'), decodeBase64Url(jwk.y, 'sim.jwk', 'y')]);
}

export interface SimQuoteParts {
  readonly version: 4 | 5;
  readonly kind: 'td1.0' | 'td1.5';
  readonly body: SimTdBody;
  readonly qe: SimQeReport;
  readonly attestationKey: KeyObject;
  readonly pckKey: KeyObject;
  readonly pckChainPem: string;
  readonly qeAuthData?: Uint8Array;
}

/** A signed quote. */
export function encodeTdxQuote(p: SimQuoteParts): Uint8Array {
  if (p.version === 4 && p.kind !== 'td1.0') throw new RangeError('v4 quotes carry TD 1.0 bodies');
  const header = concatBytes([
    u16(p.version),
    u16(ATT_KEY_ECDSA_P256),
    u32(TEE_TYPE_TDX),
    u16(0),
    u16(0),
    INTEL_QE_VENDOR_ID,
    new Uint8Array(20),
  ]);
  if (header.length !== HEADER_SIZE) throw new RangeError('header size');
  const body = encodeTdBody(p.body, p.kind);
  const signed =
    p.version === 4
      ? concatBytes([header, body])
      : concatBytes([
          header,
          u16(p.kind === 'td1.0' ? BODY_TYPE.td10 : BODY_TYPE.td15),
          u32(body.length),
          body,
        ]);
  const sig = (data: Uint8Array, key: KeyObject) =>
    new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
  const attKey = rawP256(createPublicKey(p.attestationKey));
  const auth = p.qeAuthData ?? new Uint8Array(32).fill(0xa5);
  const binding = concatBytes([
    createHash('sha256').update(attKey).update(auth).digest(),
    new Uint8Array(32),
  ]);
  const qeReport = encodeQeReport(p.qe, binding);
  const pem = new Uint8Array(Buffer.from(p.pckChainPem, 'latin1'));
  const inner = concatBytes([u16(CERT_DATA.pckChain), u32(pem.length), pem]);
  const certData = concatBytes([qeReport, sig(qeReport, p.pckKey), u16(auth.length), auth, inner]);
  const sigData = concatBytes([
    sig(signed, p.attestationKey),
    attKey,
    u16(CERT_DATA.qeReport),
    u32(certData.length),
    certData,
  ]);
  return concatBytes([signed, u32(sigData.length), sigData]);
}
