import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgument } from '../../errors.js';
import { wholeSeconds } from '../../formats/der/writer.js';
import { parseCertificate } from '../../formats/x509/certificate.js';
import { keyIdentifier } from '../../formats/x509/key-identifier.js';
import { openSqliteCaRepository } from '../../store/ca-sqlite.js';
import { toHex } from '../../util/bytes.js';
import { keyType, keyTypeOf } from '../algorithms.js';
import { CA_FILES, CA_KEY_URI_FILE, certificatePem } from '../ca-files.js';
import { newSerialNumber, signCertificate } from '../certificate.js';
import { defaultCaConfig, parseCaConfig, serializeCaConfig } from '../config.js';
import { type CaContext, caNow, createCaContext, DAY_MS, logDraft, serialHex, sha256 } from '../context.js';
import { spkiSha256 } from '../key-input.js';
import { FileKeyStore, SignerKeyStore } from '../key-store.js';
import { nameFromString } from '../names.js';
import type { InitCaOptions } from '../options.js';
import { caExtensions } from '../profiles.js';

/**
 * Creates a CA in `opts.dir` (created with mode 0700; must not already hold a CA): key, certificate
 * (self-signed root, or an intermediate issued by `opts.issuer`), `ca.json`, and the database (`ca.db`
 * in `dir` unless `opts.repository` is given, which must hold no CA yet); logs `ca.init`.
 * Throws InvalidArgument `ca.init.exists`, `ca.key_type`, `ca.config`, `ca.name`.
 */
export async function initCa(opts: InitCaOptions): Promise<CaContext> {
  const type = keyType(opts.keyType ?? 'p384').name;
  const base = defaultCaConfig(type);
  const config = parseCaConfig(
    JSON.parse(serializeCaConfig({ ...base, ...(opts.config ?? {}), version: 1, keyType: type })),
  );
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(join(dir, CA_FILES.config)) || existsSync(join(dir, CA_FILES.database))) {
    throw new InvalidArgument('ca.init.exists', `${dir} already holds a CA`);
  }
  // One CA per database: a second CA's certificates and log entries would mix with the first one's.
  if (opts.repository && (await opts.repository.logHead()).seq > 0) {
    throw new InvalidArgument('ca.init.exists', 'the database already holds a CA');
  }
  if (opts.keyUri !== undefined && opts.keyStore) {
    throw new InvalidArgument('ca.key_store.key', 'give keyStore or keyUri, not both');
  }
  const keyStore =
    opts.keyStore ??
    (opts.keyUri !== undefined
      ? SignerKeyStore.open(opts.keyUri, type)
      : await FileKeyStore.create(join(dir, CA_FILES.key), type, { passphrase: opts.passphrase }));
  // Where later opens find the key (the URI names module and PIN source, never the PIN).
  if (opts.keyUri !== undefined)
    writeFileSync(join(dir, CA_KEY_URI_FILE), `${opts.keyUri}\n`, { mode: 0o600 });
  if (keyTypeOf(keyStore.publicKey) !== type) {
    throw new InvalidArgument('ca.key_type', 'the key store key is not of the configured key type');
  }
  const subject = nameFromString(opts.subject ?? 'CN=Vouchsafe Platform CA');
  const spki = new Uint8Array(keyStore.publicKey.export({ type: 'spki', format: 'der' }));
  let certificate: Uint8Array;
  let chain: Uint8Array[];
  if (opts.issuer) {
    const issued = await opts.issuer.issueCaCertificate(subject, spki);
    certificate = issued.der;
    chain = [certificate, ...opts.issuer.chain];
  } else {
    const notBefore = wholeSeconds((opts.now ?? (() => new Date()))());
    certificate = await signCertificate(
      {
        serialNumber: newSerialNumber(),
        signatureAlgorithm: config.signatureAlgorithm,
        issuer: subject,
        notBefore,
        notAfter: new Date(notBefore.getTime() + config.lifetimes.caDays * DAY_MS),
        subject,
        subjectPublicKeyInfo: spki,
        extensions: caExtensions(spki, keyIdentifier(spki, 'ca.spki')),
      },
      keyStore,
    );
    chain = [certificate];
  }
  writeFileSync(join(dir, CA_FILES.config), serializeCaConfig(config), { mode: 0o644 });
  writeFileSync(join(dir, CA_FILES.certificate), certificatePem(certificate), { mode: 0o644 });
  writeFileSync(join(dir, CA_FILES.chain), chain.map(certificatePem).join(''), { mode: 0o644 });
  const repository =
    opts.repository ?? (await openSqliteCaRepository({ path: join(dir, CA_FILES.database) }));
  const ctx = createCaContext({
    dir,
    config,
    keyStore,
    repository,
    certificate,
    chain,
    snpVerifier: opts.snpVerifier,
    snpCollateral: opts.snpCollateral,
    checkRevocations: opts.checkRevocations,
    now: opts.now,
  });
  const cert = parseCertificate(certificate);
  const kind = opts.issuer ? 'intermediate' : 'root';
  await repository.insertCertificate(
    {
      serial: serialHex(cert.serialNumber),
      kind,
      instanceId: null,
      identityJson: null,
      spkiSha256: spkiSha256(spki),
      ekPublic: null,
      notBefore: cert.notBefore.getTime(),
      notAfter: cert.notAfter.getTime(),
      issuedAt: caNow(ctx).getTime(),
      der: certificate,
      c509: null,
      revokedAt: null,
      revocationReason: null,
    },
    logDraft(ctx, 'ca.init', null, 'accept', ['ca.initialized'], {
      keyType: type,
      kind,
      certificateSha256: toHex(sha256(certificate)),
    }),
  );
  return ctx;
}
