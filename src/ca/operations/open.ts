import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgument } from '../../errors.js';
import { parseCertificate } from '../../formats/x509/certificate.js';
import { openSqliteCaRepository } from '../../store/ca-sqlite.js';
import type { CaRepository } from '../../store/ca-types.js';
import { ctEqual } from '../../util/bytes.js';
import { CA_FILES, CA_KEY_URI_FILE, pemCertificates } from '../ca-files.js';
import { parseCaConfig } from '../config.js';
import { type CaContext, createCaContext, serialHex } from '../context.js';
import { type CaKeyStore, FileKeyStore, SignerKeyStore } from '../key-store.js';
import type { PlatformCaOptions } from '../options.js';

/**
 * The directory's own SQLite database. Never created here: a CA whose database is elsewhere (PostgreSQL)
 * opened without it would otherwise start on an empty one, and forget its revocations.
 */
async function openDirectoryDatabase(dir: string): Promise<CaRepository> {
  const path = join(dir, CA_FILES.database);
  if (!existsSync(path)) {
    throw new InvalidArgument(
      'ca.open',
      `${dir} has no ${CA_FILES.database}: name the CA's database (--database)`,
    );
  }
  return openSqliteCaRepository({ path });
}

/**
 * The repository must be this CA's: it holds the CA certificate, recorded at init. Another CA's database,
 * or an empty one, would issue against the wrong EK records and sign CRLs without this CA's revocations.
 */
async function checkHoldsCa(repository: CaRepository, certificate: Uint8Array): Promise<void> {
  const rec = await repository.getCertificate(serialHex(parseCertificate(certificate).serialNumber));
  if (!rec || !ctEqual(rec.der, certificate)) {
    throw new InvalidArgument('ca.database_mismatch', "the database does not hold this CA's certificate");
  }
}

/**
 * Opens the CA in `dir`: configuration, chain, key (which must match the certificate), and its database
 * (`ca.db` in `dir` unless `opts.repository` is given), which must hold this CA's certificate.
 * Throws InvalidArgument `ca.open` (no CA or no database there, or key and certificate differ),
 * `ca.database_mismatch`, `ca.config`, and the key store's `ca.key_store.*` reasons.
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
  const keyStore = opts.keyStore ?? openDirectoryKey(dir, opts);
  const certSpki = parseCertificate(chain[0]!).subjectPublicKeyInfo;
  const keySpki = new Uint8Array(keyStore.publicKey.export({ type: 'spki', format: 'der' }));
  if (!ctEqual(certSpki, keySpki)) {
    throw new InvalidArgument('ca.open', 'the CA key does not match the CA certificate');
  }
  const repository = opts.repository ?? (await openDirectoryDatabase(dir));
  try {
    await checkHoldsCa(repository, chain[0]!);
  } catch (e) {
    if (!opts.repository) await repository.close();
    throw e;
  }
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

/**
 * The CA key of a directory: in a PKCS#11 token when `ca-key.uri` names it (docs/keys.md), else `ca-key.pem`.
 * Throws InvalidArgument `ca.key_store.*`, `keys.pkcs11.*`.
 */
function openDirectoryKey(dir: string, opts: PlatformCaOptions): CaKeyStore {
  let uri: string | undefined;
  try {
    uri = readFileSync(join(dir, CA_KEY_URI_FILE), 'utf8').trim();
  } catch {
    uri = undefined;
  }
  if (uri !== undefined) return SignerKeyStore.open(uri);
  return FileKeyStore.open(join(dir, CA_FILES.key), { passphrase: opts.passphrase });
}
