/**
 * An INDEPENDENT writer of Trustee's SEV-SNP evidence struct form, for tests: what the virtee `sev` crate's
 * `AttestationReport::from_bytes` + serde_json produce, written here from the report layout (SEV-SNP ABI
 * 56860 Table 23) and the crate's field names, sharing no code with src/ (src/formats/snp/sev-json.ts is
 * what it checks). The real crate's output (../shared/vectors/kbs/trustee-snp-evidence) is the oracle this
 * writer is itself checked against (test/formats/snp/sev-json.test.ts).
 */

/** The well-known GUIDs of the extended report's certificate table (GHCB 56421) and the sev crate's CRL. */
const CERT_TYPE_BY_GUID: Record<string, string> = {
  '63da758d-e664-4564-adc5-f4b93be8accd': 'VCEK',
  'a8074bc2-a25a-483e-aae6-39c045a0b8a1': 'VLEK',
  '4ab7b379-bbac-4fe4-a02f-05aef327c782': 'ASK',
  'c0b406a4-a803-4952-9743-3fb6014cd0ae': 'ARK',
  '92f81bc3-5811-4d3d-97ff-d19f88dc67ea': 'CRL',
};

/** The sev crate's struct form of one report, keys in the crate's declaration order. */
export function sevStructOf(report: Uint8Array): Record<string, unknown> {
  if (report.length !== 1184) throw new Error(`report is ${report.length} bytes`);
  const dv = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => {
    const v = dv.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`u64 at ${o} is not a safe JSON number`);
    return Number(v);
  };
  const bytes = (o: number, n: number) => Array.from(report.subarray(o, o + n));
  const version = u32(0);
  const hasCpuid = version >= 3;
  let turin: boolean;
  if (hasCpuid) {
    const family = report[0x188]!;
    const model = report[0x189]!;
    if (
      family === 0x19 &&
      (model <= 0x0f || (model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))
    )
      turin = false;
    else if (family === 0x1a && model <= 0x11) turin = true;
    else throw new Error('CPUID names no known generation');
  } else {
    // The crate's v2 rule: a CHIP_ID with only its first 8 bytes set is Turin's; an all-zero one is refused.
    const chip = report.subarray(0x1a0, 0x1e0);
    if (chip.every((b) => b === 0)) throw new Error('masked CHIP_ID: the sev crate refuses it');
    turin = chip.subarray(8).every((b) => b === 0);
  }
  const tcb = (o: number) =>
    turin
      ? {
          fmc: report[o]!,
          bootloader: report[o + 1]!,
          tee: report[o + 2]!,
          snp: report[o + 3]!,
          microcode: report[o + 7]!,
        }
      : {
          fmc: null,
          bootloader: report[o]!,
          tee: report[o + 1]!,
          snp: report[o + 6]!,
          microcode: report[o + 7]!,
        };
  const fw = (o: number) => ({ major: report[o + 2]!, minor: report[o + 1]!, build: report[o]! });
  return {
    version,
    guest_svn: u32(0x04),
    policy: u64(0x08),
    family_id: bytes(0x10, 16),
    image_id: bytes(0x20, 16),
    vmpl: u32(0x30),
    sig_algo: u32(0x34),
    current_tcb: tcb(0x38),
    plat_info: u64(0x40),
    key_info: u32(0x48),
    report_data: bytes(0x50, 64),
    measurement: bytes(0x90, 48),
    host_data: bytes(0xc0, 32),
    id_key_digest: bytes(0xe0, 48),
    author_key_digest: bytes(0x110, 48),
    report_id: bytes(0x140, 32),
    report_id_ma: bytes(0x160, 32),
    reported_tcb: tcb(0x180),
    cpuid_fam_id: hasCpuid ? report[0x188]! : null,
    cpuid_mod_id: hasCpuid ? report[0x189]! : null,
    cpuid_step: hasCpuid ? report[0x18a]! : null,
    chip_id: bytes(0x1a0, 64),
    committed_tcb: tcb(0x1e0),
    current: fw(0x1e8),
    committed: fw(0x1ec),
    launch_tcb: tcb(0x1f0),
    launch_mit_vector: version >= 5 ? u64(0x1f8) : null,
    current_mit_vector: version >= 5 ? u64(0x200) : null,
    signature: { r: bytes(0x2a0, 72), s: bytes(0x2e8, 72) },
  };
}

/** A GHCB certificate table as the sev crate's `Vec<CertTableEntry>` serde form. */
export function sevCertChainOf(table: Uint8Array): { cert_type: unknown; data: number[] }[] {
  const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: { cert_type: unknown; data: number[] }[] = [];
  for (let p = 0; p + 24 <= table.length; p += 24) {
    const h = Buffer.from(table.subarray(p, p + 16)).toString('hex');
    const guid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    const offset = dv.getUint32(p + 16, true);
    const length = dv.getUint32(p + 20, true);
    if (/^[0-]+$/.test(guid) && offset === 0 && length === 0) return out;
    out.push({
      cert_type: CERT_TYPE_BY_GUID[guid] ?? { OTHER: guid },
      data: Array.from(table.subarray(offset, offset + length)),
    });
  }
  throw new Error('certificate table without a terminator');
}

/** Trustee's `SnpEvidence {attestation_report, cert_chain}` for a report and its (optional) table. */
export function sevEvidenceOf(report: Uint8Array, certTable?: Uint8Array): Record<string, unknown> {
  return {
    attestation_report: sevStructOf(report),
    cert_chain: certTable ? sevCertChainOf(certTable) : null,
  };
}
