/** The files of a CA directory and their PEM forms (docs/ca.md "Files of a CA directory"). */

export const CA_FILES = {
  config: 'ca.json',
  key: 'ca-key.pem',
  certificate: 'ca-cert.pem',
  chain: 'ca-chain.pem',
  database: 'ca.db',
} as const;

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** DER certificates from a PEM bundle. */
export function pemCertificates(text: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  return out;
}

export function certificatePem(der: Uint8Array): string {
  return pem('CERTIFICATE', der);
}

export function crlPem(der: Uint8Array): string {
  return pem('X509 CRL', der);
}
