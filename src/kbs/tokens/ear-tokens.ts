import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { isObject } from '../../util/json-object.js';
import {
  ANNOTATED_EVIDENCE_CLAIM,
  buildSnpEar,
  CPU_SUBMOD,
  EAR_PROFILE,
  type EarClaims,
  type EarStatus,
  type EarVerifierId,
  PLATFORM_IDENTITY_CLAIM,
  type PlatformIdentityClaim,
  type SnpEarInput,
} from './ear.js';
import { checkIssuerAndTimes, signJwtJson, verifyJwt } from './jwt.js';
import type { PublicEcJwk, TokenKeyRing } from './key-ring.js';

export interface EarTokensOptions {
  readonly keys: TokenKeyRing;
  /**
   * `iss` of every token, e.g. the broker's base URL; or a function read at every issue and verification
   * (for a URL only known once the server listens, e.g. on port 0). It must keep returning the same value.
   */
  readonly issuer: string | (() => string);
  /** Token lifetime in ms (default 300 000, Trustee's 5 minutes); at most the ring's maxTokenLifetimeMs. */
  readonly lifetimeMs?: number;
  readonly verifierId?: EarVerifierId;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
}

/** What a resource request needs from a verified SNP EAR. */
export interface SnpEarSubject {
  /** The token's `jti`. */
  readonly jti: string;
  readonly status: EarStatus;
  readonly identity: PlatformIdentityClaim;
  /** The launch measurement, lower-case hex: SNP MEASUREMENT, or TDX MRTD (both 48 bytes). */
  readonly measurement: string;
  /** `runtime_data_claims.tee-pubkey`: the JWK responses are wrapped to (still to be validated). */
  readonly teePubkey: unknown;
}

export const DEFAULT_VERIFIER_ID: EarVerifierId = Object.freeze({
  build: 'vouchsafe 0.1.0',
  developer: 'vouchsafe',
});

/** Tokens issued and not yet presented that are remembered (the oldest forgotten first); see verify. */
export const MAX_UNPRESENTED_TOKENS = 256;

/**
 * Issues and verifies the broker's EAR attestation-result tokens (JWT, ES256 or ES384, header `kid`), and
 * publishes the verification keys as a JWKS. A token verifies with any JOSE library given only the JWKS.
 */
export class EarTokens {
  readonly lifetimeMs: number;
  /** Token -> its signing kid and payload JSON, for tokens issued here and not yet presented. */
  private readonly unpresented = new Map<string, { readonly kid: string; readonly json: string }>();
  private readonly issuerOf: () => string;
  private readonly keys: TokenKeyRing;
  private readonly verifierId: EarVerifierId;
  private readonly now: () => number;

  /** Throws InvalidArgument `token.config` for a lifetime longer than the ring keeps retired keys for. */
  constructor(o: EarTokensOptions) {
    const lifetime = o.lifetimeMs ?? 300_000;
    if (!Number.isSafeInteger(lifetime) || lifetime < 1000 || lifetime > o.keys.maxTokenLifetimeMs) {
      throw new InvalidArgument(
        'token.config',
        `token lifetime must be 1 s .. the key ring's maxTokenLifetimeMs (${o.keys.maxTokenLifetimeMs} ms)`,
      );
    }
    const issuer = o.issuer;
    if (typeof issuer === 'function') {
      this.issuerOf = () => {
        const v = issuer();
        if (typeof v !== 'string' || v.length === 0) {
          throw new InvalidArgument('token.config', 'issuer must be a non-empty string');
        }
        return v;
      };
    } else {
      if (typeof issuer !== 'string' || issuer.length === 0) {
        throw new InvalidArgument('token.config', 'issuer must be a non-empty string');
      }
      this.issuerOf = () => issuer;
    }
    this.lifetimeMs = lifetime;
    this.keys = o.keys;
    this.verifierId = o.verifierId ?? DEFAULT_VERIFIER_ID;
    this.now = o.now ?? Date.now;
  }

  /** `iss` of the tokens issued now. */
  get issuer(): string {
    return this.issuerOf();
  }

  /** Builds the EAR of an accepted SNP attestation and signs it with the current key. */
  issueSnp(input: Omit<SnpEarInput, 'issuer' | 'verifierId' | 'issuedAt' | 'lifetimeMs'>): {
    token: string;
    claims: EarClaims;
  } {
    const claims = buildSnpEar({
      ...input,
      issuer: this.issuer,
      verifierId: this.verifierId,
      issuedAt: this.now(),
      lifetimeMs: this.lifetimeMs,
    });
    const json = JSON.stringify(claims);
    const key = this.keys.current;
    const token = signJwtJson(key, json);
    this.unpresented.set(token, { kid: key.kid, json });
    if (this.unpresented.size > MAX_UNPRESENTED_TOKENS) {
      this.unpresented.delete(this.unpresented.keys().next().value as string);
    }
    return { token, claims };
  }

  /**
   * Verifies one of our tokens (see verifyJwt for the checks and codes) and that it is an EAR of our
   * profile: InvalidArgument `token.profile` otherwise.
   *
   * The first presentation of a token this object issued (the same string: a Map look-up) skips the
   * signature check and the decoding: we made those bytes, from this payload, with a key that must still be
   * published. Its issuer and times are checked as for any token. A KBS client reads its resource right
   * after attesting, so this spares the usual exchange an ES256 verify and a 3-4 KiB decode (~4% of the
   * broker's event-loop CPU per exchange, docs/broker.md). A token is remembered until it is first presented, for at most the
   * MAX_UNPRESENTED_TOKENS newest, so the memory is bounded and short-lived; every other presentation,
   * and any token another replica issued, is verified in full.
   */
  verify(token: unknown): EarClaims {
    const mine = typeof token === 'string' ? this.unpresented.get(token) : undefined;
    if (mine !== undefined) {
      this.unpresented.delete(token as string);
      if (this.keys.find(mine.kid) !== undefined) {
        const payload = JSON.parse(mine.json) as { [k: string]: unknown };
        checkIssuerAndTimes(payload, { now: this.now(), issuer: this.issuer });
        return payload as unknown as EarClaims;
      }
    }
    const { payload } = verifyJwt(token, {
      findKey: (kid) => this.keys.find(kid),
      now: this.now(),
      issuer: this.issuer,
    });
    if (payload.eat_profile !== EAR_PROFILE) throw new InvalidArgument('token.profile', 'not an EAR token');
    if (typeof payload.submods !== 'object' || payload.submods === null) {
      throw new MalformedEvidence('token.claims', 'EAR has no submods');
    }
    return payload as unknown as EarClaims;
  }

  /** How many issued tokens are remembered, not yet presented (see verify). */
  unpresentedTokens(): number {
    return this.unpresented.size;
  }

  /** The JWKS: the signing key and retired keys whose tokens may still be valid. */
  jwks(): { keys: PublicEcJwk[] } {
    return this.keys.jwks();
  }
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new MalformedEvidence('token.claims', `${what} missing`);
  return v;
}

/**
 * Extracts what a resource request needs from verified EAR claims (the `cpu0` submodule; SNP or TDX). Throws
 * MalformedEvidence `token.claims` when a claim is missing: a token of ours always has them, so this only
 * fires for tokens of another shape.
 */
export function readSnpEarSubject(claims: EarClaims): SnpEarSubject {
  const sub = (claims.submods as { [k: string]: unknown })[CPU_SUBMOD];
  if (!isObject(sub)) throw new MalformedEvidence('token.claims', 'EAR has no cpu0 submodule');
  const status = sub['ear.status'];
  if (status !== 'none' && status !== 'affirming' && status !== 'warning' && status !== 'contraindicated') {
    throw new MalformedEvidence('token.claims', 'ear.status missing');
  }
  const ev = sub[ANNOTATED_EVIDENCE_CLAIM];
  const id = sub[PLATFORM_IDENTITY_CLAIM];
  if (!isObject(ev) || !isObject(id))
    throw new MalformedEvidence('token.claims', 'EAR lacks evidence or identity');
  const rt = ev.runtime_data_claims;
  // The launch measurement: SNP's MEASUREMENT, or (no SNP report in the evidence) TDX's MRTD.
  const measurement = isObject(ev.snp) ? ev.snp.measurement : isObject(ev.tdx) ? ev.tdx.mrTd : undefined;
  if (measurement === undefined || !isObject(rt))
    throw new MalformedEvidence('token.claims', 'EAR lacks SNP or TDX claims, or runtime claims');
  return {
    jti: str(claims.jti, 'jti'),
    status,
    identity: {
      brokerInstanceId: str(id.brokerInstanceId, 'brokerInstanceId'),
      project: str(id.project, 'project'),
      zone: str(id.zone, 'zone'),
      instanceId: str(id.instanceId, 'instanceId'),
      instanceName: str(id.instanceName, 'instanceName'),
      source: 'registry',
    },
    measurement: str(measurement, 'measurement'),
    teePubkey: rt['tee-pubkey'],
  };
}
