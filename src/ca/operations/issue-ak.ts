import type { ParsedPublic } from '../../formats/tpm/public.js';
import type { CertificateRecord } from '../../store/ca-types.js';
import type { AuditDraft } from '../../store/types.js';
import { ctEqual } from '../../util/bytes.js';
import type { OutputFormat } from '../c509-output.js';
import { type CaContext, logDraft, sha256 } from '../context.js';
import { parseCertificationRequest } from '../csr.js';
import { CaRefused } from '../errors.js';
import { identityFromJson } from '../instance-record.js';
import { fromTpmPublic, isAkShaped, type PublicKeyInput, spkiSha256 } from '../key-input.js';
import { nameFromTemplate } from '../names.js';
import type { IssuedCertificate } from '../options.js';
import { akExtensions } from '../profiles.js';
import { recordIssued } from './record-issued.js';
import { signIssued } from './sign-issued.js';

/**
 * The steps both AK routes end with: the AK's attributes, the optional CSR, and issuance of the AK
 * certificate with the identity of the instance's EK certificate (never the request's).
 */

/** Throws CaRefused `ca.ak_attributes` unless `ak` is a restricted signing key fixed to its TPM. */
export function checkAk(ak: ParsedPublic): void {
  if (!isAkShaped(ak)) {
    throw new CaRefused(
      'ca.ak_attributes',
      `AK attributes 0x${ak.objectAttributes.toString(16)}: need restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin and not decrypt`,
    );
  }
}

/**
 * Verifies a CSR for the AK and returns the SAN entries the CA's policy lets it add, and its subject.
 * Throws CaRefused `ca.csr_key_mismatch`, `ca.csr_name_not_allowed`; the CSR parser's errors.
 */
export async function requestedNames(
  ctx: CaContext,
  csrBytes: Uint8Array,
  ak: PublicKeyInput,
): Promise<{ names: Uint8Array[]; subject: Uint8Array }> {
  const csr = await parseCertificationRequest(csrBytes);
  if (!ctEqual(sha256(csr.subjectPublicKeyInfo), sha256(ak.spki))) {
    throw new CaRefused('ca.csr_key_mismatch', "the request's public key is not the AK");
  }
  const allowed = ctx.config.csr.allowedSan;
  for (const n of csr.subjectAltNames) {
    if (n.type === 'other' || !allowed.includes(n.type)) {
      throw new CaRefused(
        'ca.csr_name_not_allowed',
        `subjectAltName type ${n.type} is not allowed by CA policy`,
      );
    }
  }
  return { names: csr.subjectAltNames.map((n) => n.der), subject: csr.subject };
}

/** How an AK came to be trusted, for the log entry. */
export interface AkProvenance {
  readonly route: 'tee' | 'activation';
  readonly details: AuditDraft['details'];
  /** Hex SHA-256 of the evidence (the SNP report), when there is one. */
  readonly evidenceDigest: string | null;
}

/** Checks the AK (and CSR) and issues its certificate for the instance of `ekRecord`. */
export async function issueAk(
  ctx: CaContext,
  instanceId: string,
  ekRecord: CertificateRecord,
  akPublic: ParsedPublic,
  csrBytes: Uint8Array | undefined,
  format: OutputFormat,
  provenance: AkProvenance,
): Promise<IssuedCertificate> {
  checkAk(akPublic);
  const ak = fromTpmPublic(akPublic);
  const identity = identityFromJson(ekRecord.identityJson!);
  let names: Uint8Array[] = [];
  let subject = nameFromTemplate(ctx.config.akSubject, identity);
  if (csrBytes !== undefined) {
    const r = await requestedNames(ctx, csrBytes, ak);
    names = r.names;
    if (ctx.config.csr.subject === 'request') subject = r.subject;
  }
  const subjectIsEmpty = subject.length === 2;
  const der = await signIssued(ctx, {
    lifetimeDays: ctx.config.lifetimes.akDays,
    subject,
    spki: ak.spki,
    extensions: akExtensions(
      { config: ctx.config, spki: ak.spki, issuerKeyId: ctx.keyId },
      identity,
      ctx.config.tpm,
      subjectIsEmpty,
      names,
    ),
  });
  return recordIssued(
    ctx,
    'ak',
    der,
    format,
    { instanceId, identity, spki: ak.spki, ekPublic: null },
    logDraft(
      ctx,
      'ca.issue_ak',
      instanceId,
      'accept',
      ['ca.issued'],
      {
        ...provenance.details,
        route: provenance.route,
        ekSerial: ekRecord.serial,
        akSha256: spkiSha256(ak.spki),
      },
      provenance.evidenceDigest,
    ),
  );
}
