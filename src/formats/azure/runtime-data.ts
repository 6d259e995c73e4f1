import { MalformedEvidence, NotSupported } from '../../errors.js';
import { fromHex } from '../../util/bytes.js';
import { isObject } from '../../util/json-object.js';

/**
 * The HCL runtime data ("variable data"): UTF-8 JSON the paravisor writes after the hardware report and
 * whose SHA-256 is REPORT_DATA[0..32). As Azure writes it (Trustee's real sample, reformatted):
 *   {"keys": [{"kid": "HCLAkPub", "key_ops": ["sign"], "kty": "RSA", "e": "AQAB", "n": "<b64url>"},
 *             {"kid": "HCLEkPub", "key_ops": ["encrypt"], ...}],
 *    "vm-configuration": {"console-enabled": true, "secure-boot": true, "tpm-enabled": true,
 *                         "vmUniqueId": "911B0EF8-…"},
 *    "user-data": "<128 hex digits: the 64 bytes the guest wrote to NV index 0x01400002>"}
 * Only what the verifier needs is typed; the rest is kept as JSON for claims.
 */

/** The vTPM attestation key as the runtime data carries it (an RSA JWK, RFC 7517/7518 §6.3.1). */
export interface HclAkPub {
  readonly kty: 'RSA';
  /** Modulus and exponent, base64url without padding. */
  readonly n: string;
  readonly e: string;
}

export interface HclRuntimeData {
  /** The JWK with kid `HCLAkPub`: the key the vTPM signs quotes with. */
  readonly akPub: HclAkPub;
  /** `vm-configuration` as JSON, or null when absent. */
  readonly vmConfiguration: { readonly [k: string]: unknown } | null;
  /** `user-data` decoded (64 bytes on Azure), or null when absent. */
  readonly userData: Uint8Array | null;
}

/** Runtime data is about 1.1 KiB on Azure; far more is refused before parsing. */
export const MAX_RUNTIME_DATA_BYTES = 8 * 1024;
const AK_KID = 'HCLAkPub';
const B64URL = /^[A-Za-z0-9_-]+$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;
/** RSA moduli of 2048 to 8192 bits, base64url (no padding). */
const MIN_N_CHARS = Math.ceil((2048 / 8) * (4 / 3));
const MAX_N_CHARS = Math.ceil((8192 / 8) * (4 / 3)) + 2;

const bad = (why: string): never => {
  throw new MalformedEvidence('azure.runtime_data.shape', `HCL runtime data: ${why}`);
};

/**
 * Parses the HCL runtime data. Exactly one key must have kid `HCLAkPub` (two would leave it ambiguous which
 * one signs). Throws MalformedEvidence `azure.runtime_data.size`, `.json`, `.shape`, `.ak_missing`,
 * `.ak_duplicate`, `.user_data`; NotSupported `azure.runtime_data.ak_kty` (an AK that is not RSA).
 */
export function parseHclRuntimeData(bytes: Uint8Array): HclRuntimeData {
  if (bytes.length > MAX_RUNTIME_DATA_BYTES) {
    throw new MalformedEvidence('azure.runtime_data.size', `runtime data of ${bytes.length} bytes`);
  }
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new MalformedEvidence('azure.runtime_data.json', 'HCL runtime data is not UTF-8 JSON', {
      cause: e,
    });
  }
  if (!isObject(v)) return bad('not a JSON object');
  const keys = v.keys;
  if (!Array.isArray(keys)) return bad('keys must be an array');
  const aks = keys.filter((k) => isObject(k) && k.kid === AK_KID);
  if (aks.length === 0) throw new MalformedEvidence('azure.runtime_data.ak_missing', 'no HCLAkPub key');
  if (aks.length > 1) throw new MalformedEvidence('azure.runtime_data.ak_duplicate', 'two HCLAkPub keys');
  const ak = aks[0] as { [k: string]: unknown };
  if (ak.kty !== 'RSA') throw new NotSupported('azure.runtime_data.ak_kty', 'the HCLAkPub key is not RSA');
  const { n, e } = ak;
  if (typeof n !== 'string' || !B64URL.test(n) || n.length < MIN_N_CHARS || n.length > MAX_N_CHARS) {
    return bad('HCLAkPub n must be a 2048-8192-bit modulus in base64url');
  }
  if (typeof e !== 'string' || !B64URL.test(e) || e.length > 8) return bad('HCLAkPub e must be base64url');
  const config = v['vm-configuration'];
  if (config !== undefined && !isObject(config)) return bad('vm-configuration must be an object');
  const ud = v['user-data'];
  let userData: Uint8Array | null = null;
  if (ud !== undefined) {
    const decoded = typeof ud === 'string' && ud.length <= 256 && HEX.test(ud) ? fromHex(ud) : undefined;
    if (decoded === undefined) {
      throw new MalformedEvidence('azure.runtime_data.user_data', 'user-data must be at most 128 hex bytes');
    }
    userData = decoded;
  }
  return {
    akPub: { kty: 'RSA', n, e },
    vmConfiguration: config === undefined ? null : (config as { [k: string]: unknown }),
    userData,
  };
}
