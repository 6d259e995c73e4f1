import { InvalidArgument, MalformedEvidence, NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';
import { TPM2B_MAX } from '../tpm/marshal.js';
import { encodePublic, type ParsedPublic, parsePublic, type TpmtPublic } from '../tpm/public.js';

/**
 * The vTPM service's entry in the SVSM services manifest (service GUID c476f1eb-0123-45a5-9641-b4e7dde5bfe3,
 * AMD 58019 §8.3.1).
 *
 * **Version 0** (what COCONUT-SVSM builds today, `kernel/src/vtpm/mod.rs` `vtpm_get_manifest`): the bare
 * TPMT_PUBLIC of the vTPM's endorsement key (no TPM2B size prefix; 314 bytes for the default RSA-2048 EK).
 *
 * **Version 1** (defined by Vouchsafe, docs/ca.md "vTPM manifest v1"; not implemented by COCONUT yet) adds
 * the attestation key, so that one SNP report binds both keys to the TEE:
 * ```
 * 0x00  u32 LE      version = 1
 * 0x04  TPM2B_PUBLIC ek   (u16 BE size ‖ TPMT_PUBLIC, as TPM2_ReadPublic returns it)
 *       TPM2B_PUBLIC ak
 *       (nothing after: trailing bytes are an error)
 * ```
 * The two versions cannot be confused: a TPMT_PUBLIC starts with its u16 BE type (0x0001 RSA, 0x0023 ECC),
 * so its first byte is 0x00, while a v1 payload starts with 0x01 (u32 LE 1). {@link parseVtpmManifest}
 * reads the version from that first byte; callers that asked the SVSM for a specific manifest version pass
 * `expected` and get NotSupported/MalformedEvidence when the payload is another version.
 */

export const VTPM_SERVICE_GUID = 'c476f1eb-0123-45a5-9641-b4e7dde5bfe3';

export type VtpmManifest =
  | { readonly version: 0; readonly ek: ParsedPublic }
  | { readonly version: 1; readonly ek: ParsedPublic; readonly ak: ParsedPublic };

const R = 'svsm.vtpm';

function readTpm2bPublic(r: Reader, field: string): ParsedPublic {
  const size = r.u16be();
  if (size === 0 || size > TPM2B_MAX.public) {
    throw new MalformedEvidence(`${R}.${field}`, `${field} TPM2B_PUBLIC size ${size} is out of range`);
  }
  return parsePublic(r.bytes(size));
}

/**
 * Parses a vTPM service payload (v0 or v1). Throws MalformedEvidence `svsm.vtpm.truncated`,
 * `.trailing_bytes`, `.ek`/`.ak` (bad TPM2B size), `.version` (version differs from `expected`) and the
 * TPMT_PUBLIC errors (`tpm.public.*`); NotSupported `svsm.vtpm.version` for an unknown version.
 */
export function parseVtpmManifest(payload: Uint8Array, expected?: 0 | 1): VtpmManifest {
  if (payload.length === 0) throw new MalformedEvidence(`${R}.truncated`, 'vTPM manifest is empty');
  const version = payload[0] === 0x00 ? 0 : undefined;
  let out: VtpmManifest;
  if (version === 0) {
    out = { version: 0, ek: parsePublic(payload) };
  } else {
    const r = new Reader(payload, R);
    const v = r.u32le();
    if (v !== 1)
      throw new NotSupported(`${R}.version`, `vTPM manifest version ${v} is not supported (0 and 1 are)`);
    const ek = readTpm2bPublic(r, 'ek');
    const ak = readTpm2bPublic(r, 'ak');
    r.end();
    out = { version: 1, ek, ak };
  }
  if (expected !== undefined && out.version !== expected) {
    throw new MalformedEvidence(`${R}.version`, `expected a v${expected} vTPM manifest, got v${out.version}`);
  }
  return out;
}

function publicBytes(p: TpmtPublic | ParsedPublic): Uint8Array {
  return 'raw' in p ? p.raw : encodePublic(p);
}

/** Encodes a v0 vTPM payload: the EK's bare TPMT_PUBLIC. */
export function encodeVtpmManifestV0(ek: TpmtPublic | ParsedPublic): Uint8Array {
  return Uint8Array.from(publicBytes(ek));
}

/** Encodes a v1 vTPM payload {version 1, TPM2B_PUBLIC ek, TPM2B_PUBLIC ak}. Throws InvalidArgument `svsm.vtpm.size`. */
export function encodeVtpmManifestV1(
  ek: TpmtPublic | ParsedPublic,
  ak: TpmtPublic | ParsedPublic,
): Uint8Array {
  const e = publicBytes(ek);
  const a = publicBytes(ak);
  if (e.length > TPM2B_MAX.public || a.length > TPM2B_MAX.public) {
    throw new InvalidArgument(`${R}.size`, 'public area too large for a TPM2B_PUBLIC');
  }
  const out = new Uint8Array(4 + 2 + e.length + 2 + a.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 1, true);
  view.setUint16(4, e.length);
  out.set(e, 6);
  view.setUint16(6 + e.length, a.length);
  out.set(a, 8 + e.length);
  return out;
}
