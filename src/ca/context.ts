import { createHash } from 'node:crypto';
import { AttestationError, InvalidArgument, PolicyRejected } from '../errors.js';
import type { SnpCollateralGetter } from '../evidence/snp/attestation.js';
import { SnpVerifier } from '../evidence/snp/verify.js';
import { wholeSeconds } from '../formats/der/writer.js';
import { parseCertificate } from '../formats/x509/certificate.js';
import { keyIdentifier } from '../formats/x509/key-identifier.js';
import type { CaRepository } from '../store/ca-types.js';
import type { AuditDraft } from '../store/types.js';
import { toHex } from '../util/bytes.js';
import type { CaConfig } from './config.js';
import type { CaKeyStore } from './key-store.js';

/**
 * What every CA operation works on (src/ca/operations/*): the CA's configuration, key, certificate and
 * repository, its clock and SNP verifier. Built once by {@link createCaContext} when a CA is created or
 * opened; PlatformCa is a thin facade over it.
 */
export interface CaContext {
  readonly dir: string;
  readonly config: CaConfig;
  readonly keyStore: CaKeyStore;
  readonly repository: CaRepository;
  /** This CA's certificate (DER). */
  readonly certificate: Uint8Array;
  /** This certificate, then its issuers up to the root (DER). */
  readonly chain: readonly Uint8Array[];
  /** DER subject of the CA certificate: the issuer of everything it signs. */
  readonly subject: Uint8Array;
  /** SKI of the CA key (the AKI of everything it signs). */
  readonly keyId: Uint8Array;
  readonly notAfter: Date;
  /** The injected clock, unrounded (log times, expiries). */
  readonly clock: () => Date;
  readonly snpVerifier: SnpVerifier;
  /** Where certificates a report's table lacks, and CRLs, come from (AMD KDS); undefined: none. */
  readonly snpCollateral: SnpCollateralGetter | undefined;
  /** Check the ASK/ASVK against the CRL fetched through `snpCollateral`. */
  readonly checkRevocations: boolean;
}

export const DAY_MS = 86_400_000;

/** Derives the issuer name, key id and end of validity from the CA certificate. */
export function createCaContext(parts: {
  readonly dir: string;
  readonly config: CaConfig;
  readonly keyStore: CaKeyStore;
  readonly repository: CaRepository;
  readonly certificate: Uint8Array;
  readonly chain: readonly Uint8Array[];
  readonly snpVerifier?: SnpVerifier;
  readonly snpCollateral?: SnpCollateralGetter;
  readonly checkRevocations?: boolean;
  readonly now?: () => Date;
}): CaContext {
  if (parts.checkRevocations && !parts.snpCollateral) {
    throw new InvalidArgument('ca.snp.collateral', 'checkRevocations needs snpCollateral (AMD KDS)');
  }
  const cert = parseCertificate(parts.certificate);
  return {
    dir: parts.dir,
    config: parts.config,
    keyStore: parts.keyStore,
    repository: parts.repository,
    certificate: parts.certificate,
    chain: parts.chain,
    subject: cert.subject,
    keyId: keyIdentifier(cert.subjectPublicKeyInfo, 'ca.spki'),
    notAfter: cert.notAfter,
    clock: parts.now ?? (() => new Date()),
    snpVerifier: parts.snpVerifier ?? new SnpVerifier(),
    snpCollateral: parts.snpCollateral,
    checkRevocations: parts.checkRevocations ?? false,
  };
}

/** Now, in whole seconds (certificate and CRL times have no fractions). */
export function caNow(ctx: CaContext): Date {
  return wholeSeconds(ctx.clock());
}

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/** Checks an argument arrived as bytes. Throws InvalidArgument `ca.<field>`. */
export function bytesArg(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidArgument(`ca.${field}`, `${field} must be bytes`);
  return v;
}

/** Lower-case hex of a serial number's unsigned big-endian bytes (leading zero bytes dropped). */
export function serialHex(serialNumber: Uint8Array): string {
  return toHex(serialNumber).replace(/^(00)+(?=..)/, '');
}

/** An issuance-log entry stamped with the CA's clock. */
export function logDraft(
  ctx: CaContext,
  kind: string,
  instance: string | null,
  decision: 'accept' | 'refuse',
  reasons: readonly string[],
  details: AuditDraft['details'] = {},
  evidenceDigest: string | null = null,
): AuditDraft {
  return { time: ctx.clock().getTime(), kind, instance, decision, reasons, evidenceDigest, details };
}

/** Why a request was refused, as the log lists it: every policy failure, or the one reason. */
function refusalReasons(e: unknown): string[] {
  if (e instanceof PolicyRejected) return e.failures.map((f) => f.code);
  if (e instanceof AttestationError) return [e.reason];
  return ['ca.internal_error'];
}

/**
 * Runs one decision; a refusal (any AttestationError) is logged with what `where` knows by then (the
 * instance may only be learnt on the way) and the SHA-256 of `evidence`, then rethrown unchanged.
 */
export async function decide<T>(
  ctx: CaContext,
  kind: string,
  where: { instance: string | null },
  evidence: Uint8Array | null,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AttestationError) {
      const digest = evidence ? toHex(sha256(evidence)) : null;
      await ctx.repository.appendLog(
        logDraft(ctx, kind, where.instance, 'refuse', refusalReasons(e), {}, digest),
      );
    }
    throw e;
  }
}

/** notBefore now, notAfter `days` later but never past the CA certificate that vouches for it. */
export function validity(ctx: CaContext, days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = caNow(ctx);
  const wanted = notBefore.getTime() + days * DAY_MS;
  return { notBefore, notAfter: new Date(Math.min(wanted, ctx.notAfter.getTime())) };
}
