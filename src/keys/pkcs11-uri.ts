import { InvalidArgument } from '../errors.js';

/**
 * A PKCS#11 URI (RFC 7512): which token, which object, which module, where the PIN is. Only the attributes
 * Vouchsafe uses are accepted; anything else is refused rather than ignored, so a typo never selects another
 * object. The PIN is never part of the URI: `pin-value` (RFC 7512 §2.3) is refused — a URI ends up on command
 * lines, in process listings and in logs — and `pin-source` names a file (0600, owned by this user).
 */
export interface Pkcs11Uri {
  /** CK_TOKEN_INFO label (`token=`). */
  readonly token?: string;
  readonly manufacturer?: string;
  readonly serial?: string;
  readonly model?: string;
  /** CKA_LABEL (`object=`). */
  readonly object?: string;
  /** CKA_ID (`id=`, percent-encoded bytes). */
  readonly id?: Uint8Array;
  /** `type=`: the object class wanted; Vouchsafe derives it from the use, so it must agree when given. */
  readonly type?: 'private' | 'public' | 'secret-key';
  readonly slotId?: number;
  /** `module-path=`: the PKCS#11 library to load. */
  readonly modulePath?: string;
  /** `pin-source=`: a file holding the user PIN (`file:` URI or a path). */
  readonly pinSource?: string;
}

const PATH_ATTRS = new Set(['token', 'manufacturer', 'serial', 'model', 'object', 'id', 'type', 'slot-id']);
const QUERY_ATTRS = new Set(['module-path', 'pin-source']);
const MAX_URI = 4096;

const bad = (why: string) => new InvalidArgument('keys.pkcs11.uri', `not a usable pkcs11: URI: ${why}`);

/** RFC 3986 §2.1 percent-decoding of one value, to bytes (the `id` attribute is binary). */
function pctBytes(v: string, name: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x25) {
      const hex = v.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw bad(`${name} has a bad percent escape`);
      out.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (c > 0x20 && c < 0x7f) {
      out.push(c);
    } else {
      throw bad(`${name} holds a character that must be percent-encoded`);
    }
  }
  return Uint8Array.from(out);
}

function pctText(v: string, name: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(pctBytes(v, name));
  } catch (e) {
    if (e instanceof InvalidArgument) throw e;
    throw bad(`${name} is not UTF-8`);
  }
}

/** Splits `a=b` pairs; each attribute at most once (RFC 7512 §2.3). */
function pairs(part: string, sep: string, allowed: Set<string>, where: string): Map<string, string> {
  const out = new Map<string, string>();
  if (part === '') return out;
  for (const item of part.split(sep)) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0) throw bad(`${where} attribute ${JSON.stringify(name.slice(0, 32))} has no value`);
    if (name === 'pin-value')
      throw bad('pin-value is refused: give the PIN in a pin-source file or VOUCHSAFE_PKCS11_PIN');
    if (!allowed.has(name)) throw bad(`unknown ${where} attribute ${JSON.stringify(name.slice(0, 32))}`);
    if (out.has(name)) throw bad(`${name} appears twice`);
    out.set(name, item.slice(eq + 1));
  }
  return out;
}

/** Parses a `pkcs11:` URI. Throws InvalidArgument `keys.pkcs11.uri`. */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (typeof text !== 'string' || text.length > MAX_URI)
    throw bad('must be a string of at most 4096 characters');
  if (!text.startsWith('pkcs11:')) throw bad('must start with pkcs11:');
  const rest = text.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = pairs(q < 0 ? rest : rest.slice(0, q), ';', PATH_ATTRS, 'path');
  const query = pairs(q < 0 ? '' : rest.slice(q + 1), '&', QUERY_ATTRS, 'query');
  const text_ = (m: Map<string, string>, k: string) => {
    const v = m.get(k);
    return v === undefined ? undefined : pctText(v, k);
  };
  const type = text_(path, 'type');
  if (type !== undefined && type !== 'private' && type !== 'public' && type !== 'secret-key') {
    throw bad('type must be private, public or secret-key');
  }
  const slot = text_(path, 'slot-id');
  if (slot !== undefined && !/^[0-9]{1,10}$/.test(slot)) throw bad('slot-id must be a decimal number');
  const id = path.get('id');
  const pinSource = text_(query, 'pin-source');
  const uri: Pkcs11Uri = {
    ...opt('token', text_(path, 'token')),
    ...opt('manufacturer', text_(path, 'manufacturer')),
    ...opt('serial', text_(path, 'serial')),
    ...opt('model', text_(path, 'model')),
    ...opt('object', text_(path, 'object')),
    ...(id === undefined ? {} : { id: pctBytes(id, 'id') }),
    ...(type === undefined ? {} : { type: type as Pkcs11Uri['type'] & string }),
    ...(slot === undefined ? {} : { slotId: Number(slot) }),
    ...opt('modulePath', text_(query, 'module-path')),
    ...(pinSource === undefined
      ? {}
      : { pinSource: pinSource.startsWith('file:') ? pinSource.replace(/^file:(\/\/)?/, '') : pinSource }),
  };
  if (uri.object === undefined && uri.id === undefined)
    throw bad('name the key with object= (its label) or id=');
  return uri;
}

function opt<K extends string>(k: K, v: string | undefined): { [P in K]?: string } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: string };
}

/** Percent-encodes everything but RFC 3986 unreserved characters. */
function pct(v: Uint8Array | string): string {
  const bytes = typeof v === 'string' ? new TextEncoder().encode(v) : v;
  let s = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9._~-]/.test(c) ? c : `%${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

/** A URI for `uri` (what parsePkcs11Uri reads back), e.g. to record a key the broker generated. */
export function formatPkcs11Uri(uri: Pkcs11Uri): string {
  const path: string[] = [];
  if (uri.token !== undefined) path.push(`token=${pct(uri.token)}`);
  if (uri.manufacturer !== undefined) path.push(`manufacturer=${pct(uri.manufacturer)}`);
  if (uri.serial !== undefined) path.push(`serial=${pct(uri.serial)}`);
  if (uri.model !== undefined) path.push(`model=${pct(uri.model)}`);
  if (uri.slotId !== undefined) path.push(`slot-id=${uri.slotId}`);
  if (uri.object !== undefined) path.push(`object=${pct(uri.object)}`);
  if (uri.id !== undefined) path.push(`id=${pct(uri.id)}`);
  if (uri.type !== undefined) path.push(`type=${uri.type}`);
  const query: string[] = [];
  if (uri.modulePath !== undefined) query.push(`module-path=${pct(uri.modulePath)}`);
  if (uri.pinSource !== undefined) query.push(`pin-source=${pct(uri.pinSource)}`);
  return `pkcs11:${path.join(';')}${query.length ? `?${query.join('&')}` : ''}`;
}

/** The URI of the key alone (token and object), without the module and PIN source: a non-secret, stable id. */
export function keyIdOf(uri: Pkcs11Uri): string {
  const { modulePath: _m, pinSource: _p, ...key } = uri;
  return formatPkcs11Uri(key);
}
