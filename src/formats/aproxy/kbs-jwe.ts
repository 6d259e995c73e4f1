import { MalformedEvidence, NotSupported } from '../../errors.js';
import { decodeBase64Url } from '../../util/base64.js';
import { isObject } from '../../util/json-object.js';
import { type AesGcmData, GCM_IV_SIZE, GCM_TAG_SIZE, P521_COORD_SIZE, WRAPPED_CEK_SIZE } from './types.js';

/** A KBS resource response (flattened JWE) as libaproxy's decryption fields: shared by the proxy's KBS
 * backend and the guest library's PR #1203 dialect, which opens the JWE itself. */

/** A JWE member: canonical base64url without padding (RFC 7516 §7.2.1), of `size` bytes when given. */
function b64url(v: unknown, field: string, size?: number): Uint8Array {
  const b = decodeBase64Url(v, 'proxy_kbs.jwe', field);
  if (size !== undefined && b.length !== size) {
    throw new MalformedEvidence('proxy_kbs.jwe', `${field}: expected ${size} bytes, got ${b.length}`);
  }
  return b;
}

/**
 * Maps a KBS resource response (flattened JWE, kbs_types `Response`) to the aproxy fields the SVSM decrypts
 * with (libaproxy `AesGcmData` + `secret`), as aproxy's `unwrap_epk` + `generate_aad` do. Only what the
 * SVSM can open is accepted: `alg` ECDH-ES+A256KW, `enc` A256GCM, a P-521 `epk`, no JWE `aad` member.
 * The AAD is the `protected` member as received (RFC 7516 §5.1 step 14); aproxy re-serializes the parsed
 * header instead, which gives the same bytes for a header in kbs_types order (Trustee's and ours) and
 * breaks for any other order. Throws MalformedEvidence `proxy_kbs.jwe`, NotSupported `proxy_kbs.jwe_alg`.
 */
export function jweToAesGcm(resp: unknown): { decryption: AesGcmData; ciphertext: Uint8Array } {
  if (!isObject(resp)) throw new MalformedEvidence('proxy_kbs.jwe', 'resource response is not a JSON object');
  if (resp.aad !== undefined && resp.aad !== null) {
    throw new NotSupported('proxy_kbs.jwe_alg', 'a JWE with an aad member cannot be opened by the SVSM');
  }
  const prot = resp.protected;
  if (typeof prot !== 'string' || prot.length === 0) {
    throw new MalformedEvidence('proxy_kbs.jwe', 'protected: not base64url');
  }
  const headerJson = Buffer.from(b64url(prot, 'protected')).toString('utf8');
  let header: unknown;
  try {
    header = JSON.parse(headerJson);
  } catch (cause) {
    throw new MalformedEvidence('proxy_kbs.jwe', 'protected header is not JSON', { cause });
  }
  if (!isObject(header) || header.alg !== 'ECDH-ES+A256KW' || header.enc !== 'A256GCM') {
    throw new NotSupported('proxy_kbs.jwe_alg', 'the SVSM opens only ECDH-ES+A256KW with A256GCM');
  }
  const epk = header.epk;
  if (!isObject(epk) || epk.kty !== 'EC' || epk.crv !== 'P-521') {
    throw new NotSupported('proxy_kbs.jwe_alg', 'the SVSM opens only a P-521 epk');
  }
  return {
    decryption: {
      epk: { x: b64url(epk.x, 'epk.x', P521_COORD_SIZE), y: b64url(epk.y, 'epk.y', P521_COORD_SIZE) },
      wrappedCek: b64url(resp.encrypted_key, 'encrypted_key', WRAPPED_CEK_SIZE),
      aad: new Uint8Array(Buffer.from(prot, 'ascii')),
      iv: b64url(resp.iv, 'iv', GCM_IV_SIZE),
      tag: b64url(resp.tag, 'tag', GCM_TAG_SIZE),
    },
    ciphertext: b64url(resp.ciphertext, 'ciphertext'),
  };
}
