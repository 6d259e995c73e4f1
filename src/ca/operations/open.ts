import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgument } from '../../errors.js';
import { parseCertificate } from '../../formats/x509/certificate.js';
import { ctEqual } from '../../util/bytes.js';
import { CA_FILES, pemCertificates } from '../ca-files.js';
import { parseCaConfig } from '../config.js';
import { type CaContext, createCaContext } from '../context.js';
import { FileKeyStore } from '../key-store.js';
import type { PlatformCaOptions } from '../options.js';
import { SqliteCaRepository } from '../sqlite-repository.js';

/**
 * Opens the CA in `dir`: configuration, chain, key (which must match the certificate), repository.
 * Throws InvalidArgument `ca.open` (no CA there, or key and certificate differ), `ca.config`, and the key
 * store's `ca.key_store.*` reasons.
 */
export async function openCa(dir: string, opts: PlatformCaOptions = {}): Promise<CaContext> {
  let configText: string;
  let chainText: string;
  try {
    configText = readFileSync(join(dir, CA_FILES.config), 'utf8');
    chainText = readFileSync(join(dir, CA_FILES.chain), 'utf8');
  } catch {
    throw new InvalidArgument('ca.open', `${dir} does not hold a CA (run vouchsafe ca init)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(configText);
  } catch {
    throw new InvalidArgument('ca.config', `${join(dir, CA_FILES.config)} is not JSON`);
  }
  const config = parseCaConfig(json);
  const chain = pemCertificates(chainText);
  if (chain.length === 0) throw new InvalidArgument('ca.open', `${CA_FILES.chain} holds no certificate`);
  const keyStore =
    opts.keyStore ?? FileKeyStore.open(join(dir, CA_FILES.key), { passphrase: opts.passphrase });
  const certSpki = parseCertificate(chain[0]!).subjectPublicKeyInfo;
  const keySpki = new Uint8Array(keyStore.publicKey.export({ type: 'spki', format: 'der' }));
  if (!ctEqual(certSpki, keySpki)) {
    throw new InvalidArgument('ca.open', 'the CA key does not match the CA certificate');
  }
  const repository = opts.repository ?? SqliteCaRepository.open(join(dir, CA_FILES.database));
  return createCaContext({
    dir,
    config,
    keyStore,
    repository,
    certificate: chain[0]!,
    chain,
    snpVerifier: opts.snpVerifier,
    snpCollateral: opts.snpCollateral,
    checkRevocations: opts.checkRevocations,
    now: opts.now,
  });
}
