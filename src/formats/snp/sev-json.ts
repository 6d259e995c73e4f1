import { MalformedEvidence, NotSupported } from '../../errors.js';
import {
  buildCertTable,
  CertGuid,
  type CertTableEntry,
  MAX_CERT_TABLE_SIZE,
  parseCertTable,
} from './cert-table.js';
import { productFromCpuid, type SnpProduct } from './product.js';
import { encodeReport, parseReport, type SnpReport, SUPPORTED_VERSIONS } from './report.js';
import { decodeTcb, encodeTcb, type TcbParts } from './tcb.js';

/**
 * Trustee's SEV-SNP evidence in "struct form": `{"attestation_report": {...}, "cert_chain": [...] | null}`,
 * the virtee `sev` crate's `AttestationReport` and `CertTableEntry` written by serde_json (sev 6.3 and 7.x
 * give byte-identical output; the 8.0 used by svsm PR #1122's aproxy keeps the field names). The
 * confidential-containers guest attester sends it; Trustee rebuilds the report bytes from the fields to
 * check the signature, and so does this codec.
 *
 * The rule: the fields must say exactly one 1184-byte report (SEV-SNP ABI 56860 rev 1.57 Table 23), so
 * every struct whose rebuilt bytes would differ from what its fields say is refused:
 * - exactly the sev crate's keys, no other (unknown and missing keys refused at every level);
 * - byte fields are arrays of exactly the field's length, each an integer 0..255;
 * - integers fit their field (u8, u32; u64 only up to 2^53-1, because a JSON number above that reaches
 *   us already rounded);
 * - VERSION 2-5; the CPUID fields are null exactly in v2 (no such bytes), the mitigation vectors null
 *   exactly before v5;
 * - each TCB's `fmc` is a number exactly when the product's TCB_VERSION layout has an FMC byte (Turin):
 *   the product comes from CPUID (v3+) or, in v2, from the sev crate's own rule (a CHIP_ID whose last 56
 *   bytes are zero is Turin's), so a Milan/Genoa TCB with an FMC, whose FMC the bytes would drop, or a
 *   Turin TCB without one, is refused.
 * Reserved bytes are written zero (the struct has none). Semantic checks on the rebuilt report (policy
 * bits, signer info) stay where they are for every report: parseReport.
 *
 * Errors: MalformedEvidence `snp.sev_json.type`, `.missing_key`, `.unknown_key`, `.length`, `.range`,
 * `.version`, `.version_field`, `.tcb_layout`, `.cert_type`, `.cert_duplicate`, `.size`, `.json`;
 * NotSupported `snp.sev_json.product` (CPUID names no generation whose TCB layout is known).
 */

/** The report bytes and, when `cert_chain` carried certificates, a GHCB certificate table of them. */
export interface SevSnpEvidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
}

/** sev crate `CertType::CRL`: not in the GHCB spec's list, the crate's own GUID for it. */
const CRL_GUID = '92f81bc3-5811-4d3d-97ff-d19f88dc67ea';
/** serde's names of the sev crate's `CertType` unit variants → GUID. `Empty` (the terminator) is refused. */
const CERT_TYPES: Readonly<Record<string, string>> = Object.freeze(
  Object.assign(Object.create(null), {
    ARK: CertGuid.ARK,
    ASK: CertGuid.ASK,
    VCEK: CertGuid.VCEK,
    VLEK: CertGuid.VLEK,
    CRL: CRL_GUID,
  }),
);
/** A host returns VCEK, ASK, ARK (or VLEK, ASVK) and perhaps a CRL; 16 entries is far beyond that. */
export const MAX_SEV_CERT_ENTRIES = 16;
/** JSON text of the struct form read from a file: a report is ~2.5 KB, certificates ~4x their DER size. */
export const MAX_SEV_JSON_TEXT = 4 * (MAX_CERT_TABLE_SIZE + 64 * 1024);

type Obj = { readonly [k: string]: unknown };

const fail = (reason: string, path: string, what: string): never => {
  throw new MalformedEvidence(`snp.sev_json.${reason}`, `${path}: ${what}`);
};

/** JSON type names for messages: never the value itself (it may be huge or deeply nested). */
const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** An object with exactly `keys` (`optional` may be absent). Returns it typed. */
function record(v: unknown, path: string, keys: readonly string[], optional: readonly string[] = []): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail('type', path, `object expected, got ${typeOf(v)}`);
  const o = v as Obj;
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) fail('unknown_key', path, `unknown member ${JSON.stringify(k.slice(0, 40))}`);
  }
  for (const k of keys) {
    if (!Object.hasOwn(o, k) && !optional.includes(k)) fail('missing_key', path, `member ${k} is missing`);
  }
  return o;
}

/** An unsigned integer of at most `max` (u8, u32, or 2^53-1 for the u64 fields). */
function uint(v: unknown, path: string, max: number): number {
  if (typeof v !== 'number') fail('type', path, `integer expected, got ${typeOf(v)}`);
  const n = v as number;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    fail('range', path, `must be an integer in 0..${max}`);
  }
  return n;
}
const U8 = 0xff;
const U32 = 0xffff_ffff;
/** u64 fields: JSON numbers are doubles here, so only values up to 2^53-1 arrive exactly. */
const U64_EXACT = Number.MAX_SAFE_INTEGER;

/** Exactly `n` bytes given as numbers 0..255. */
function byteArray(v: unknown, path: string, n: number): Uint8Array {
  if (!Array.isArray(v)) fail('type', path, `array of ${n} bytes expected, got ${typeOf(v)}`);
  const a = v as readonly unknown[];
  if (a.length !== n) fail('length', path, `must hold ${n} bytes, holds ${a.length}`);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = uint(a[i], `${path}[${i}]`, U8);
  return out;
}

const TCB_KEYS = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const;

/** sev `TcbVersion` {fmc: Option<u8>, bootloader, tee, snp, microcode: u8}. */
function tcb(v: unknown, path: string): TcbParts {
  const o = record(v, path, TCB_KEYS);
  const parts: TcbParts = {
    bootloader: uint(o.bootloader, `${path}.bootloader`, U8),
    tee: uint(o.tee, `${path}.tee`, U8),
    snp: uint(o.snp, `${path}.snp`, U8),
    microcode: uint(o.microcode, `${path}.microcode`, U8),
  };
  return o.fmc === null ? parts : { ...parts, fmc: uint(o.fmc, `${path}.fmc`, U8) };
}

/** sev `Version` {major, minor, build: u8}. */
function firmwareVersion(v: unknown, path: string): { major: number; minor: number; build: number } {
  const o = record(v, path, ['major', 'minor', 'build']);
  return {
    major: uint(o.major, `${path}.major`, U8),
    minor: uint(o.minor, `${path}.minor`, U8),
    build: uint(o.build, `${path}.build`, U8),
  };
}

/** A field the report version has (a value) or lacks (null). */
function versioned<T>(v: unknown, path: string, present: boolean, read: () => T): T | undefined {
  if (present === (v === null)) {
    fail(
      'version_field',
      path,
      present ? 'must be set for this report version' : 'must be null for this report version',
    );
  }
  return present ? read() : undefined;
}

const REPORT_KEYS = [
  'version',
  'guest_svn',
  'policy',
  'family_id',
  'image_id',
  'vmpl',
  'sig_algo',
  'current_tcb',
  'plat_info',
  'key_info',
  'report_data',
  'measurement',
  'host_data',
  'id_key_digest',
  'author_key_digest',
  'report_id',
  'report_id_ma',
  'reported_tcb',
  'cpuid_fam_id',
  'cpuid_mod_id',
  'cpuid_step',
  'chip_id',
  'committed_tcb',
  'current',
  'committed',
  'launch_tcb',
  'launch_mit_vector',
  'current_mit_vector',
  'signature',
] as const;

/**
 * Rebuilds the 1184-byte ATTESTATION_REPORT from the sev crate's `AttestationReport` struct (`path` names
 * it in errors). Throws the errors listed in the module comment.
 */
function decodeSevReport(v: unknown, path: string): Uint8Array {
  const o = record(v, path, REPORT_KEYS);
  const at = (k: string) => `${path}.${k}`;
  const version = uint(o.version, at('version'), U32);
  if (!(SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    fail('version', at('version'), `report version ${version} is not supported (2-5)`);
  }
  const cpuidKeys = ['cpuid_fam_id', 'cpuid_mod_id', 'cpuid_step'] as const;
  const [family, model, stepping] = cpuidKeys.map((k) =>
    versioned(o[k], at(k), version >= 3, () => uint(o[k], at(k), U8)),
  );
  const [launchMit, currentMit] = (['launch_mit_vector', 'current_mit_vector'] as const).map((k) =>
    versioned(o[k], at(k), version >= 5, () => BigInt(uint(o[k], at(k), U64_EXACT))),
  );
  const chipId = byteArray(o.chip_id, at('chip_id'), 64);
  const tcbs = {
    currentTcb: tcb(o.current_tcb, at('current_tcb')),
    reportedTcb: tcb(o.reported_tcb, at('reported_tcb')),
    committedTcb: tcb(o.committed_tcb, at('committed_tcb')),
    launchTcb: tcb(o.launch_tcb, at('launch_tcb')),
  };

  // Step: the TCB_VERSION layout, as the sev crate's writer picks it (CPUID in v3+; in v2 a CHIP_ID with
  // only its first 8 bytes set is Turin's). A masked (all-zero) v2 CHIP_ID names nothing: then the fields
  // must agree among themselves.
  let turin: boolean;
  if (family !== undefined && model !== undefined) {
    const product = productFromCpuid(family, model);
    if (!product) {
      throw new NotSupported(
        'snp.sev_json.product',
        `${path}: CPUID family 0x${family.toString(16)} model 0x${model.toString(16)} names no SEV-SNP generation whose TCB layout is known`,
      );
    }
    turin = product === 'Turin';
  } else if (chipId.some((b) => b !== 0)) {
    turin = chipId.subarray(8).every((b) => b === 0);
  } else {
    turin = tcbs.currentTcb.fmc !== undefined;
  }
  for (const [k, t] of Object.entries(tcbs)) {
    if ((t.fmc !== undefined) !== turin) {
      fail(
        'tcb_layout',
        `${path}.${k}`,
        turin
          ? "fmc must be set: the TCB layout is Turin's"
          : "fmc must be null: this product's TCB has no FMC byte",
      );
    }
  }
  const layout = turin ? 'Turin' : 'Milan'; // Milan and Genoa share the layout; only the layout is used here.
  const sig = record(o.signature, at('signature'), ['r', 's']);
  const current = firmwareVersion(o.current, at('current'));
  const committed = firmwareVersion(o.committed, at('committed'));
  return encodeReport({
    version,
    guestSvn: uint(o.guest_svn, at('guest_svn'), U32),
    policy: BigInt(uint(o.policy, at('policy'), U64_EXACT)),
    familyId: byteArray(o.family_id, at('family_id'), 16),
    imageId: byteArray(o.image_id, at('image_id'), 16),
    vmpl: uint(o.vmpl, at('vmpl'), U32),
    signatureAlgo: uint(o.sig_algo, at('sig_algo'), U32),
    currentTcb: encodeTcb(tcbs.currentTcb, layout),
    platformInfo: BigInt(uint(o.plat_info, at('plat_info'), U64_EXACT)),
    signerInfo: uint(o.key_info, at('key_info'), U32),
    reportData: byteArray(o.report_data, at('report_data'), 64),
    measurement: byteArray(o.measurement, at('measurement'), 48),
    hostData: byteArray(o.host_data, at('host_data'), 32),
    idKeyDigest: byteArray(o.id_key_digest, at('id_key_digest'), 48),
    authorKeyDigest: byteArray(o.author_key_digest, at('author_key_digest'), 48),
    reportId: byteArray(o.report_id, at('report_id'), 32),
    reportIdMa: byteArray(o.report_id_ma, at('report_id_ma'), 32),
    reportedTcb: encodeTcb(tcbs.reportedTcb, layout),
    ...(family !== undefined ? { cpuid: { family, model: model!, stepping: stepping! } } : {}),
    chipId,
    committedTcb: encodeTcb(tcbs.committedTcb, layout),
    currentBuild: current.build,
    currentMinor: current.minor,
    currentMajor: current.major,
    committedBuild: committed.build,
    committedMinor: committed.minor,
    committedMajor: committed.major,
    launchTcb: encodeTcb(tcbs.launchTcb, layout),
    ...(launchMit !== undefined ? { launchMitVector: launchMit, currentMitVector: currentMit! } : {}),
    signature: {
      r: byteArray(sig.r, at('signature.r'), 72),
      s: byteArray(sig.s, at('signature.s'), 72),
    },
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** serde of `CertType`: a unit variant's name, or `{"OTHER": "<uuid>"}`. Returns the GUID. */
function certGuid(v: unknown, path: string): string {
  if (typeof v === 'string') {
    const g = CERT_TYPES[v];
    if (g === undefined)
      fail('cert_type', path, `unknown or unusable certificate type ${JSON.stringify(v.slice(0, 16))}`);
    return g!;
  }
  const o = record(v, path, ['OTHER']);
  if (typeof o.OTHER !== 'string')
    fail('type', `${path}.OTHER`, `UUID string expected, got ${typeOf(o.OTHER)}`);
  const g = (o.OTHER as string).toLowerCase();
  // The crate maps the well-known GUIDs (and the nil terminator) to their own variants, never to OTHER.
  if (
    !UUID.test(g) ||
    g === '00000000-0000-0000-0000-000000000000' ||
    Object.values(CERT_TYPES).includes(g)
  ) {
    fail('cert_type', `${path}.OTHER`, 'must be a UUID other than the nil and the well-known ones');
  }
  return g;
}

/**
 * The sev crate's `Vec<CertTableEntry>` (`[{cert_type, data}]`, data as byte numbers) as a GHCB
 * certificate table (GHCB 56421 §4.1.8.1), entries in the order given. Undefined for null, absent or an
 * empty array. At most {@link MAX_SEV_CERT_ENTRIES} entries and MAX_CERT_TABLE_SIZE bytes; no type twice.
 */
function decodeSevCertChain(v: unknown, path: string): Uint8Array | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail('type', path, `array or null expected, got ${typeOf(v)}`);
  const list = v as readonly unknown[];
  if (list.length > MAX_SEV_CERT_ENTRIES) fail('size', path, `more than ${MAX_SEV_CERT_ENTRIES} entries`);
  if (list.length === 0) return undefined;
  const entries: CertTableEntry[] = [];
  // The table's size: one 24-byte entry per certificate plus the terminator, then the data.
  let total = (list.length + 1) * 24;
  for (let i = 0; i < list.length; i++) {
    const p = `${path}[${i}]`;
    const e = record(list[i], p, ['cert_type', 'data']);
    const guid = certGuid(e.cert_type, `${p}.cert_type`);
    if (entries.some((x) => x.guid === guid)) {
      fail('cert_duplicate', `${p}.cert_type`, 'a certificate type appears twice');
    }
    if (!Array.isArray(e.data)) fail('type', `${p}.data`, `array of bytes expected, got ${typeOf(e.data)}`);
    const n = (e.data as readonly unknown[]).length;
    if (n === 0) fail('length', `${p}.data`, 'is empty');
    total += n;
    // Checked before the bytes are read: a huge array costs no more than its length.
    if (total > MAX_CERT_TABLE_SIZE)
      fail('size', `${p}.data`, `certificates exceed ${MAX_CERT_TABLE_SIZE} bytes`);
    entries.push({ guid, data: byteArray(e.data, `${p}.data`, n) });
  }
  return buildCertTable(entries);
}

/**
 * Decodes Trustee's SEV-SNP evidence object `{attestation_report, cert_chain?}` (`cert_chain` null,
 * absent, or entries) into the report bytes and certificate table. Throws the errors listed above.
 */
export function decodeSevSnpEvidence(v: unknown, path = 'evidence'): SevSnpEvidence {
  const o = record(v, path, ['attestation_report', 'cert_chain'], ['cert_chain']);
  const report = decodeSevReport(o.attestation_report, `${path}.attestation_report`);
  const certTable = decodeSevCertChain(o.cert_chain, `${path}.cert_chain`);
  return certTable ? { report, certTable } : { report };
}

/**
 * Whether file contents are JSON text rather than a raw report: the first byte after an optional UTF-8 BOM
 * and blanks is `{`. A raw report cannot start so: its first byte is VERSION's low byte (2-5).
 */
export function isJsonText(bytes: Uint8Array): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && [0x20, 0x09, 0x0a, 0x0d].includes(bytes[i]!)) i++;
  return bytes[i] === 0x7b;
}

/**
 * Decodes the struct form from JSON text (a file): UTF-8, at most {@link MAX_SEV_JSON_TEXT} bytes, then
 * {@link decodeSevSnpEvidence}. Throws MalformedEvidence `snp.sev_json.size` / `.json` besides.
 */
export function parseSevSnpEvidenceJson(bytes: Uint8Array): SevSnpEvidence {
  if (bytes.length > MAX_SEV_JSON_TEXT) fail('size', 'evidence', `JSON text over ${MAX_SEV_JSON_TEXT} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    fail('json', 'evidence', 'not UTF-8 JSON text');
  }
  return decodeSevSnpEvidence(value);
}

// ---- encoder: raw report bytes -> the struct form (what svsm PR #1122's aproxy sends in kbs-trustee mode) ----

/** serde_json's shape of the sev crate's `TcbVersion`. */
interface SevTcbJson {
  readonly fmc: number | null;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/** One `CertTableEntry` as serde writes it: a `CertType` unit variant's name or `{"OTHER": uuid}`. */
export interface SevCertEntryJson {
  readonly cert_type: string | { readonly OTHER: string };
  readonly data: number[];
}

/**
 * Trustee's SEV-SNP evidence object, its members in the sev crate's declaration order, so that
 * `JSON.stringify` of it is byte for byte what `serde_json::to_string` writes for the same report.
 */
export interface SevSnpEvidenceJson {
  readonly attestation_report: { readonly [k: string]: unknown };
  readonly cert_chain: SevCertEntryJson[] | null;
}

const GUID_NAMES: ReadonlyMap<string, string> = new Map(Object.entries(CERT_TYPES).map(([n, g]) => [g, n]));

/** A u64 field as a JSON number: only values a double holds exactly (the decoder reads no more). */
function exactU64(v: bigint, path: string): number {
  if (v > BigInt(U64_EXACT))
    fail('range', path, `0x${v.toString(16)} is above 2^53-1, which JSON numbers do not carry exactly`);
  return Number(v);
}

/**
 * The TCB_VERSION layout the sev crate's reader picks for a report: from CPUID in v3+ (an unknown
 * generation is NotSupported `snp.sev_json.product`); in v2 from CHIP_ID (only its first 8 bytes set:
 * Turin's). A v2 report with MASK_CHIP_ID (all-zero CHIP_ID) names no generation: the crate refuses to
 * read it ("MASK_CHIP_ID is enabled, preventing the identification of the CPU generation"), and so does
 * this encoder, with NotSupported `snp.sev_json.product`.
 */
function layoutOf(r: SnpReport): SnpProduct {
  if (r.cpuid) {
    const p = productFromCpuid(r.cpuid.family, r.cpuid.model);
    if (!p) {
      throw new NotSupported(
        'snp.sev_json.product',
        `CPUID family 0x${r.cpuid.family.toString(16)} model 0x${r.cpuid.model.toString(16)} names no SEV-SNP generation whose TCB layout is known`,
      );
    }
    return p;
  }
  if (r.chipId.every((b) => b === 0)) {
    throw new NotSupported(
      'snp.sev_json.product',
      'a v2 report with MASK_CHIP_ID names no CPU generation; the sev crate cannot write it',
    );
  }
  return r.chipId.subarray(8).every((b) => b === 0) ? 'Turin' : 'Milan';
}

function tcbJson(raw: bigint, product: SnpProduct): SevTcbJson {
  const t = decodeTcb(raw, product);
  return { fmc: t.fmc ?? null, bootloader: t.bootloader, tee: t.tee, snp: t.snp, microcode: t.microcode };
}

const bytesJson = (b: Uint8Array): number[] => Array.from(b);

/**
 * Encodes a raw 1184-byte ATTESTATION_REPORT (and optionally a GHCB certificate table) as Trustee's struct
 * form: the inverse of {@link decodeSevSnpEvidence}, and what the sev crate's `AttestationReport::from_bytes`
 * followed by serde writes (the shared fixtures are reproduced byte for byte). The certificate table
 * becomes `cert_chain` entries in table order (null without one).
 *
 * Only a report whose every byte the struct carries can be encoded, because the verifier rebuilds the
 * bytes from the fields to check the signature: the report must parse (parseReport: size, version,
 * reserved bytes zero, policy and signer bits; MalformedEvidence `snp.report.*`), its u64 fields must be
 * at most 2^53-1 (`snp.sev_json.range`), its generation known (NotSupported `snp.sev_json.product`), and
 * decoding the result must give back exactly the input, which fails (MalformedEvidence
 * `snp.sev_json.unrepresentable`) when a TCB has bytes its layout reserves. The cert table must parse
 * (`snp.cert_table.*`) and satisfy the decoder's bounds (`snp.sev_json.*`).
 */
export function encodeSevSnpEvidence(report: Uint8Array, certTable?: Uint8Array): SevSnpEvidenceJson {
  const r = parseReport(report);
  const product = layoutOf(r);
  const v5 = r.version >= 5;
  const attestation_report = {
    version: r.version,
    guest_svn: r.guestSvn,
    policy: exactU64(r.policy, 'policy'),
    family_id: bytesJson(r.familyId),
    image_id: bytesJson(r.imageId),
    vmpl: r.vmpl,
    sig_algo: r.signatureAlgo,
    current_tcb: tcbJson(r.currentTcb, product),
    plat_info: exactU64(r.platformInfo, 'plat_info'),
    key_info: r.signerInfo,
    report_data: bytesJson(r.reportData),
    measurement: bytesJson(r.measurement),
    host_data: bytesJson(r.hostData),
    id_key_digest: bytesJson(r.idKeyDigest),
    author_key_digest: bytesJson(r.authorKeyDigest),
    report_id: bytesJson(r.reportId),
    report_id_ma: bytesJson(r.reportIdMa),
    reported_tcb: tcbJson(r.reportedTcb, product),
    cpuid_fam_id: r.cpuid?.family ?? null,
    cpuid_mod_id: r.cpuid?.model ?? null,
    cpuid_step: r.cpuid?.stepping ?? null,
    chip_id: bytesJson(r.chipId),
    committed_tcb: tcbJson(r.committedTcb, product),
    current: { major: r.currentMajor, minor: r.currentMinor, build: r.currentBuild },
    committed: { major: r.committedMajor, minor: r.committedMinor, build: r.committedBuild },
    launch_tcb: tcbJson(r.launchTcb, product),
    launch_mit_vector: v5 ? exactU64(r.launchMitVector ?? 0n, 'launch_mit_vector') : null,
    current_mit_vector: v5 ? exactU64(r.currentMitVector ?? 0n, 'current_mit_vector') : null,
    signature: { r: bytesJson(r.signature.r), s: bytesJson(r.signature.s) },
  };
  const cert_chain =
    certTable === undefined
      ? null
      : parseCertTable(certTable).map(
          (e): SevCertEntryJson => ({
            cert_type: GUID_NAMES.get(e.guid) ?? { OTHER: e.guid },
            data: bytesJson(e.data),
          }),
        );
  const out: SevSnpEvidenceJson = {
    attestation_report,
    cert_chain: cert_chain !== null && cert_chain.length > 0 ? cert_chain : null,
  };
  // Step: the verifier sees only the fields. Rebuild the bytes as it will and demand the input back, so a
  // report the struct cannot carry (a reserved TCB byte set) fails here, not as a bad signature there.
  const back = decodeSevSnpEvidence(out);
  if (!bytesEqual(back.report, report)) {
    fail('unrepresentable', 'report', 'bytes the struct form does not carry are set (a reserved TCB byte)');
  }
  return out;
}

/**
 * {@link encodeSevSnpEvidence} as a file: serde_json's compact text and a newline, exactly as the shared
 * fixtures (../shared/vectors/kbs/trustee-snp-evidence) are written. {@link parseSevSnpEvidenceJson} reads it.
 */
export function formatSevSnpEvidenceJson(report: Uint8Array, certTable?: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(encodeSevSnpEvidence(report, certTable))}\n`);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
