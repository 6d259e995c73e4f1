import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { type EcSigner, toSigner } from '../../keys/signer.js';
import { newKeyPair } from '../../util/key-pair.js';

/** JWS algorithms the broker signs tokens with (RFC 7518 §3.4): ECDSA P-256/SHA-256 and P-384/SHA-384. */
export type TokenAlg = 'ES256' | 'ES384';

/**
 * Per algorithm: the JWK curve, the hash, Node's curve name, the width of r and of s in the JWS signature
 * (RFC 7518 §3.4), and the curve's group order n (SEC 2 v2 §2.4.2, §2.5.1), which low-S needs.
 */
export const TOKEN_ALGS: Readonly<
  Record<
    TokenAlg,
    { crv: 'P-256' | 'P-384'; hash: string; nodeCurve: string; scalarBytes: number; order: bigint }
  >
> = Object.freeze({
  ES256: {
    crv: 'P-256',
    hash: 'sha256',
    nodeCurve: 'prime256v1',
    scalarBytes: 32,
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  ES384: {
    crv: 'P-384',
    hash: 'sha384',
    nodeCurve: 'secp384r1',
    scalarBytes: 48,
    order:
      0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
});

/** A public signing key as the JWKS publishes it (RFC 7517 §4, RFC 7518 §6.2.1). */
export interface PublicEcJwk {
  readonly kty: 'EC';
  readonly crv: 'P-256' | 'P-384';
  readonly x: string;
  readonly y: string;
  readonly kid: string;
  readonly alg: TokenAlg;
  readonly use: 'sig';
}

export interface TokenKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url): stable, derived from the key alone. */
  readonly kid: string;
  readonly alg: TokenAlg;
  /**
   * The private key when it is held in memory (the token key file, the store); undefined when it stays in a
   * PKCS#11 token (src/keys), where {@link signer} reaches it.
   */
  readonly privateKey: KeyObject | undefined;
  /** Signs with the key wherever it lives (IEEE P1363 r || s). */
  readonly signer: EcSigner;
  readonly publicKey: KeyObject;
  readonly jwk: PublicEcJwk;
  /** When the key became the signing key (ms since the epoch). */
  readonly activatedAt: number;
  /** When a newer key replaced it; null while it signs. */
  readonly retiredAt: number | null;
}

export interface TokenKeyRingOptions {
  /**
   * The longest lifetime of any token this ring signs (ms). A retired key stays in the JWKS for this long
   * plus `clockSkewMs` after retirement, so every token it signed can still be verified until it expires.
   */
  readonly maxTokenLifetimeMs: number;
  /** Allowance for relying parties' clocks (default 60 s). */
  readonly clockSkewMs?: number;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
  /**
   * Makes the key a rotation (and a new ring) signs with: default a P-256/P-384 key in memory; a PKCS#11
   * deployment generates it in the token (src/keys) and returns its signer.
   */
  readonly generate?: (alg: TokenAlg) => Promise<KeyObject | EcSigner>;
}

function algOfKey(key: KeyObject): TokenAlg {
  const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
  for (const [alg, p] of Object.entries(TOKEN_ALGS) as [TokenAlg, (typeof TOKEN_ALGS)[TokenAlg]][]) {
    if (p.nodeCurve === curve) return alg;
  }
  throw new InvalidArgument('token.key', 'token signing keys must be ECDSA P-256 (ES256) or P-384 (ES384)');
}

/** RFC 7638 §3.2: SHA-256 over the required members in lexicographic order, no whitespace. */
export function jwkThumbprint(jwk: { crv: string; kty: string; x: string; y: string }): string {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

function makeKey(key: KeyObject | EcSigner, activatedAt: number): TokenKey {
  const inMemory = !('sign' in key);
  if (inMemory && key.type !== 'private')
    throw new InvalidArgument('token.key', 'a token signing key must be private');
  const alg = algOfKey(inMemory ? key : key.publicKey);
  const signer = inMemory ? toSigner(key) : key;
  const privateKey = inMemory ? key : undefined;
  const publicKey = inMemory ? createPublicKey(key) : key.publicKey;
  const j = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string; y: string };
  const crv = TOKEN_ALGS[alg].crv;
  const kid = jwkThumbprint({ crv, kty: 'EC', x: j.x, y: j.y });
  return {
    kid,
    alg,
    privateKey,
    signer,
    publicKey,
    jwk: { kty: 'EC', crv, x: j.x, y: j.y, kid, alg, use: 'sig' },
    activatedAt,
    retiredAt: null,
  };
}

/**
 * The broker's token signing keys. Exactly one key signs (the newest); after {@link rotate} the previous
 * keys stop signing but stay published (in {@link jwks}, and usable by {@link find}) until every token they
 * signed has expired: `retiredAt + maxTokenLifetimeMs + clockSkewMs`. Keys live in memory; load persisted
 * keys with {@link TokenKeyRing.fromKeys}.
 */
export class TokenKeyRing {
  private keys: TokenKey[];
  private readonly lifetimeMs: number;
  private readonly skewMs: number;
  private readonly now: () => number;
  private readonly generateKey: ((alg: TokenAlg) => Promise<KeyObject | EcSigner>) | undefined;

  private constructor(keys: TokenKey[], opts: TokenKeyRingOptions) {
    if (!Number.isSafeInteger(opts.maxTokenLifetimeMs) || opts.maxTokenLifetimeMs <= 0) {
      throw new InvalidArgument('token.config', 'maxTokenLifetimeMs must be a positive integer');
    }
    const skew = opts.clockSkewMs ?? 60_000;
    if (!Number.isSafeInteger(skew) || skew < 0) {
      throw new InvalidArgument('token.config', 'clockSkewMs must be a non-negative integer');
    }
    this.keys = keys;
    this.lifetimeMs = opts.maxTokenLifetimeMs;
    this.skewMs = skew;
    this.now = opts.now ?? Date.now;
    this.generateKey = opts.generate;
  }

  /** A new key for `alg`: the configured generator's (e.g. in a PKCS#11 token), else one in memory. */
  private async newKey(alg: TokenAlg): Promise<KeyObject | EcSigner> {
    if (this.generateKey) return this.generateKey(alg);
    return (await newKeyPair('ec', { namedCurve: TOKEN_ALGS[alg].nodeCurve })).privateKey;
  }

  /** A ring with one fresh key (ES256 unless `alg` says otherwise). */
  static async generate(opts: TokenKeyRingOptions & { alg?: TokenAlg }): Promise<TokenKeyRing> {
    const ring = new TokenKeyRing([], opts);
    await ring.rotate(opts.alg ?? 'ES256');
    return ring;
  }

  /**
   * A ring from existing private keys (e.g. loaded from PEM), oldest first; the last one signs, the others
   * count as retired now. Throws InvalidArgument `token.key` for keys that are not P-256/P-384 private keys.
   */
  static fromKeys(privateKeys: readonly KeyObject[], opts: TokenKeyRingOptions): TokenKeyRing {
    if (privateKeys.length === 0)
      throw new InvalidArgument('token.key', 'at least one signing key is needed');
    const now = (opts.now ?? Date.now)();
    const keys = privateKeys.map((k, i) => {
      const key = makeKey(k, now);
      return i === privateKeys.length - 1 ? key : { ...key, retiredAt: now };
    });
    return new TokenKeyRing(keys, opts);
  }

  /**
   * A ring from persisted keys with their history (what {@link published} returned when it was saved),
   * oldest first: exactly the last one has `retiredAt: null` and signs; retired keys whose tokens have all
   * expired are dropped. Throws InvalidArgument `token.key` for keys that are not P-256/P-384 private keys
   * or a history that is not in that shape.
   */
  static restore(
    entries: readonly {
      readonly privateKey: KeyObject | EcSigner;
      readonly activatedAt: number;
      readonly retiredAt: number | null;
    }[],
    opts: TokenKeyRingOptions,
  ): TokenKeyRing {
    if (entries.length === 0) throw new InvalidArgument('token.key', 'at least one signing key is needed');
    const keys = entries.map((e, i) => {
      const last = i === entries.length - 1;
      const times = [e.activatedAt, ...(e.retiredAt === null ? [] : [e.retiredAt])];
      if (!times.every((t) => Number.isSafeInteger(t) && t >= 0) || (e.retiredAt === null) !== last) {
        throw new InvalidArgument(
          'token.key',
          'only the newest key signs; every older key has a retirement time',
        );
      }
      return { ...makeKey(e.privateKey, e.activatedAt), retiredAt: e.retiredAt };
    });
    const ring = new TokenKeyRing(keys, opts);
    ring.prune(ring.now());
    return ring;
  }

  /** The longest token lifetime this ring publishes retired keys for (ms). */
  get maxTokenLifetimeMs(): number {
    return this.lifetimeMs;
  }

  /** The key that signs now. */
  get current(): TokenKey {
    return this.keys[this.keys.length - 1]!;
  }

  /**
   * Generates a new signing key; the old one is retired (still published until its tokens expire).
   * `commit`, when given, sees the ring as it will be (e.g. to persist it) before anything changes: if it
   * throws, this ring is left as it was.
   */
  async rotate(
    alg: TokenAlg = this.keys.length > 0 ? this.current.alg : 'ES256',
    commit?: (next: TokenKeyRing) => void,
  ): Promise<TokenKey> {
    if (typeof alg !== 'string' || !Object.hasOwn(TOKEN_ALGS, alg))
      throw new InvalidArgument('token.alg', `unsupported token algorithm ${String(alg)}`);
    return this.install(await this.newKey(alg), commit);
  }

  /**
   * Makes an existing private key the signing key (rotation to a key generated elsewhere, e.g. an HSM
   * export). `commit` as for {@link rotate}.
   */
  install(privateKey: KeyObject | EcSigner, commit?: (next: TokenKeyRing) => void): TokenKey {
    const next = this.installed(privateKey);
    commit?.(next);
    this.adopt(next);
    return next.current;
  }

  /**
   * The ring as {@link rotate} would leave it, this one unchanged: a rotation that must be stored before
   * it takes effect, asynchronously (the KBS's shared keys: src/kbs/shared-token-keys.ts), takes this,
   * stores it, then {@link adopt}s it.
   */
  async rotated(alg: TokenAlg = this.current.alg): Promise<TokenKeyRing> {
    if (typeof alg !== 'string' || !Object.hasOwn(TOKEN_ALGS, alg))
      throw new InvalidArgument('token.alg', `unsupported token algorithm ${String(alg)}`);
    return this.installed(await this.newKey(alg));
  }

  /** Takes `other`'s keys as this ring's (a rotation stored by another broker replica, read back). */
  adopt(other: TokenKeyRing): void {
    this.keys = [...other.keys];
    this.prune(this.now());
  }

  private installed(privateKey: KeyObject | EcSigner): TokenKeyRing {
    const now = this.now();
    const key = makeKey(privateKey, now);
    const keys = [...this.keys.map((k) => (k.retiredAt === null ? { ...k, retiredAt: now } : k)), key];
    return new TokenKeyRing(keys, {
      maxTokenLifetimeMs: this.lifetimeMs,
      clockSkewMs: this.skewMs,
      now: this.now,
      ...(this.generateKey ? { generate: this.generateKey } : {}),
    });
  }

  /** Keys a relying party may still need: the signing key and retired keys whose tokens may be unexpired. */
  published(): readonly TokenKey[] {
    this.prune(this.now());
    return this.keys;
  }

  /** A published key by kid, or undefined (unknown, or retired long enough that all its tokens expired). */
  find(kid: string): TokenKey | undefined {
    return this.published().find((k) => k.kid === kid);
  }

  /** The JWKS document (RFC 7517 §5), newest key first. */
  jwks(): { keys: PublicEcJwk[] } {
    return { keys: [...this.published()].reverse().map((k) => ({ ...k.jwk })) };
  }

  private prune(now: number): void {
    const keep = this.lifetimeMs + this.skewMs;
    this.keys = this.keys.filter((k) => k.retiredAt === null || now < k.retiredAt + keep);
  }
}
