import { parseCertificate } from '../../formats/x509/certificate.js';
import type { CertificateRecord } from '../../store/ca-types.js';
import { toHex } from '../../util/bytes.js';
import { checkOutputFormat, type OutputFormat } from '../c509-output.js';
import { bytesArg, type CaContext, caNow, decide, logDraft, sha256 } from '../context.js';
import { CaRefused } from '../errors.js';
import { identityFromJson } from '../instance-record.js';
import { fromTpmPublic, isEkShaped, spkiSha256 } from '../key-input.js';
import { EMPTY_NAME } from '../names.js';
import { ekExtensions } from '../profiles.js';
import type { RegistryLookup } from '../registry.js';
import type { RelayedCertificate, RelayedTeeRequest } from '../relayed.js';
import { vtpmManifestOf } from '../tee-evidence.js';
import { certifiedEks } from './certified-ek.js';
import { recordIssued } from './record-issued.js';
import { relayedEvidence, sameCertIdentity } from './relayed-evidence.js';
import { signIssued } from './sign-issued.js';

/**
 * CERTIFY_EK (docs/pvchannel.md §7.2, docs/ca.md "CERTIFY_EK"): the SVSM's report over SHA-512(nonce ‖
 * services manifest) proves which EK the attested vTPM has; the broker's registry, found by the report's
 * HOST_DATA, says which instance it is. Steps, in order (each refusal logged as `ca.issue_ek` with its reason):
 * 1-7. as {@link relayedEvidence}: relay nonce, the one SNP pipeline, VMPL0, policy, REPORT_DATA, the
 *    registered instance, the relay's claim;
 * 8. the manifest's vTPM entry (v0 or v1) carries an EK shaped as TCG EK templates are — `ca.ek_attributes`;
 * 9. that EK is not certified (valid) for another instance — `ca.ek_other_instance`;
 * 10. the instance holds no valid EK certificate for another key — `ca.ek_changed` (its vTPM state was
 *    replaced: an operator revokes the old certificate to let the new EK in);
 * then returns the instance's valid certificate for this EK when one exists in the format asked for (a
 * reboot: the same EK; logged `ca.ek_reused`), else issues one (TCG EK profile + the instance identity,
 * from the registry, never from the relay).
 */
export async function certifyEkFromTee(
  ctx: CaContext,
  req: RelayedTeeRequest,
  registry: RegistryLookup,
): Promise<RelayedCertificate> {
  const format = checkOutputFormat(req.format ?? 'x509');
  const reportBytes = bytesArg(req.report, 'report');
  const manifest = bytesArg(req.manifest, 'manifest');
  const where: { instance: string | null } = { instance: null };
  return decide(ctx, 'ca.issue_ek', where, reportBytes, async () => {
    const ev = await relayedEvidence(ctx, req, registry, where);

    // Step 8: the vTPM's EK, from what the report covers.
    const vtpm = vtpmManifestOf(manifest);
    if (!isEkShaped(vtpm.ek)) {
      throw new CaRefused('ca.ek_attributes', 'the EK is not a restricted decryption key fixed to its TPM');
    }
    const ek = fromTpmPublic(vtpm.ek);
    const ekDigest = spkiSha256(ek.spki);
    const now = caNow(ctx).getTime();

    // Step 9: an EK belongs to one instance.
    const sameKey = (await ctx.repository.listCertificates({ kind: 'ek' })).filter(
      (r) => r.spkiSha256 === ekDigest && r.revokedAt === null && r.notAfter > now,
    );
    if (sameKey.some((r) => !isFor(r, ev.key, ev.identity))) {
      throw new CaRefused('ca.ek_other_instance', 'this EK is certified for another instance');
    }

    // Step 10: an instance has one EK until an operator revokes it.
    const mine = (await certifiedEks(ctx, ev.key)).filter((r) => isFor(r, ev.key, ev.identity));
    if (mine.some((r) => r.spkiSha256 !== ekDigest)) {
      throw new CaRefused('ca.ek_changed', 'the instance holds a valid EK certificate for another key');
    }
    const evidenceDigest = toHex(sha256(reportBytes));
    const existing = mine.find((r) => hasFormat(r, format));
    if (existing) {
      await ctx.repository.appendLog(
        logDraft(
          ctx,
          'ca.issue_ek',
          ev.key,
          'accept',
          ['ca.ek_reused'],
          { route: 'relay', serial: existing.serial, caller: req.caller },
          evidenceDigest,
        ),
      );
      const cert = parseCertificate(existing.der);
      return {
        serial: existing.serial,
        kind: 'ek',
        der: existing.der,
        // The C509 form only when asked for: an X.509 request gets the DER, whatever else is stored.
        ...(format !== 'x509' && existing.c509 ? { c509: existing.c509 } : {}),
        format,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        instance: ev.instance,
        reused: true,
      };
    }

    const der = await signIssued(ctx, {
      lifetimeDays: ctx.config.lifetimes.ekDays,
      subject: EMPTY_NAME,
      spki: ek.spki,
      extensions: ekExtensions(
        { config: ctx.config, spki: ek.spki, issuerKeyId: ctx.keyId },
        ek.key,
        ev.identity,
        ctx.config.tpm,
      ),
    });
    const issued = await recordIssued(
      ctx,
      'ek',
      der,
      format,
      { instanceId: ev.key, identity: ev.identity, spki: ek.spki, ekPublic: Uint8Array.from(vtpm.ek.raw) },
      logDraft(
        ctx,
        'ca.issue_ek',
        ev.key,
        'accept',
        ['ca.issued'],
        {
          route: 'relay',
          caller: req.caller,
          ekSha256: ekDigest,
          manifestVersion: vtpm.version,
          product: ev.product,
          brokerInstance: ev.instance.id,
        },
        evidenceDigest,
      ),
    );
    return { ...issued, instance: ev.instance, reused: false };
  });
}

function isFor(r: CertificateRecord, key: string, identity: Parameters<typeof sameCertIdentity>[0]): boolean {
  return (
    r.instanceId === key &&
    r.identityJson !== null &&
    sameCertIdentity(identityFromJson(r.identityJson), identity)
  );
}

/** A stored certificate can be handed out in `format`: X.509 always, C509 when that form was issued. */
function hasFormat(r: CertificateRecord, format: OutputFormat): boolean {
  if (format === 'x509') return true;
  if (r.c509 === null) return false;
  // type 2 is a CBOR array starting with 2; type 3 with 3 (draft -20 §3.1).
  const type = r.c509[1];
  return format === 'c509-type2' ? type === 0x02 : type === 0x03;
}
