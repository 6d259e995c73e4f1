import { InvalidArgument } from '../../errors.js';
import { explicit, integer, sequence, wholeSeconds } from '../../formats/der/writer.js';
import {
  authorityKeyIdentifier,
  crlNumber,
  encodeExtensionList,
} from '../../formats/x509/extension-builders.js';
import { keyIdentifier } from '../../formats/x509/key-identifier.js';
import { amdName, amdTime, pssAlgorithm, signedStructure } from './amd-certificate-der.js';
import type { SimChain } from './chain.js';

export interface SimCrlOptions {
  /** Serial numbers to list (AMD revokes ASKs/ASVKs; it does not revoke VCEKs). */
  readonly revokedSerials: readonly bigint[];
  /** Default: the current time. Also each entry's revocationDate. */
  readonly thisUpdate?: Date;
  /** Default: thisUpdate + 7 days (a choice of ours: no real AMD CRL is among the vectors). */
  readonly nextUpdate?: Date;
  /**
   * Which KDS URL would serve it: /vcek/v1/{P}/crl (ASK revocations) or /vlek/v1/{P}/crl (ASVK). AMD signs
   * both with the ARK, so the bytes are built the same way; the kind is accepted to keep call sites explicit.
   */
  readonly kind?: 'vcek' | 'vlek';
  /** cRLNumber extension value, default 1. */
  readonly crlNumber?: bigint;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * An X.509 v2 CRL (RFC 5280 section 5) issued by the chain's ARK and signed RSASSA-PSS SHA-384 salt 48, the
 * form of AMD's /vcek/v1/{P}/crl: issuer = ARK name, thisUpdate, nextUpdate, the revoked serials, and the
 * AKID and cRLNumber extensions. The field layout follows RFC 5280 rather than a byte-compared AMD CRL (the
 * vectors hold none). Throws InvalidArgument `sim.snp.crl` for negative serials or nextUpdate < thisUpdate.
 */
export async function createCrl(chain: SimChain, opts: SimCrlOptions): Promise<Uint8Array> {
  const thisUpdate = wholeSeconds(opts.thisUpdate ?? new Date());
  const nextUpdate = wholeSeconds(opts.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY_MS));
  if (nextUpdate < thisUpdate) throw new InvalidArgument('sim.snp.crl', 'nextUpdate precedes thisUpdate');
  if (opts.revokedSerials.some((s) => s < 0n)) {
    throw new InvalidArgument('sim.snp.crl', 'serial numbers are non-negative');
  }
  const algorithm = pssAlgorithm(true);
  const fields = [
    integer(1), // v2
    algorithm,
    amdName(`ARK-${chain.product}`),
    amdTime(thisUpdate),
    amdTime(nextUpdate),
  ];
  // RFC 5280 5.1.2.6: with no revoked certificates the list is absent, not empty.
  if (opts.revokedSerials.length > 0) {
    fields.push(sequence(...opts.revokedSerials.map((s) => sequence(integer(s), amdTime(thisUpdate)))));
  }
  const arkKeyId = keyIdentifier(new Uint8Array(chain.ark.publicKey.export({ type: 'spki', format: 'der' })));
  fields.push(
    explicit(0, encodeExtensionList([authorityKeyIdentifier(arkKeyId), crlNumber(opts.crlNumber ?? 1n)])),
  );
  return signedStructure(sequence(...fields), algorithm, chain.ark.privateKey);
}
