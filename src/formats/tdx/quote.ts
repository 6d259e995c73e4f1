import { MalformedEvidence } from '../../errors.js';
import { Reader } from '../reader.js';

/**
 * Intel TDX quotes, versions 4 and 5 (Intel TDX DCAP Quoting Library API, "Quote Format", Appendix A:
 * v4 §A.3, v5 §A.4; layouts also in shared/reference/snp-tdx.md §B). All integers little-endian.
 *
 * Parse checks only structure: version 4 or 5, attestation key type 2 (ECDSA-256-with-P-256), TEE type
 * 0x81 (TDX), the v5 body type (2 = TD 1.0, 3 = TD 1.5) and its size, the signed-data length, the
 * certification data types (6 = QE report, 5 = PCK chain) and their nested lengths. Bytes after the
 * signed data are not signed and are kept only as a count (real quotes carry 0-3065 of them: padding, or
 * in go-tdx-guest's test quote a line of text). Signatures, the chain and the QE binding are
 * src/evidence/tdx's job. Throws MalformedEvidence `tdx.quote.*`.
 */

/** Quote header (48 bytes at 0x00). */
export interface TdxQuoteHeader {
  /** 4 or 5. */
  readonly version: 4 | 5;
  /** 2: ECDSA-256-with-P-256. */
  readonly attestationKeyType: number;
  /** 0x81: TDX. */
  readonly teeType: number;
  /** Header bytes 0x08/0x0A: QE and PCE SVN as go-tdx-guest and dcap-qvl name them (zero on real quotes). */
  readonly qeSvn: number;
  readonly pceSvn: number;
  /** 16 bytes; Intel's QE: 939a7233f79c4ca9940a0db3957f0607. */
  readonly qeVendorId: Uint8Array;
  /** 20 bytes chosen by the QE (platform id prefix). */
  readonly userData: Uint8Array;
}

/** TD report body: TD 1.0 (584 bytes) or TD 1.5 (648 bytes: adds TEE_TCB_SVN2 and MRSERVICETD). */
export interface TdxReportBody {
  /** `td1.0` for v4 quotes and v5 body type 2, `td1.5` for v5 body type 3. */
  readonly kind: 'td1.0' | 'td1.5';
  /** 16 bytes: [0] TDX module minor SVN, [1] major SVN (module identity TDX_%02X), rest platform SVNs. */
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  /** 8 bytes, little-endian bit order (as the other attribute fields). */
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  /** RTMR0..RTMR3, 48 bytes each. */
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly reportData: Uint8Array;
  /** TD 1.5 only. */
  readonly teeTcbSvn2?: Uint8Array;
  readonly mrServiceTd?: Uint8Array;
}

/** SGX REPORT BODY of the Quoting Enclave (384 bytes; SGX SDM Vol. 3D "REPORT"). */
export interface SgxReportBody {
  /** The exact 384 bytes the PCK signed. */
  readonly raw: Uint8Array;
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: number;
  /** 16 bytes. */
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array;
}

export interface TdxQuote {
  readonly header: TdxQuoteHeader;
  readonly body: TdxReportBody;
  /** v5 body type (2 or 3); undefined for v4. */
  readonly bodyType?: number;
  /** The bytes the attestation key signed: header and body (a private copy). */
  readonly signed: Uint8Array;
  /** ECDSA P-256 signature over `signed`, r||s big-endian (64 bytes). */
  readonly signature: Uint8Array;
  /** The attestation key, raw x||y (64 bytes). */
  readonly attestationKey: Uint8Array;
  readonly qeReport: SgxReportBody;
  /** ECDSA P-256 signature over qeReport.raw by the PCK key, r||s (64 bytes). */
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** Inner certification data type 5: the PCK chain as PEM text bytes (leaf, intermediate CA, root). */
  readonly pckChainPem: Uint8Array;
  /** Unsigned bytes after the signed data (not kept). */
  readonly trailingBytes: number;
}

export const TDX_QUOTE_VERSIONS = [4, 5] as const;
export const ATT_KEY_ECDSA_P256 = 2;
export const TEE_TYPE_TDX = 0x81;
export const HEADER_SIZE = 0x30;
export const TD10_BODY_SIZE = 584;
export const TD15_BODY_SIZE = 648;
export const QE_REPORT_SIZE = 384;
/** Certification data types (Quote Format, "Certification Data Type"). */
export const CERT_DATA = { pckChain: 5, qeReport: 6 } as const;
/** v5 body types. */
export const BODY_TYPE = { td10: 2, td15: 3 } as const;
/** Bound on a whole quote: real ones are ~5 KiB; certification data larger than this is not a quote. */
export const MAX_QUOTE_SIZE = 64 * 1024;

const W = 'tdx.quote';

function bad(reason: string, message: string): never {
  throw new MalformedEvidence(`${W}.${reason}`, message);
}

/**
 * Fields are views into the parser's one private copy of the quote (parseTdxQuote copies the input once):
 * the caller's buffer can change afterwards without changing a parsed field, and one allocation replaces
 * some thirty (each typed-array allocation costs about as much as the rest of the parse).
 */
function own(b: Uint8Array): Uint8Array {
  return b;
}

/** Reads the 48-byte header. */
function readHeader(r: Reader): TdxQuoteHeader {
  const version = r.at(0x00).u16le();
  if (version !== 4 && version !== 5) bad('version', `quote version ${version} is not 4 or 5`);
  const attestationKeyType = r.u16le();
  if (attestationKeyType !== ATT_KEY_ECDSA_P256)
    bad('att_key_type', `attestation key type ${attestationKeyType} is not 2 (ECDSA P-256)`);
  const teeType = r.u32le();
  if (teeType !== TEE_TYPE_TDX) bad('tee_type', `TEE type 0x${teeType.toString(16)} is not 0x81 (TDX)`);
  const qeSvn = r.at(0x08).u16le();
  const pceSvn = r.u16le();
  const qeVendorId = own(r.at(0x0c).bytes(16));
  const userData = own(r.at(0x1c).bytes(20));
  return { version, attestationKeyType, teeType, qeSvn, pceSvn, qeVendorId, userData };
}

/** Reads a TD report body of `size` bytes at the reader's position (TD 1.0 layout, then the TD 1.5 tail). */
function readBody(r: Reader, kind: 'td1.0' | 'td1.5'): TdxReportBody {
  const teeTcbSvn = own(r.bytes(16));
  const mrSeam = own(r.bytes(48));
  const mrSignerSeam = own(r.bytes(48));
  const seamAttributes = own(r.bytes(8));
  const tdAttributes = own(r.bytes(8));
  const xfam = own(r.bytes(8));
  const mrTd = own(r.bytes(48));
  const mrConfigId = own(r.bytes(48));
  const mrOwner = own(r.bytes(48));
  const mrOwnerConfig = own(r.bytes(48));
  const rtmrs = [own(r.bytes(48)), own(r.bytes(48)), own(r.bytes(48)), own(r.bytes(48))] as const;
  const reportData = own(r.bytes(64));
  const base = {
    kind,
    teeTcbSvn,
    mrSeam,
    mrSignerSeam,
    seamAttributes,
    tdAttributes,
    xfam,
    mrTd,
    mrConfigId,
    mrOwner,
    mrOwnerConfig,
    rtmrs,
    reportData,
  };
  if (kind === 'td1.0') return base;
  return { ...base, teeTcbSvn2: own(r.bytes(16)), mrServiceTd: own(r.bytes(48)) };
}

/** Parses the 384-byte SGX REPORT BODY (SGX SDM "REPORT": reserved ranges must be zero), from a copy. */
export function parseSgxReportBody(bytes: Uint8Array): SgxReportBody {
  if (!(bytes instanceof Uint8Array)) bad('qe_report.size', 'a QE report is bytes');
  return readSgxReportBody(bytes.slice());
}

/** parseSgxReportBody over bytes the parser already owns (its fields are views into them). */
function readSgxReportBody(bytes: Uint8Array): SgxReportBody {
  if (bytes.length !== QE_REPORT_SIZE) bad('qe_report.size', `QE report is ${bytes.length} bytes, not 384`);
  const r = new Reader(bytes, `${W}.qe_report`);
  const raw = bytes;
  const cpuSvn = own(r.at(0x00).bytes(16));
  const miscSelect = r.at(0x10).u32le();
  r.mbz(12, '0x14'); // 0x20 ISVEXTPRODID (16) is not reserved
  const attributes = own(r.at(0x30).bytes(16));
  const mrEnclave = own(r.at(0x40).bytes(32));
  r.mbz(32, '0x60');
  const mrSigner = own(r.at(0x80).bytes(32));
  r.mbz(32, '0xa0'); // 0xc0 CONFIGID (64) is not reserved
  const isvProdId = r.at(0x100).u16le();
  const isvSvn = r.at(0x102).u16le();
  r.at(0x106).mbz(42, '0x106'); // after CONFIGSVN; 0x130 ISVFAMILYID (16) is not reserved
  const reportData = own(r.at(0x140).bytes(64));
  return { raw, cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}

/**
 * Parses a TDX quote (v4 or v5). Throws MalformedEvidence `tdx.quote.version`, `.att_key_type`,
 * `.tee_type`, `.body_type`, `.body_size`, `.cert_type`, `.length`, `.size`, `.truncated`.
 */
export function parseTdxQuote(bytes: Uint8Array): TdxQuote {
  if (!(bytes instanceof Uint8Array)) bad('size', 'a quote is bytes');
  if (bytes.length > MAX_QUOTE_SIZE) bad('size', `quote over ${MAX_QUOTE_SIZE} bytes`);
  // The one copy: every field below is a view into it (see own()).
  bytes = bytes.slice();
  const r = new Reader(bytes, W);
  const header = readHeader(r);
  let body: TdxReportBody;
  let bodyType: number | undefined;
  if (header.version === 4) {
    body = readBody(r.at(HEADER_SIZE), 'td1.0');
  } else {
    bodyType = r.at(HEADER_SIZE).u16le();
    const size = r.u32le();
    if (bodyType === BODY_TYPE.td10) {
      if (size !== TD10_BODY_SIZE) bad('body_size', `TD 1.0 body size ${size} is not 584`);
      body = readBody(r, 'td1.0');
    } else if (bodyType === BODY_TYPE.td15) {
      if (size !== TD15_BODY_SIZE) bad('body_size', `TD 1.5 body size ${size} is not 648`);
      body = readBody(r, 'td1.5');
    } else {
      bad('body_type', `v5 body type ${bodyType} is not 2 (TD 1.0) or 3 (TD 1.5)`);
    }
  }
  const signedEnd = r.offset;
  const signed = own(bytes.subarray(0, signedEnd));

  const sigDataLen = r.u32le();
  if (sigDataLen > r.remaining) bad('length', `signed data length ${sigDataLen} exceeds the quote`);
  const s = new Reader(r.bytes(sigDataLen), W);
  const signature = own(s.bytes(64));
  const attestationKey = own(s.bytes(64));
  const certType = s.u16le();
  if (certType !== CERT_DATA.qeReport)
    bad('cert_type', `certification data type ${certType} is not 6 (QE report)`);
  const certSize = s.u32le();
  if (certSize !== s.remaining) bad('length', `certification data size ${certSize} != ${s.remaining}`);
  const qeReport = readSgxReportBody(s.bytes(QE_REPORT_SIZE));
  const qeReportSignature = own(s.bytes(64));
  const authLen = s.u16le();
  const qeAuthData = own(s.bytes(authLen));
  const innerType = s.u16le();
  if (innerType !== CERT_DATA.pckChain)
    bad('cert_type', `inner certification data type ${innerType} is not 5 (PCK chain)`);
  const innerSize = s.u32le();
  if (innerSize !== s.remaining) bad('length', `PCK chain size ${innerSize} != ${s.remaining}`);
  const pckChainPem = own(s.bytes(innerSize));
  s.end();
  return {
    header,
    body,
    ...(bodyType !== undefined ? { bodyType } : {}),
    signed,
    signature,
    attestationKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    pckChainPem,
    trailingBytes: r.remaining,
  };
}
