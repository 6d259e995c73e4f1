import { createHash, sign } from 'node:crypto';
import { encodePem } from '../../formats/pem.js';
import type { TdxCollateral } from '../../formats/tdx/collateral-source.js';
import { newP256, type SimKeyPair, sgxExtension, simIntelCertificate, simIntelCrl } from './certs.js';
import { encodeTdxQuote, type SimTdBody } from './quote.js';

/**
 * A simulated TDX platform: an Intel-shaped chain (generated root → PCK Platform CA → PCK leaf, and a TCB
 * Signing leaf), a QE that signs quotes with its attestation key, and matching PCS collateral (TCB Info,
 * QE Identity, both CRLs) valid around `now`. Trust it with `trustedRoots: [platform.rootSha256]`.
 */

const DAY = 86_400_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const SIM_FMSPC = Uint8Array.from([0x00, 0x80, 0x6f, 0x00, 0x00, 0x00]);
export const SIM_QE_MRSIGNER = new Uint8Array(32).fill(0xdc);
/** TD_ATTRIBUTES with SEPT_VE_DISABLE (bit 28) only, little-endian. */
export const SIM_TD_ATTRIBUTES = Uint8Array.from([0, 0, 0, 0x10, 0, 0, 0, 0]);
/** XFAM 0x61ae7 (x87, SSE, AVX, AVX-512, PKRU, ...), little-endian. */
export const SIM_XFAM = Uint8Array.from([0xe7, 0x1a, 0x06, 0, 0, 0, 0, 0]);

export interface SimTdxQuoteOptions {
  readonly version?: 4 | 5;
  readonly kind?: 'td1.0' | 'td1.5';
  readonly body?: Partial<SimTdBody>;
}

export class SimTdxPlatform {
  readonly root: SimKeyPair = newP256();
  readonly pckCa: SimKeyPair = newP256();
  readonly pck: SimKeyPair = newP256();
  readonly tcbSigning: SimKeyPair = newP256();
  readonly attestationKey: SimKeyPair = newP256();
  readonly rootDer: Uint8Array;
  readonly pckCaDer: Uint8Array;
  readonly pckDer: Uint8Array;
  readonly tcbSigningDer: Uint8Array;
  readonly rootSha256: string;
  readonly issued: Date;

  constructor(now = new Date()) {
    this.issued = new Date(now.getTime() - DAY);
    const until = new Date(now.getTime() + 365 * DAY);
    const cert = (
      serial: bigint,
      issuerCn: string,
      subjectCn: string,
      s: SimKeyPair,
      i: SimKeyPair,
      ca: boolean,
      extra = [] as ReturnType<typeof sgxExtension>[],
    ) =>
      simIntelCertificate({
        serial,
        issuerCn,
        subjectCn,
        notBefore: this.issued,
        notAfter: until,
        subjectKey: s.publicKey,
        issuerKey: i.privateKey,
        ca,
        extra,
      });
    this.rootDer = cert(1n, 'Intel SGX Root CA', 'Intel SGX Root CA', this.root, this.root, true);
    this.pckCaDer = cert(2n, 'Intel SGX Root CA', 'Intel SGX PCK Platform CA', this.pckCa, this.root, true);
    this.pckDer = cert(
      3n,
      'Intel SGX PCK Platform CA',
      'Intel SGX PCK Certificate',
      this.pck,
      this.pckCa,
      false,
      [
        sgxExtension({
          componentSvns: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
          pceSvn: 13,
          pceId: new Uint8Array(2),
          fmspc: SIM_FMSPC,
        }),
      ],
    );
    this.tcbSigningDer = cert(
      4n,
      'Intel SGX Root CA',
      'Intel SGX TCB Signing',
      this.tcbSigning,
      this.root,
      false,
    );
    this.rootSha256 = createHash('sha256').update(this.rootDer).digest('hex');
  }

  get pckChainPem(): string {
    return [this.pckDer, this.pckCaDer, this.rootDer].map((d) => encodePem('CERTIFICATE', d)).join('');
  }

  /** A signed quote over `reportData` (64 bytes). */
  quote(reportData: Uint8Array, o: SimTdxQuoteOptions = {}): Uint8Array {
    const z = (n: number) => new Uint8Array(n);
    const body: SimTdBody = {
      teeTcbSvn: Uint8Array.from([5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      mrSeam: new Uint8Array(48).fill(0x5e),
      mrSignerSeam: z(48),
      seamAttributes: z(8),
      tdAttributes: SIM_TD_ATTRIBUTES,
      xfam: SIM_XFAM,
      mrTd: new Uint8Array(48).fill(0x7d),
      mrConfigId: z(48),
      mrOwner: z(48),
      mrOwnerConfig: z(48),
      rtmrs: [z(48), z(48), z(48), z(48)],
      reportData,
      ...o.body,
    };
    return encodeTdxQuote({
      version: o.version ?? 4,
      kind: o.kind ?? 'td1.0',
      body,
      qe: {
        cpuSvn: z(16),
        attributes: Uint8Array.from([0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0]),
        mrEnclave: new Uint8Array(32).fill(0xe5),
        mrSigner: SIM_QE_MRSIGNER,
        isvProdId: 2,
        isvSvn: 8,
      },
      attestationKey: this.attestationKey.privateKey,
      pckKey: this.pck.privateKey,
      pckChainPem: `${this.pckChainPem}\0`,
    });
  }

  /** PCS-shaped collateral for this platform: one UpToDate level (and an OutOfDate one below it). */
  collateral(
    o: { platformStatus?: string; advisoryIds?: readonly string[]; revokedPck?: boolean } = {},
  ): TdxCollateral {
    const issueDate = this.issued.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const nextUpdate = new Date(this.issued.getTime() + 30 * DAY).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const comps = (svns: number[]) => svns.map((svn) => ({ svn }));
    const level = (
      sgx: number[],
      pcesvn: number,
      tdx: number[],
      tcbStatus: string,
      adv?: readonly string[],
    ) => ({
      tcb: { sgxtcbcomponents: comps(sgx), pcesvn, tdxtcbcomponents: comps(tdx) },
      tcbDate: issueDate,
      tcbStatus,
      ...(adv && adv.length > 0 ? { advisoryIDs: adv } : {}),
    });
    const pad = (a: number[]) => [...a, ...new Array(16 - a.length).fill(0)];
    const tcbInfo = {
      id: 'TDX',
      version: 3,
      issueDate,
      nextUpdate,
      fmspc: hex(SIM_FMSPC).toUpperCase(),
      pceId: '0000',
      tcbType: 0,
      tcbEvaluationDataNumber: 18,
      tdxModule: {
        mrsigner: '0'.repeat(96),
        attributes: '0000000000000000',
        attributesMask: 'FFFFFFFFFFFFFFFF',
      },
      tdxModuleIdentities: [
        {
          id: 'TDX_01',
          mrsigner: '0'.repeat(96),
          attributes: '0000000000000000',
          attributesMask: 'FFFFFFFFFFFFFFFF',
          tcbLevels: [{ tcb: { isvsvn: 4 }, tcbDate: issueDate, tcbStatus: 'UpToDate' }],
        },
      ],
      tcbLevels: [
        level(
          pad([3, 3, 2, 2, 4, 1, 0, 5]),
          13,
          pad([0, 0, 2]),
          o.platformStatus ?? 'UpToDate',
          o.advisoryIds,
        ),
        level(pad([2, 2, 2, 2, 2, 1, 0, 3]), 11, pad([0, 0, 1]), 'OutOfDate', ['INTEL-SA-00000']),
      ],
    };
    const qeIdentity = {
      id: 'TD_QE',
      version: 2,
      issueDate,
      nextUpdate,
      tcbEvaluationDataNumber: 18,
      miscselect: '00000000',
      miscselectMask: 'FFFFFFFF',
      attributes: '11000000000000000000000000000000',
      attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
      mrsigner: hex(SIM_QE_MRSIGNER).toUpperCase(),
      isvprodid: 2,
      tcbLevels: [{ tcb: { isvsvn: 4 }, tcbDate: issueDate, tcbStatus: 'UpToDate' }],
    };
    const signed = (v: unknown) => {
      const body = new Uint8Array(Buffer.from(JSON.stringify(v)));
      const signature = new Uint8Array(
        sign('sha256', body, { key: this.tcbSigning.privateKey, dsaEncoding: 'ieee-p1363' }),
      );
      return { body, signature, issuerChain: [this.tcbSigningDer, this.rootDer] };
    };
    const crlDates = { thisUpdate: this.issued, nextUpdate: new Date(this.issued.getTime() + 30 * DAY) };
    return {
      tcbInfo: signed(tcbInfo),
      qeIdentity: signed(qeIdentity),
      pckCrl: simIntelCrl({
        issuerCn: 'Intel SGX PCK Platform CA',
        issuerKey: this.pckCa.privateKey,
        ...crlDates,
        revoked: o.revokedPck ? [3n] : [99n],
      }),
      rootCaCrl: simIntelCrl({
        issuerCn: 'Intel SGX Root CA',
        issuerKey: this.root.privateKey,
        ...crlDates,
        revoked: [],
      }),
    };
  }
}
