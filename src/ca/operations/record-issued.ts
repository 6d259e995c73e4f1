import { parseCertificate } from '../../formats/x509/certificate.js';
import type { GceInstanceIdentity } from '../../formats/x509/instance-identity.js';
import type { CertificateKind } from '../../store/ca-types.js';
import type { AuditDraft } from '../../store/types.js';
import { type OutputFormat, toC509Type2, toC509Type3 } from '../c509-output.js';
import { type CaContext, caNow, serialHex } from '../context.js';
import { identityToJson } from '../instance-record.js';
import { spkiSha256 } from '../key-input.js';
import type { IssuedCertificate } from '../options.js';

/** What the repository keeps beside an issued certificate. */
export interface IssuedMeta {
  readonly instanceId: string | null;
  readonly identity: GceInstanceIdentity | null;
  readonly spki: Uint8Array;
  readonly ekPublic: Uint8Array | null;
}

/**
 * The last step of every issuance: the C509 form when asked for, then the certificate and its log entry
 * (with serial and format added) stored in one transaction. Returns what the caller hands out.
 */
export async function recordIssued(
  ctx: CaContext,
  kind: CertificateKind,
  der: Uint8Array,
  format: OutputFormat,
  meta: IssuedMeta,
  log: AuditDraft,
): Promise<IssuedCertificate> {
  const cert = parseCertificate(der);
  let c509: Uint8Array | undefined;
  if (format === 'c509-type3') c509 = toC509Type3(der, ctx.keyStore);
  if (format === 'c509-type2') c509 = await toC509Type2(der, ctx.config.signatureAlgorithm, ctx.keyStore);
  const serial = serialHex(cert.serialNumber);
  await ctx.repository.insertCertificate(
    {
      serial,
      kind,
      instanceId: meta.instanceId,
      identityJson: meta.identity ? identityToJson(meta.identity) : null,
      spkiSha256: spkiSha256(meta.spki),
      ekPublic: meta.ekPublic,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      issuedAt: caNow(ctx).getTime(),
      der,
      c509: c509 ?? null,
      revokedAt: null,
      revocationReason: null,
    },
    { ...log, details: { ...log.details, serial, format } },
  );
  return {
    serial,
    kind,
    der,
    ...(c509 ? { c509 } : {}),
    format,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
