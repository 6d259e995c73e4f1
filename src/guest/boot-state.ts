import { createHash, randomBytes } from 'node:crypto';
import { MalformedEvidence } from '../errors.js';
import { parseSecretPayload, type SecretPayload } from '../formats/aproxy/secret-payload.js';
import type { ProtocolVersion } from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import { unwrapSecret } from '../native/jwe-ecdh-es.js';
import type { ReleasedSecret, StatedState } from './boot-exchange.js';
import {
  deriveStateKey,
  instanceBindingOf,
  parseStateHeader,
  type StateHeader,
  sealState,
  unsealState,
} from './state-file.js';

/**
 * The state-file phases of one main-dialect boot (docs/broker.md "Guest obligations"): what to state, which
 * key opens the state, and the next version sealed under the current key. bootGuest (boot.ts) runs them.
 */

/** SHA-256 of a sealed state file as stored: what 0.2.0 states and commits with the counter. */
export function stateDigestOf(sealed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(sealed).digest());
}

/**
 * What the broker commits for a state version (docs/pvchannel.md §7.3 "Binding to the broker"): the state
 * file's SHA-256 alone, or, for a guest that keeps sealed UEFI variables on the host, SHA-256 over a domain
 * tag, that digest and the variable store's root (SHA-256 of its sealed index). The broker treats the digest
 * as opaque, so the one commitment, one counter and one rollback rule cover both: an older variable store
 * with the current state file is a fork (`broker.rollback`) exactly as an older state file is.
 */
export function commitmentDigest(
  stateFileDigest: Uint8Array,
  uefiRoot: Uint8Array | null | undefined,
): Uint8Array {
  if (uefiRoot === null || uefiRoot === undefined) return stateFileDigest;
  return new Uint8Array(
    createHash('sha256').update('VOUCHSAFE-STATE+UEFI/1\0').update(stateFileDigest).update(uefiRoot).digest(),
  );
}

/** The sealed state a boot opens, and its (not yet authenticated) header. */
export interface OpenedFile {
  /** The sealed state this boot states and unseals; undefined on first boot. */
  readonly file: Uint8Array | undefined;
  readonly header: StateHeader | undefined;
  readonly stated: StatedState;
}

/**
 * Phase 0: reads the header of the state to state. Its counter is what this boot states, and its key version
 * which older key to ask for (unauthenticated until unsealed, which authenticates both). With `uefiRoot` the
 * stated digest is the commitment over the file and the variable store (commitmentDigest).
 */
export function statedStateOf(file: Uint8Array | undefined, uefiRoot?: Uint8Array | null): OpenedFile {
  const header = file ? parseStateHeader(file) : undefined;
  return {
    file,
    header,
    stated: {
      counter: header ? header.counter : null,
      keyVersion: header && header.keyVersion > 0 ? header.keyVersion : null,
      digest: file ? commitmentDigest(stateDigestOf(file), uefiRoot) : null,
    },
  };
}

/**
 * Secret buffers a boot holds; whoever creates the holder zeroes them when the boot ends, also when a phase
 * throws half-way (so each phase stores a buffer here as soon as it exists).
 */
export interface BootSecrets {
  plaintext?: Uint8Array;
  stateKey?: Buffer;
  openKey?: Buffer;
}

/** The keys a boot seals and opens state with. */
export interface StateKeys {
  /** 0.2.0: the parsed secret payload (boot id, commit token, key versions); undefined for 0.1.0. */
  readonly payload: SecretPayload | undefined;
  /** Seals the next version (also held in `secrets.stateKey`). */
  readonly stateKey: Buffer;
  /** Opens the current state after a rotation (also held in `secrets.openKey`). */
  readonly openKey: Buffer | undefined;
  /** The current key's version from the broker; null when it sent none. */
  readonly keyVersion: number | null;
  /** The older key version the state is opened with after a rotation; null otherwise. */
  readonly previousKeyVersion: number | null;
}

/**
 * Phase 4: unwraps the secret, parses the 0.2.0 payload and picks the key that opens the current state.
 * Throws SignatureInvalid `jwe.*`, MalformedEvidence `aproxy.secret_payload*`, `guest.state_key_version`
 * (the older key sent is not the one the state names) and `guest.state_key_missing` (the state names an
 * older key and the reply does not carry it).
 */
export function unwrapStateKeys(
  released: ReleasedSecret,
  version: ProtocolVersion,
  opened: OpenedFile,
  secrets: BootSecrets,
): StateKeys {
  const { header } = opened;
  const statedKeyVersion = opened.stated.keyVersion;
  secrets.plaintext = unwrapSecret(released.keys.privateKey, {
    decryption: released.decryption,
    ciphertext: released.ciphertext,
  });
  const payload = version === '0.2.0' ? parseSecretPayload(secrets.plaintext) : undefined;
  const stateKey = deriveStateKey(payload ? payload.secret : secrets.plaintext);
  secrets.stateKey = stateKey;
  const keyVersion = payload?.keyVersion ?? null;

  // Which key opens the current state: after a rotation, the older one the broker sent along.
  let previousKeyVersion: number | null = null;
  let openKey: Buffer | undefined;
  if (header && payload?.stateKey) {
    if (payload.stateKey.keyVersion !== header.keyVersion) {
      throw new MalformedEvidence(
        'guest.state_key_version',
        `the broker sent key version ${payload.stateKey.keyVersion} for state sealed under ${header.keyVersion}`,
      );
    }
    openKey = deriveStateKey(payload.stateKey.key);
    secrets.openKey = openKey;
    previousKeyVersion = payload.stateKey.keyVersion;
  } else if (header && keyVersion !== null && statedKeyVersion !== null && statedKeyVersion !== keyVersion) {
    // The state names an older key and the reply does not carry it: do not try (and fail) the new one.
    throw new MalformedEvidence(
      'guest.state_key_missing',
      `state sealed under key version ${statedKeyVersion}; the reply carries only ${keyVersion}`,
    );
  }
  return { payload, stateKey, openKey, keyVersion, previousKeyVersion };
}

/** The next state version, sealed and ready to write. */
export interface NextState {
  /** The decrypted (or, on first boot, new) state body. */
  readonly body: Uint8Array;
  readonly counter: bigint;
  /** The key version it is sealed under (0: unknown). */
  readonly sealedVersion: number;
  readonly sealed: Uint8Array;
}

/**
 * Phase 5: unseals the current state (or creates a body on first boot) and seals the next version, counter
 * + 1 (+ 2 after a `broker.state_ahead` recovery), under the current key. With an identity the state must be
 * bound to it (BindingMismatch `state.instance_binding`); SignatureInvalid `state.auth` when the key does not
 * open it.
 */
export function sealNextState(
  opened: OpenedFile,
  keys: StateKeys,
  identity: PlatformIdentity | null,
  initialState: Uint8Array | undefined,
  skipCounter: boolean,
): NextState {
  const binding = instanceBindingOf(identity);
  let body: Uint8Array;
  let keepBinding = binding;
  if (opened.file) {
    const unsealed = unsealState(opened.file, keys.openKey ?? keys.stateKey, identity ? binding : undefined);
    body = unsealed.body;
    if (!identity) keepBinding = unsealed.header.instanceBinding;
  } else {
    body = initialState ?? new Uint8Array(randomBytes(32));
  }
  const counter = (opened.stated.counter ?? 0n) + (skipCounter ? 2n : 1n);
  // Without a version from the broker, a state opened with the current key keeps its recorded version.
  const sealedVersion = keys.keyVersion ?? (opened.header && !keys.openKey ? opened.header.keyVersion : 0);
  const sealed = sealState({
    key: keys.stateKey,
    counter,
    instanceBinding: keepBinding,
    body,
    keyVersion: sealedVersion,
  });
  return { body, counter, sealedVersion, sealed };
}
