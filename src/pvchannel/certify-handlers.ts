import { NotSupported } from '../errors.js';
import {
  CertFormat,
  CertifyOp,
  decodeCertifyRequest,
  encodeCertifyAnswer,
  encodeNonceAnswer,
} from '../formats/pvchannel/certify.js';
import { PvFeature } from '../formats/pvchannel/constants.js';
import type { CallContext, CallHandler } from './device.js';

/** What the relay hands the CA for one CERTIFY: the guest's evidence, unchanged. */
export interface RelayedEvidenceBody {
  readonly nonce: Uint8Array;
  readonly report: Uint8Array;
  readonly certTable: Uint8Array;
  readonly manifest: Uint8Array;
  readonly format: 'x509' | 'c509';
}

/** A certificate as the CA returned it: in the format asked for, with the CA chain (X.509 DER). */
export interface RelayedAnswer {
  readonly certificate: Uint8Array;
  readonly chain: readonly Uint8Array[];
}

/**
 * Where the device sends CERTIFY_EK / CERTIFY_AK: the platform CA service, over HTTP with this host's
 * credential (src/cli/commands/vmm-device.ts), or a CA in the same process (tests, the demo:
 * src/pvchannel/ca-relay.ts). The relay carries evidence and chooses nothing: the CA finds the instance by
 * the report's HOST_DATA.
 */
export interface CertifyRelay {
  nonce(call: 'ek' | 'ak'): Promise<Uint8Array>;
  certifyEk(body: RelayedEvidenceBody): Promise<RelayedAnswer>;
  certifyAk(body: RelayedEvidenceBody & { readonly csr: Uint8Array }): Promise<RelayedAnswer>;
}

function format(f: CertFormat, ctx: CallContext): 'x509' | 'c509' {
  if (f === CertFormat.X509) return 'x509';
  // C509 output is feature bit 5 (docs/pvchannel.md §7): asked for outside the negotiated set, it is refused.
  if ((ctx.features & PvFeature.C509) === 0n) {
    throw new NotSupported('pvchannel.c509_not_negotiated', 'C509 certificates were not negotiated');
  }
  return 'c509';
}

function handler(relay: CertifyRelay, ak: boolean): CallHandler {
  return async (payload, ctx) => {
    // A payload that does not decode throws MalformedEvidence: the device answers BAD_PAYLOAD.
    const q = decodeCertifyRequest(payload, ak);
    if (q.op === CertifyOp.Nonce) return encodeNonceAnswer(await relay.nonce(ak ? 'ak' : 'ek'));
    const body = {
      nonce: q.body.nonce,
      report: q.body.report,
      certTable: q.body.certTable,
      manifest: q.body.manifest,
      format: format(q.format, ctx),
    };
    // A refusal by the CA is an AttestationError: the device answers CALL_FAILED with its code and reason.
    const a = ak ? await relay.certifyAk({ ...body, csr: q.body.csr }) : await relay.certifyEk(body);
    return encodeCertifyAnswer(q.format, a.certificate, a.chain);
  };
}

/** The CERTIFY_EK handler (call 3, docs/pvchannel.md §7.2). */
export function certifyEkHandler(relay: CertifyRelay): CallHandler {
  return handler(relay, false);
}

/** The CERTIFY_AK handler (call 4, docs/pvchannel.md §7.2). */
export function certifyAkHandler(relay: CertifyRelay): CallHandler {
  return handler(relay, true);
}
