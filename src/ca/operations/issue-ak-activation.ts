import { randomBytes, randomUUID } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { HASH_ALGS } from '../../formats/tpm/constants.js';
import { encodeCredentialFile, makeCredential } from '../../formats/tpm/make-credential.js';
import { computeName, type ParsedPublic, parsePublic } from '../../formats/tpm/public.js';
import { ctEqual } from '../../util/bytes.js';
import { checkOutputFormat } from '../c509-output.js';
import { bytesArg, type CaContext, decide, logDraft, sha256 } from '../context.js';
import { CaRefused } from '../errors.js';
import { instanceKey } from '../instance-record.js';
import { fromTpmPublic, readPublicKeyInput, spkiSha256 } from '../key-input.js';
import type { ActivationChallenge, ActivationRequest, IssuedCertificate } from '../options.js';
import { certifiedEks, matchEk } from './certified-ek.js';
import { checkAk, issueAk, requestedNames } from './issue-ak.js';

/**
 * AK route (b), credential activation (TPM 2.0 Part 1 §24, TPM2_MakeCredential / TPM2_ActivateCredential):
 * the CA seals a secret to the certified EK, bound to the AK's Name; only that TPM recovers it, and only
 * for that AK. Two calls: {@link startActivation}, then {@link finishActivation} with the secret.
 */

/**
 * Step 1: checks the instance's certified EK and the AK's attributes, and returns a credential
 * (TPM2_MakeCredential in software to the EK, bound to the AK's Name). The secret's SHA-256 is stored;
 * the secret is not.
 *
 * Throws CaRefused `ca.instance_unknown`, `ca.ek_mismatch`, `ca.ak_attributes`, `ca.csr_key_mismatch`,
 * `ca.csr_name_not_allowed`; InvalidArgument `ca.ek_public_required` (no TPM public area known for the
 * EK); MalformedEvidence for malformed inputs.
 */
export async function startActivation(ctx: CaContext, req: ActivationRequest): Promise<ActivationChallenge> {
  const instanceId = instanceKey(req.instanceId);
  const format = checkOutputFormat(req.format ?? 'x509');
  const akBytes = bytesArg(req.akPublic, 'ak_public');
  return decide(ctx, 'ca.activation_start', { instance: instanceId }, null, async () => {
    const ak = readPublicKeyInput(akBytes);
    if (!ak.tpmPublic) throw new InvalidArgument('ca.ak_public', 'the AK must be given as a TPM public area');
    let ekPublic: ParsedPublic;
    if (req.ekPublic !== undefined) {
      const ek = readPublicKeyInput(bytesArg(req.ekPublic, 'ek_public'));
      if (!ek.tpmPublic)
        throw new InvalidArgument('ca.ek_public', 'the EK must be given as a TPM public area');
      await matchEk(ctx, instanceId, ek.spki);
      ekPublic = ek.tpmPublic;
    } else {
      const eks = await certifiedEks(ctx, instanceId);
      if (eks.length === 0) throw new CaRefused('ca.instance_unknown');
      const stored = eks.find((r) => r.ekPublic !== null);
      if (!stored) {
        throw new InvalidArgument('ca.ek_public_required', 'no EK public area is on record: pass ekPublic');
      }
      ekPublic = parsePublic(stored.ekPublic!);
    }
    checkAk(ak.tpmPublic);
    if (req.csr !== undefined) await requestedNames(ctx, bytesArg(req.csr, 'csr'), ak);

    const size = Math.min(32, HASH_ALGS[ekPublic.nameAlg]?.size ?? 32);
    const secret = new Uint8Array(randomBytes(size));
    try {
      const credential = makeCredential({ ekPublic, akName: computeName(ak.tpmPublic), credential: secret });
      const activationId = randomUUID();
      const expiresAt = ctx.clock().getTime() + ctx.config.activationTtlSeconds * 1000;
      await ctx.repository.insertActivation({
        id: activationId,
        instanceId,
        akPublic: Uint8Array.from(ak.tpmPublic.raw),
        ekPublic: Uint8Array.from(ekPublic.raw),
        secretDigest: sha256(secret),
        csr: req.csr ?? null,
        format,
        expiresAt,
      });
      await ctx.repository.appendLog(
        logDraft(ctx, 'ca.activation_start', instanceId, 'accept', ['ca.credential_made'], {
          activationId,
          akSha256: spkiSha256(ak.spki),
        }),
      );
      return {
        activationId,
        credential,
        credentialFile: encodeCredentialFile(credential),
        expiresAt: new Date(expiresAt),
      };
    } finally {
      secret.fill(0);
    }
  });
}

/**
 * Step 2: the secret TPM2_ActivateCredential returned. The activation is consumed (single use); the secret
 * is compared in constant time (as SHA-256 digests); the EK must still be certified.
 * Throws CaRefused `ca.activation_unknown`, `ca.activation_expired`, `ca.activation_failed`,
 * `ca.instance_unknown`, `ca.ek_mismatch`; InvalidArgument `ca.activation_id`, `ca.secret`.
 */
export async function finishActivation(
  ctx: CaContext,
  req: { readonly activationId: string; readonly secret: Uint8Array },
): Promise<IssuedCertificate> {
  if (typeof req.activationId !== 'string') {
    throw new InvalidArgument('ca.activation_id', 'activationId must be a string');
  }
  const secret = bytesArg(req.secret, 'secret');
  const where: { instance: string | null } = { instance: null };
  return decide(ctx, 'ca.issue_ak', where, null, async () => {
    const rec = await ctx.repository.consumeActivation(req.activationId);
    if (!rec) throw new CaRefused('ca.activation_unknown');
    where.instance = rec.instanceId;
    if (rec.expiresAt <= ctx.clock().getTime()) throw new CaRefused('ca.activation_expired');
    if (!ctEqual(sha256(secret), rec.secretDigest)) {
      throw new CaRefused(
        'ca.activation_failed',
        'the returned secret is not the credential sealed to the EK',
      );
    }
    const ekRecord = await matchEk(ctx, rec.instanceId, fromTpmPublic(parsePublic(rec.ekPublic)).spki);
    return issueAk(
      ctx,
      rec.instanceId,
      ekRecord,
      parsePublic(rec.akPublic),
      rec.csr ?? undefined,
      checkOutputFormat(rec.format),
      {
        route: 'activation',
        details: { route: 'activation', activationId: rec.id },
        evidenceDigest: null,
      },
    );
  });
}
