import { MalformedEvidence } from '../errors.js';
import {
  CertFormat,
  CertifyOp,
  decodeCertifyAnswer,
  encodeCertifyAkRequest,
  encodeCertifyEkRequest,
  encodeNonceRequest,
} from '../formats/pvchannel/certify.js';
import { PvCall, PvFeature } from '../formats/pvchannel/constants.js';
import { svsmReportData } from '../formats/svsm/manifest.js';
import type { PvClient } from '../pvchannel/client.js';
import type { ReportProvider } from './report-provider.js';

/**
 * The SVSM side of CERTIFY_EK and CERTIFY_AK (docs/pvchannel.md §7.2), as the simulated SVSM runs them:
 * negotiate (PvClient does it on first use) → NONCE (the CA's, through the VMM) → an SNP report whose
 * REPORT_DATA = SHA-512(nonce ‖ services manifest) → CERTIFY. The answer is bounded here and nothing more:
 * the caller verifies the certificate against the platform CA it trusts (the VMM could send anything).
 */

export interface CertifiedKey {
  /** The certificate in `format`. */
  readonly certificate: Uint8Array;
  readonly format: 'x509' | 'c509';
  /** The CA chain as the device sent it (X.509 DER, issuing CA first): informative, verify against a pin. */
  readonly chain: readonly Uint8Array[];
}

export interface CertifyOptions {
  /** The services manifest holding the vTPM entry (v0 or v1 for the EK; v1, with the AK, for the AK). */
  readonly manifest: Uint8Array;
  /** Where the VMPL0 report comes from (SVSM_ATTEST_SERVICES; the simulator in tests). */
  readonly reports: ReportProvider;
  /** Ask for C509 when the device negotiated it (feature bit 5); default X.509. */
  readonly preferC509?: boolean;
}

async function nonceOf(client: PvClient, call: number): Promise<Uint8Array> {
  const a = decodeCertifyAnswer(await client.call(call, encodeNonceRequest()), CertifyOp.Nonce);
  if (a.op !== CertifyOp.Nonce) throw new MalformedEvidence('guest.certify.answer', 'not a nonce');
  return a.nonce;
}

async function evidence(client: PvClient, call: number, o: CertifyOptions) {
  const nonce = await nonceOf(client, call);
  const { report, certTable } = await o.reports.getReport(svsmReportData(nonce, o.manifest));
  const format =
    o.preferC509 && (client.features & PvFeature.C509) !== 0n ? CertFormat.C509 : CertFormat.X509;
  return { format, body: { nonce, report, certTable: certTable ?? new Uint8Array(0), manifest: o.manifest } };
}

function certified(bytes: Uint8Array, format: CertFormat): CertifiedKey {
  const a = decodeCertifyAnswer(bytes, CertifyOp.Certify);
  if (a.op !== CertifyOp.Certify || a.format !== format) {
    throw new MalformedEvidence('guest.certify.answer', 'the answer is not in the format asked for');
  }
  return { certificate: a.certificate, format: format === CertFormat.C509 ? 'c509' : 'x509', chain: a.chain };
}

/** CERTIFY_EK: the vTPM's EK certificate, with the identity the registry holds for this launch's HOST_DATA. */
export async function certifyEk(client: PvClient, o: CertifyOptions): Promise<CertifiedKey> {
  const { format, body } = await evidence(client, PvCall.CertifyEk, o);
  return certified(await client.call(PvCall.CertifyEk, encodeCertifyEkRequest(format, body)), format);
}

/** CERTIFY_AK: the AK certificate for the manifest's AK; `csr` is a C509 or PKCS#10 request signed by the AK. */
export async function certifyAk(
  client: PvClient,
  o: CertifyOptions & { readonly csr: Uint8Array },
): Promise<CertifiedKey> {
  const { format, body } = await evidence(client, PvCall.CertifyAk, o);
  return certified(
    await client.call(PvCall.CertifyAk, encodeCertifyAkRequest(format, { ...body, csr: o.csr })),
    format,
  );
}
