import { join } from 'node:path';
import { currentActor } from '../broker/actor.js';
import type { Broker } from '../broker/broker.js';
import type { KekSource } from '../broker/kek.js';
import { pkcs11KeyGenerator } from '../keys/provider.js';
import type { EcSigner } from '../keys/signer.js';
import type { Store } from '../store/types.js';
import { type BrokerKbsAdapter, createBrokerKbsAdapter, SEALING_KEY_PATH } from './broker-adapter.js';
import type { KbsDeps } from './deps.js';
import { FileSecretSource } from './file-secrets.js';
import { StoreGrants } from './grants.js';
import type { SecretSource } from './secrets.js';
import { openSharedTokenKeys } from './shared-token-keys.js';
import { StoreSessions } from './store-sessions.js';
import {
  EarTokens,
  type EarTokens as EarTokensType,
  type TokenAlg,
  type TokenKeyRing,
} from './tokens/index.js';

/** COCONUT aproxy's hard-coded resource path (tools/aproxy/src/backend/kbs.rs). */
export const APROXY_RESOURCE_PATH = 'default/sample/test';

/** How startBroker serves the Trustee KBS protocol (docs/kbs.md "Running it"). */
export interface KbsServeOptions {
  /** `iss` of every token (default: the broker's URL as it listens; set it when clients use another). */
  readonly issuer?: string;
  /**
   * A token key file (default `<dataDir>/token-keys.json`, where brokers before migration 7 kept them)
   * imported into the store on the first start that finds none there; not read again after that.
   */
  readonly tokenKeysPath?: string;
  /** Algorithm of the key created on first run (default ES256). */
  readonly tokenAlg?: TokenAlg;
  /**
   * A `pkcs11:` URI (RFC 7512, docs/keys.md): the token keys are generated in that PKCS#11 token, labelled
   * `<object>-<time>-<random>`, at the first start and at every rotation; the ring in the store then records
   * each key by its URI, never the key.
   */
  readonly tokenKeysPkcs11?: string;
  /** Token lifetime, ms (default 300 000, Trustee's). */
  readonly tokenLifetimeMs?: number;
  /**
   * Also serve the caller's sealing key at `default/sample/test`, the only path an unmodified COCONUT
   * aproxy fetches (default false: only at `vouchsafe/sealing-key/current`).
   */
  readonly aproxyResourcePath?: boolean;
  /** Operator secrets from a directory (see FileSecretSource): `<dir>/<repository>/<type>/<tag>`. */
  readonly secretsDir?: string;
  /** The resource-policy file (default `<secretsDir>/resource-policy.json`). */
  readonly resourcePolicyPath?: string;
  /** Another secret source (e.g. a MemorySecretStore); not with `secretsDir`. */
  readonly secrets?: SecretSource;
  /** RCAR session lifetime, ms (default 300 000). */
  readonly sessionTtlMs?: number;
  /** Sessions held at once (default 10 000), all replicas together. */
  readonly maxSessions?: number;
  /** Pending sessions one client address may hold (default 256), all replicas together. */
  readonly maxPendingSessionsPerSource?: number;
  /** How long a released sealing key is held for its token's resource reads, ms (default 300 000). */
  readonly grantTtlMs?: number;
}

/** What a rotation did: the new signing key and every key now published. */
export interface TokenKeyRotation {
  readonly kid: string;
  readonly alg: TokenAlg;
  /** kids in the JWKS, newest first. */
  readonly published: readonly string[];
}

/** The KBS as startBroker built it. */
export interface BrokerKbs {
  /** What the routes take (kbsRoutes). */
  readonly deps: KbsDeps;
  readonly tokens: EarTokensType;
  readonly keys: TokenKeyRing;
  /** The token key file imported when the store held no keys (it need not exist). */
  readonly tokenKeysPath: string;
  readonly adapter: BrokerKbsAdapter;
  readonly sealingKeyPaths: readonly string[];
  readonly secrets: SecretSource | undefined;
  /** RCAR sessions held at once, all replicas together (KbsServeOptions.maxSessions or its default). */
  readonly maxSessions: number;
  /**
   * Makes a new signing key (the old one stays published until its tokens expire), stored before it signs;
   * every replica takes it at its next sync.
   */
  rotateTokenKey(): Promise<TokenKeyRotation>;
  /** Zeroes held sealing keys (those held in memory; the store's are ciphertext). */
  close(): void;
}

export interface OpenBrokerKbsInput {
  /** The Broker (the token's claims are those its release returns). */
  readonly broker: Broker;
  /** Holds the sessions, the released keys and the token keys (migration 7), shared by replicas. */
  readonly store: Store;
  /** Encrypts the held keys, the session tokens and the token keys in the store. */
  readonly kek: KekSource;
  readonly dataDir: string;
  /** The broker's URL, read when the first token is issued (the port may be known only after listening). */
  readonly url: () => string;
  readonly now: () => number;
  readonly options: KbsServeOptions;
}

/** Token keys generated in a PKCS#11 token (ES256: P-256, ES384: P-384). */
function tokenKeysIn(uri: string): (alg: TokenAlg) => Promise<EcSigner> {
  const generate = pkcs11KeyGenerator(uri);
  return async (alg) => generate(alg === 'ES384' ? 'P-384' : 'P-256');
}

/**
 * Builds the broker's KBS with its state in the store (docs/broker.md "Running several replicas"): the
 * token key ring (shared-token-keys.ts), sessions (store-sessions.ts) and released keys (grants.ts), so
 * that replicas on one database are interchangeable; EAR tokens with the broker URL as issuer; the broker
 * adapter (sealing key at the sealing-key paths, operator secrets from the configured source).
 * Throws InvalidArgument `kbs.token_keys.*`, `kbs.secrets.*`, `kbs.config`, `token.config`,
 * `broker.kek.*` (state written under another KEK).
 */
export async function openBrokerKbs(i: OpenBrokerKbsInput): Promise<BrokerKbs> {
  const o = i.options;
  const lifetimeMs = o.tokenLifetimeMs ?? 300_000;
  const tokenKeysPath = o.tokenKeysPath ?? join(i.dataDir, 'token-keys.json');
  const state = i.store.kbsState();
  const shared = await openSharedTokenKeys({
    state,
    kek: i.kek,
    importFrom: tokenKeysPath,
    options: {
      maxTokenLifetimeMs: lifetimeMs,
      now: i.now,
      ...(o.tokenAlg ? { alg: o.tokenAlg } : {}),
      ...(o.tokenKeysPkcs11 !== undefined ? { generate: tokenKeysIn(o.tokenKeysPkcs11) } : {}),
    },
  });
  const keys = shared.ring;
  const issuer = o.issuer;
  const tokens = new EarTokens({ keys, issuer: issuer ?? i.url, lifetimeMs, now: i.now });
  const sealingKeyPaths = o.aproxyResourcePath
    ? [SEALING_KEY_PATH, APROXY_RESOURCE_PATH]
    : [SEALING_KEY_PATH];
  if (o.secrets && o.secretsDir !== undefined) {
    throw new TypeError('KbsServeOptions: give secrets or secretsDir, not both');
  }
  const secrets =
    o.secrets ??
    (o.secretsDir !== undefined
      ? new FileSecretSource({
          dir: o.secretsDir,
          ...(o.resourcePolicyPath !== undefined ? { policyFile: o.resourcePolicyPath } : {}),
          reservedPaths: sealingKeyPaths,
          // Secrets at rest under the KEK; plaintext files are sealed in place (below, and when first read).
          kek: i.kek,
        })
      : undefined);
  if (secrets instanceof FileSecretSource) await secrets.sealAll();
  const adapter = createBrokerKbsAdapter({
    broker: i.broker,
    sealingKeyPaths,
    now: i.now,
    ...(secrets ? { secrets } : {}),
    ...(o.grantTtlMs !== undefined ? { grantTtlMs: o.grantTtlMs } : {}),
    grants: new StoreGrants(state, i.kek, i.now),
  });
  const maxSessions = o.maxSessions ?? 10_000;
  const sessions = new StoreSessions({
    state,
    kek: i.kek,
    ttlMs: o.sessionTtlMs ?? 300_000,
    maxSessions,
    maxPendingPerSource: o.maxPendingSessionsPerSource ?? 256,
    now: i.now,
  });
  // One rotation at a time in this process (the store orders rotations across replicas).
  let rotating: Promise<unknown> = Promise.resolve();
  return {
    deps: {
      broker: adapter,
      tokens,
      now: i.now,
      sessions,
      syncTokenKeys: () => shared.sync(),
    },
    tokens,
    keys,
    tokenKeysPath,
    adapter,
    sealingKeyPaths,
    secrets,
    maxSessions,
    rotateTokenKey() {
      const next = rotating.then(async (): Promise<TokenKeyRotation> => {
        // Stored before it takes effect: a key that signs is always in the store.
        const key = await shared.rotate();
        const published = keys.jwks().keys.map((k) => k.kid);
        // Audited with the key it retired (the next newest published, newest first) and the credential
        // that asked (issue 14 "Keys": token-key rotation is audited).
        const actor = currentActor();
        await i.store.transaction((tx) =>
          tx.appendAudit({
            time: i.now(),
            kind: 'token_key_rotate',
            instance: null,
            decision: 'accept',
            reasons: ['kbs.token_key_rotated'],
            evidenceDigest: null,
            details: {
              oldKid: published[1] ?? null,
              newKid: key.kid,
              alg: key.alg,
              // Where the new key lives: its pkcs11: URI (no module, no PIN) or `memory` (the store, under the KEK).
              newKey: key.privateKey ? 'memory' : key.signer.id,
              ...(actor ? { actor: actor.actor } : {}),
            },
          }),
        );
        if (actor) actor.audited = true;
        return { kid: key.kid, alg: key.alg, published };
      });
      rotating = next.catch(() => {});
      return next;
    },
    close: () => adapter.close(),
  };
}
