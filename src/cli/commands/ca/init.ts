import { type Command, Option } from 'commander';
import { type CaConfig, certificatePem, PlatformCa } from '../../../ca/index.js';
import { type CommonFlags, withCommon } from './options.js';
import { action, openCa, passphrase, withDatabase } from './run.js';

interface InitFlags extends CommonFlags {
  keyType: 'p384' | 'p256' | 'rsa2048' | 'rsa3072';
  subject: string;
  issuerDir?: string;
  issuerPassphraseFile?: string;
  issuerDatabase?: string;
  crlUrl?: string[];
  caIssuersUrl?: string;
  identityOid?: string;
  key?: string;
}

/** `vouchsafe ca init`: creates a root CA, or an intermediate of the CA in --issuer-dir (docs/ca.md). */
export function registerInit(ca: Command): void {
  withCommon(ca.command('init'))
    .description('create a CA (key, certificate, ca.json, database) in --dir')
    .addOption(
      new Option('--key-type <type>', 'CA key type (ECDSA P-384/P-256, RSA 2048/3072 bits)')
        .choices(['p384', 'p256', 'rsa2048', 'rsa3072'])
        .default('p384'),
    )
    .option('--subject <dn>', 'CA subject, RFC 4514 text', 'CN=Vouchsafe Platform CA')
    .option(
      '--key <pkcs11-uri>',
      'keep the CA key in a PKCS#11 token (p256/p384; made there if absent; PIN from pin-source= or VOUCHSAFE_PKCS11_PIN; docs/keys.md) instead of ca-key.pem',
    )
    .option(
      '--issuer-dir <dir>',
      'make this CA an intermediate, issued by the CA in <dir> (default: a self-signed root)',
    )
    .option(
      '--issuer-passphrase-file <file>',
      'file holding the issuing CA key passphrase (default: its key is not encrypted)',
    )
    .option('--issuer-database <url>', "the issuing CA's database (default: ca.db in --issuer-dir)")
    .option(
      '--crl-url <url...>',
      'one or more CRL distribution point URIs written into issued certificates (default: none)',
    )
    .option(
      '--ca-issuers-url <url>',
      'authorityInfoAccess caIssuers URI written into issued certificates (default: none)',
    )
    .option(
      '--identity-oid <oid>',
      "dotted OID of the instance-identity extension (default: GCE's 1.3.6.1.4.1.11129.2.1.21)",
    )
    .addHelpText(
      'after',
      '\nWrites ca.json (edit it for lifetimes, TPM info, AK subject, SNP roots and policy), ca-key.pem (0600),\nca-cert.pem, ca-chain.pem and ca.db (or the tables in --database). The key is encrypted when --passphrase-file is given.',
    )
    .action(
      action(async (o: InitFlags) => {
        const config: Partial<Omit<CaConfig, 'version' | 'keyType'>> = {
          ...(o.crlUrl ? { crlDistributionPoints: o.crlUrl } : {}),
          ...(o.caIssuersUrl ? { caIssuersUrl: o.caIssuersUrl } : {}),
          ...(o.identityOid ? { identityOid: o.identityOid } : {}),
        };
        const issuer = o.issuerDir
          ? await openCa(o.issuerDir, o.issuerPassphraseFile, o.issuerDatabase)
          : undefined;
        try {
          const created = await withDatabase(o.database, (repository) =>
            PlatformCa.init({
              dir: o.dir,
              keyType: o.keyType,
              subject: o.subject,
              ...(issuer ? { issuer } : {}),
              ...(o.key !== undefined ? { keyUri: o.key } : {}),
              config,
              ...passphrase(o.passphraseFile),
              ...(repository ? { repository } : {}),
            }),
          );
          await created.close();
          if (o.json) {
            process.stdout.write(
              `${JSON.stringify({ dir: o.dir, certificate: Buffer.from(created.certificate).toString('base64') })}\n`,
            );
          } else {
            process.stderr.write(`created ${issuer ? 'intermediate' : 'root'} CA in ${o.dir}\n`);
            process.stdout.write(certificatePem(created.certificate));
          }
        } finally {
          await issuer?.close();
        }
      }),
    );
}
