import { MalformedEvidence } from '../../errors.js';
import { fromHex } from '../../util/bytes.js';

/**
 * Intel PCS collateral bodies for TDX (Intel PCS API v4: "Get TDX TCB Info" returns `tcbInfo` id "TDX"
 * version 3; "Get TDX QE Identity" returns `enclaveIdentity` id "TD_QE" version 2). These decoders take
 * the exact bytes Intel signed (the value of `tcbInfo` / `enclaveIdentity`, as shared/vectors/tdx/<case>/
 * tcb_info.json and qe_identity.json hold them) and check shape only: signatures, dates and matching
 * are src/evidence/tdx's job. Unknown members are ignored (Intel adds them); known ones must have their
 * type. Throws MalformedEvidence `tdx.tcb_info.json` / `tdx.qe_identity.json`.
 */

/** TCB statuses Intel publishes (PCS API v4, "tcbStatus"). */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export interface TcbLevelStatus {
  readonly tcbDate: string;
  readonly tcbStatus: TcbStatus;
  readonly advisoryIds: readonly string[];
}

/** A platform TCB level: 16 SGX component SVNs, PCESVN, 16 TDX component SVNs. */
export interface TdxPlatformTcbLevel extends TcbLevelStatus {
  readonly sgxComponents: readonly number[];
  readonly pceSvn: number;
  readonly tdxComponents: readonly number[];
}

/** A level of a TDX module identity or of the QE identity: one ISVSVN. */
export interface IsvSvnLevel extends TcbLevelStatus {
  readonly isvSvn: number;
}

export interface TdxModuleIdentity {
  /** `TDX_%02X` of the module's major SVN (TEE_TCB_SVN[1]). */
  readonly id: string;
  readonly mrSigner: Uint8Array;
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  readonly tcbLevels: readonly IsvSvnLevel[];
}

export interface TdxTcbInfo {
  readonly id: 'TDX';
  readonly version: 3;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  /** 6 bytes. */
  readonly fmspc: Uint8Array;
  /** 2 bytes. */
  readonly pceId: Uint8Array;
  readonly tcbType: number;
  readonly tcbEvaluationDataNumber: number;
  readonly tdxModule: {
    readonly mrSigner: Uint8Array;
    readonly attributes: Uint8Array;
    readonly attributesMask: Uint8Array;
  };
  readonly tdxModuleIdentities: readonly TdxModuleIdentity[];
  readonly tcbLevels: readonly TdxPlatformTcbLevel[];
}

export interface TdQeIdentity {
  readonly id: 'TD_QE';
  readonly version: 2;
  readonly issueDate: Date;
  readonly nextUpdate: Date;
  readonly tcbEvaluationDataNumber: number;
  readonly miscSelect: number;
  readonly miscSelectMask: number;
  /** 16 bytes each. */
  readonly attributes: Uint8Array;
  readonly attributesMask: Uint8Array;
  /** 32 bytes. */
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly tcbLevels: readonly IsvSvnLevel[];
}

/** Collateral bodies are a few KiB; this bounds the parse. */
export const MAX_COLLATERAL_JSON = 1 << 20;

type Obj = Record<string, unknown>;

class Shape {
  constructor(readonly reason: string) {}
  fail(path: string, what: string): never {
    throw new MalformedEvidence(this.reason, `${this.reason}: ${path} ${what}`);
  }
  obj(v: unknown, path: string): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'is not an object');
    return v as Obj;
  }
  arr(v: unknown, path: string, min = 0, max = 4096): unknown[] {
    if (!Array.isArray(v) || v.length < min || v.length > max)
      this.fail(path, `is not an array of ${min}..${max}`);
    return v;
  }
  str(v: unknown, path: string): string {
    if (typeof v !== 'string' || v.length > 1024) this.fail(path, 'is not a string');
    return v;
  }
  int(v: unknown, path: string, max = 0xffffffff): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      this.fail(path, `is not an integer 0..${max}`);
    return v;
  }
  hex(v: unknown, path: string, bytes: number): Uint8Array {
    const s = this.str(v, path);
    const b = s.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(s) ? fromHex(s) : undefined;
    if (!b || b.length !== bytes) this.fail(path, `is not ${bytes} bytes of hex`);
    return b;
  }
  date(v: unknown, path: string): Date {
    const s = this.str(v, path);
    // RFC 3339 UTC as Intel writes it (2025-06-19T10:16:03Z); nothing looser.
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(s)) this.fail(path, 'is not a UTC date');
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) this.fail(path, 'is not a date');
    return d;
  }
  status(v: unknown, path: string): TcbStatus {
    const s = this.str(v, path);
    if (!(TCB_STATUSES as readonly string[]).includes(s)) this.fail(path, `is not a known TCB status`);
    return s as TcbStatus;
  }
  levelStatus(o: Obj, path: string): TcbLevelStatus {
    const adv = o.advisoryIDs === undefined ? [] : this.arr(o.advisoryIDs, `${path}.advisoryIDs`, 0, 256);
    return {
      tcbDate: this.date(o.tcbDate, `${path}.tcbDate`).toISOString(),
      tcbStatus: this.status(o.tcbStatus, `${path}.tcbStatus`),
      advisoryIds: adv.map((a, i) => this.str(a, `${path}.advisoryIDs[${i}]`)),
    };
  }
  isvLevels(v: unknown, path: string): IsvSvnLevel[] {
    return this.arr(v, path, 1).map((l, i) => {
      const o = this.obj(l, `${path}[${i}]`);
      const tcb = this.obj(o.tcb, `${path}[${i}].tcb`);
      return {
        isvSvn: this.int(tcb.isvsvn, `${path}[${i}].tcb.isvsvn`, 0xffff),
        ...this.levelStatus(o, `${path}[${i}]`),
      };
    });
  }
  components(v: unknown, path: string): number[] {
    return this.arr(v, path, 16, 16).map((c, i) =>
      this.int(this.obj(c, `${path}[${i}]`).svn, `${path}[${i}].svn`, 255),
    );
  }
}

function readJson(bytes: Uint8Array, reason: string): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_COLLATERAL_JSON)
    throw new MalformedEvidence(reason, `${reason}: not JSON bytes under ${MAX_COLLATERAL_JSON}`);
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new MalformedEvidence(reason, `${reason}: not JSON`, { cause: e });
  }
}

/** Decodes a TDX TCB Info body (the signed `tcbInfo` value). Throws MalformedEvidence `tdx.tcb_info.json`. */
export function parseTdxTcbInfo(bytes: Uint8Array): TdxTcbInfo {
  const s = new Shape('tdx.tcb_info.json');
  const o = s.obj(readJson(bytes, s.reason), 'tcbInfo');
  if (o.id !== 'TDX') s.fail('id', 'is not "TDX"');
  if (o.version !== 3) s.fail('version', 'is not 3');
  const m = s.obj(o.tdxModule, 'tdxModule');
  const ids = o.tdxModuleIdentities === undefined ? [] : s.arr(o.tdxModuleIdentities, 'tdxModuleIdentities');
  return {
    id: 'TDX',
    version: 3,
    issueDate: s.date(o.issueDate, 'issueDate'),
    nextUpdate: s.date(o.nextUpdate, 'nextUpdate'),
    fmspc: s.hex(o.fmspc, 'fmspc', 6),
    pceId: s.hex(o.pceId, 'pceId', 2),
    tcbType: s.int(o.tcbType, 'tcbType'),
    tcbEvaluationDataNumber: s.int(o.tcbEvaluationDataNumber, 'tcbEvaluationDataNumber'),
    tdxModule: {
      mrSigner: s.hex(m.mrsigner, 'tdxModule.mrsigner', 48),
      attributes: s.hex(m.attributes, 'tdxModule.attributes', 8),
      attributesMask: s.hex(m.attributesMask, 'tdxModule.attributesMask', 8),
    },
    tdxModuleIdentities: ids.map((x, i) => {
      const p = `tdxModuleIdentities[${i}]`;
      const e = s.obj(x, p);
      const id = s.str(e.id, `${p}.id`);
      if (!/^TDX_[0-9A-F]{2}$/.test(id)) s.fail(`${p}.id`, 'is not TDX_%02X');
      return {
        id,
        mrSigner: s.hex(e.mrsigner, `${p}.mrsigner`, 48),
        attributes: s.hex(e.attributes, `${p}.attributes`, 8),
        attributesMask: s.hex(e.attributesMask, `${p}.attributesMask`, 8),
        tcbLevels: s.isvLevels(e.tcbLevels, `${p}.tcbLevels`),
      };
    }),
    tcbLevels: s.arr(o.tcbLevels, 'tcbLevels', 1).map((l, i) => {
      const p = `tcbLevels[${i}]`;
      const e = s.obj(l, p);
      const tcb = s.obj(e.tcb, `${p}.tcb`);
      return {
        sgxComponents: s.components(tcb.sgxtcbcomponents, `${p}.tcb.sgxtcbcomponents`),
        pceSvn: s.int(tcb.pcesvn, `${p}.tcb.pcesvn`, 0xffff),
        tdxComponents: s.components(tcb.tdxtcbcomponents, `${p}.tcb.tdxtcbcomponents`),
        ...s.levelStatus(e, p),
      };
    }),
  };
}

/** Decodes a TD QE Identity body (the signed `enclaveIdentity` value). Throws MalformedEvidence `tdx.qe_identity.json`. */
export function parseTdQeIdentity(bytes: Uint8Array): TdQeIdentity {
  const s = new Shape('tdx.qe_identity.json');
  const o = s.obj(readJson(bytes, s.reason), 'enclaveIdentity');
  if (o.id !== 'TD_QE') s.fail('id', 'is not "TD_QE"');
  if (o.version !== 2) s.fail('version', 'is not 2');
  const u32 = (v: unknown, p: string) => {
    const b = s.hex(v, p, 4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  };
  return {
    id: 'TD_QE',
    version: 2,
    issueDate: s.date(o.issueDate, 'issueDate'),
    nextUpdate: s.date(o.nextUpdate, 'nextUpdate'),
    tcbEvaluationDataNumber: s.int(o.tcbEvaluationDataNumber, 'tcbEvaluationDataNumber'),
    // Intel writes MISCSELECT as 8 hex digits, most significant first (PCS API: "hex-encoded").
    miscSelect: u32(o.miscselect, 'miscselect'),
    miscSelectMask: u32(o.miscselectMask, 'miscselectMask'),
    attributes: s.hex(o.attributes, 'attributes', 16),
    attributesMask: s.hex(o.attributesMask, 'attributesMask', 16),
    mrSigner: s.hex(o.mrsigner, 'mrsigner', 32),
    isvProdId: s.int(o.isvprodid, 'isvprodid', 0xffff),
    tcbLevels: s.isvLevels(o.tcbLevels, 'tcbLevels'),
  };
}
