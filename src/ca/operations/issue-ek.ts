import { encodeInstanceIdentity } from '../../formats/x509/instance-identity.js';
import { checkOutputFormat } from '../c509-output.js';
import { bytesArg, type CaContext, decide, logDraft } from '../context.js';
import { CaRefused } from '../errors.js';
import { isEkShaped, readPublicKeyInput, spkiSha256 } from '../key-input.js';
import { EMPTY_NAME } from '../names.js';
import type { EkRequest, IssuedCertificate } from '../options.js';
import { ekExtensions } from '../profiles.js';
import { recordIssued } from './record-issued.js';
import { signIssued } from './sign-issued.js';

/**
 * Issues an EK certificate (TCG EK Credential Profile, docs/ca.md) binding the EK to the instance
 * identity. The control plane calls this when it creates the instance's vTPM; it is trusted to name the
 * right EK. Throws CaRefused `ca.ek_attributes` (a TPM public area that is not a restricted decryption
 * key fixed to its TPM); InvalidArgument `x509.instance_identity.*`, `ca.format`; MalformedEvidence
 * `ca.public_key`, `tpm.public.*`.
 */
export async function issueEk(ctx: CaContext, req: EkRequest): Promise<IssuedCertificate> {
  const format = checkOutputFormat(req.format ?? 'x509');
  const ek = readPublicKeyInput(bytesArg(req.ekPublic, 'ek_public'));
  encodeInstanceIdentity(req.identity); // validates the identity before anything is signed
  const instanceId = req.identity.instanceId.toString();
  return decide(ctx, 'ca.issue_ek', { instance: instanceId }, null, async () => {
    // Every TCG EK template is a restricted decryption key fixed to its TPM; anything else is no EK.
    if (ek.tpmPublic && !isEkShaped(ek.tpmPublic)) {
      throw new CaRefused('ca.ek_attributes', 'the EK is not a restricted decryption key fixed to its TPM');
    }
    const der = await signIssued(ctx, {
      lifetimeDays: ctx.config.lifetimes.ekDays,
      subject: EMPTY_NAME,
      spki: ek.spki,
      extensions: ekExtensions(
        { config: ctx.config, spki: ek.spki, issuerKeyId: ctx.keyId },
        ek.key,
        req.identity,
        req.tpm ?? ctx.config.tpm,
      ),
    });
    return recordIssued(
      ctx,
      'ek',
      der,
      format,
      {
        instanceId,
        identity: req.identity,
        spki: ek.spki,
        ekPublic: ek.tpmPublic ? Uint8Array.from(ek.tpmPublic.raw) : null,
      },
      logDraft(ctx, 'ca.issue_ek', instanceId, 'accept', ['ca.issued'], { ekSha256: spkiSha256(ek.spki) }),
    );
  });
}
