import { createRequire } from 'node:module';
import type * as P11 from 'pkcs11js';
import { InvalidArgument, Unavailable } from '../errors.js';
import { openSecretFile } from '../util/secret-file.js';
import type { Pkcs11Uri } from './pkcs11-uri.js';

/**
 * Loading a PKCS#11 module and holding one logged-in session per token, through the pkcs11js binding (an
 * optional dependency: a deployment with file keys needs no compiler). The binding's calls are synchronous,
 * so one C_*Init + C_* pair runs with nothing else on the session in between.
 *
 * Errors, each with a stable reason (all InvalidArgument: configuration the operator must fix, except a
 * token that stops answering, which is Unavailable `keys.pkcs11.device`):
 *   keys.pkcs11.binding       pkcs11js is not installed (npm install pkcs11js)
 *   keys.pkcs11.module        no module-path (nor VOUCHSAFE_PKCS11_MODULE), or the library does not load
 *   keys.pkcs11.token_missing no token matches the URI's token/serial/manufacturer/model/slot-id
 *   keys.pkcs11.pin_missing   no pin-source and no VOUCHSAFE_PKCS11_PIN
 *   keys.pkcs11.pin_incorrect the token refused the PIN (CKR_PIN_INCORRECT, CKR_PIN_LEN_RANGE)
 *   keys.pkcs11.pin_locked    CKR_PIN_LOCKED
 *   keys.pkcs11.object_missing / .object_ambiguous   no / several objects match
 * The PIN is never put in an error, a log line or an exception's cause.
 */

export type Pkcs11Lib = typeof P11;

export const PIN_ENV = 'VOUCHSAFE_PKCS11_PIN';
export const MODULE_ENV = 'VOUCHSAFE_PKCS11_MODULE';

let binding: Pkcs11Lib | undefined;

/** The pkcs11js binding, loaded on first use. */
export function pkcs11Binding(): Pkcs11Lib {
  if (!binding) {
    try {
      binding = createRequire(import.meta.url)('pkcs11js') as Pkcs11Lib;
    } catch {
      throw new InvalidArgument(
        'keys.pkcs11.binding',
        'PKCS#11 keys need the pkcs11js package (npm install pkcs11js; it builds with node-gyp: g++, make, python3)',
      );
    }
  }
  return binding;
}

/** The CKR_ name of a binding error, or undefined for anything else. */
export function ckrOf(e: unknown): string | undefined {
  const m = e instanceof Error ? /CKR_[A-Z0-9_]+/.exec(e.message) : null;
  return m?.[0];
}

/** A token's session, shared by every key of this process on that token. */
export interface TokenSession {
  readonly lib: Pkcs11Lib;
  readonly p11: P11.PKCS11;
  readonly session: P11.Handle;
  /** The token's label, as CK_TOKEN_INFO has it (blank padding removed). */
  readonly label: string;
}

interface LoadedModule {
  readonly p11: P11.PKCS11;
  readonly sessions: Map<string, TokenSession>;
}

const modules = new Map<string, LoadedModule>();

function loadModule(path: string): LoadedModule {
  const have = modules.get(path);
  if (have) return have;
  const lib = pkcs11Binding();
  const p11 = new lib.PKCS11();
  try {
    p11.load(path);
  } catch {
    throw new InvalidArgument('keys.pkcs11.module', `the PKCS#11 module ${path} does not load`);
  }
  try {
    p11.C_Initialize();
  } catch (e) {
    if (ckrOf(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      throw new InvalidArgument(
        'keys.pkcs11.module',
        `the PKCS#11 module ${path} does not initialise (${ckrOf(e) ?? 'error'})`,
      );
    }
  }
  const m = { p11, sessions: new Map<string, TokenSession>() };
  modules.set(path, m);
  return m;
}

const trimmed = (s: string) => s.replace(/[\s\0]+$/, '');

function readPin(uri: Pkcs11Uri): string {
  if (uri.pinSource !== undefined) {
    const raw = openSecretFile(uri.pinSource, 'keys.pkcs11.pin_file', undefined, 1024);
    try {
      // One line: a trailing newline (echo 1234 > pin) is not part of the PIN.
      return raw.toString('utf8').replace(/\r?\n$/, '');
    } finally {
      raw.fill(0);
    }
  }
  const env = process.env[PIN_ENV];
  if (env !== undefined && env !== '') return env;
  throw new InvalidArgument(
    'keys.pkcs11.pin_missing',
    `no PIN for the PKCS#11 token: give pin-source=FILE in the URI or set ${PIN_ENV}`,
  );
}

/**
 * The logged-in session for the token `uri` names (opened and logged in on first use). Throws InvalidArgument
 * `keys.pkcs11.*` (see above).
 */
export function tokenSession(uri: Pkcs11Uri): TokenSession {
  const modulePath = uri.modulePath ?? process.env[MODULE_ENV];
  if (!modulePath) {
    throw new InvalidArgument(
      'keys.pkcs11.module',
      `give module-path= in the pkcs11: URI or set ${MODULE_ENV}`,
    );
  }
  const m = loadModule(modulePath);
  const lib = pkcs11Binding();
  const slots = m.p11.C_GetSlotList(true).filter((slot) => {
    const info = m.p11.C_GetTokenInfo(slot);
    return (
      (uri.token === undefined || trimmed(info.label) === uri.token) &&
      (uri.serial === undefined || trimmed(info.serialNumber) === uri.serial) &&
      (uri.manufacturer === undefined || trimmed(info.manufacturerID) === uri.manufacturer) &&
      (uri.model === undefined || trimmed(info.model) === uri.model) &&
      (uri.slotId === undefined || slotNumber(slot) === uri.slotId)
    );
  });
  if (slots.length !== 1) {
    throw new InvalidArgument(
      'keys.pkcs11.token_missing',
      slots.length === 0
        ? `no PKCS#11 token matches ${JSON.stringify(uri.token ?? '(any)')} in ${modulePath}`
        : 'several PKCS#11 tokens match: name one with token=, serial= or slot-id=',
    );
  }
  const slot = slots[0]!;
  const key = slot.toString('hex');
  const have = m.sessions.get(key);
  if (have) return have;
  const label = trimmed(m.p11.C_GetTokenInfo(slot).label);
  const session = m.p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
  const pin = readPin(uri);
  try {
    m.p11.C_Login(session, lib.CKU_USER, pin);
  } catch (e) {
    const ckr = ckrOf(e);
    if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') {
      m.p11.C_CloseSession(session);
      if (ckr === 'CKR_PIN_INCORRECT' || ckr === 'CKR_PIN_LEN_RANGE') {
        throw new InvalidArgument(
          'keys.pkcs11.pin_incorrect',
          `the PKCS#11 token ${JSON.stringify(label)} refused the PIN`,
        );
      }
      if (ckr === 'CKR_PIN_LOCKED') {
        throw new InvalidArgument(
          'keys.pkcs11.pin_locked',
          `the PIN of PKCS#11 token ${JSON.stringify(label)} is locked`,
        );
      }
      throw new Unavailable(
        'keys.pkcs11.device',
        `login to PKCS#11 token ${JSON.stringify(label)} failed (${ckr ?? 'error'})`,
      );
    }
  }
  const s: TokenSession = { lib, p11: m.p11, session, label };
  m.sessions.set(key, s);
  return s;
}

/** CK_SLOT_ID as a number (the binding hands slot ids over as little-endian buffers). */
function slotNumber(slot: Buffer): number {
  return slot.length >= 4
    ? slot.readUInt32LE(0) + (slot.length >= 8 ? slot.readUInt32LE(4) * 2 ** 32 : 0)
    : (slot[0] ?? 0);
}

/** The one object of `cls` that `uri` names (by CKA_LABEL and/or CKA_ID). Throws `keys.pkcs11.object_*`. */
export function findObject(s: TokenSession, uri: Pkcs11Uri, cls: number): P11.Handle {
  const template: P11.Template = [{ type: s.lib.CKA_CLASS, value: cls }];
  if (uri.object !== undefined) template.push({ type: s.lib.CKA_LABEL, value: uri.object });
  if (uri.id !== undefined) template.push({ type: s.lib.CKA_ID, value: Buffer.from(uri.id) });
  s.p11.C_FindObjectsInit(s.session, template);
  let found: P11.Handle[];
  try {
    found = s.p11.C_FindObjects(s.session, 2);
  } finally {
    s.p11.C_FindObjectsFinal(s.session);
  }
  const what = `${uri.object !== undefined ? `object=${JSON.stringify(uri.object)}` : 'the id given'} on token ${JSON.stringify(s.label)}`;
  if (found.length === 0)
    throw new InvalidArgument('keys.pkcs11.object_missing', `no such PKCS#11 key: ${what}`);
  if (found.length > 1)
    throw new InvalidArgument('keys.pkcs11.object_ambiguous', `several PKCS#11 keys match ${what}`);
  return found[0]!;
}

/**
 * A call on the token; a binding failure becomes Unavailable `keys.pkcs11.device` with the CKR_ name (never
 * the data), unless `map` turns it into something more specific.
 */
export function onToken<T>(
  what: string,
  f: () => T,
  map?: (ckr: string | undefined) => Error | undefined,
): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InvalidArgument || e instanceof Unavailable) throw e;
    const ckr = ckrOf(e);
    throw map?.(ckr) ?? new Unavailable('keys.pkcs11.device', `PKCS#11 ${what} failed (${ckr ?? 'error'})`);
  }
}

/** Logs out, closes every session and finalises every module (shutdown; tests). */
export function closePkcs11(): void {
  for (const [path, m] of modules) {
    for (const s of m.sessions.values()) {
      try {
        m.p11.C_CloseSession(s.session);
      } catch {
        // already closed
      }
    }
    try {
      m.p11.C_Finalize();
    } catch {
      // not initialised
    }
    try {
      m.p11.close();
    } catch {
      // not loaded
    }
    modules.delete(path);
  }
}
