/**
 * A loopback stand-in for AMD KDS over real HTTP (127.0.0.1, a free port) that serves the simulator's VCEK
 * and cert chain at KDS's URL shapes (/vcek/v1/<product>/<hwid>?..., /vcek/v1/<product>/cert_chain), and a
 * CRL at /vcek/v1/<product>/crl (by default an empty one from the chain's ARK, fresh for a year; `setCrl`
 * replaces it, `null` answers 503), so a broker started with `kds: { baseUrl }` fetches them exactly as it
 * would from kdsintf.amd.com.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodePem } from '../../src/formats/pem.js';
import { createCrl, type SimChain } from '../../src/sim/snp/index.js';

export interface FakeKds {
  readonly url: string;
  /** The paths requested so far, in order. */
  readonly served: readonly string[];
  /** What /vcek/v1/<product>/crl serves from now on (DER), or `null`: HTTP 503 (KDS failing). */
  setCrl(der: Uint8Array | null): void;
  close(): Promise<void>;
}

export async function startFakeKds(chain: SimChain, product = 'Milan'): Promise<FakeKds> {
  const served: string[] = [];
  let crl: Uint8Array | null = await createCrl(chain, {
    revokedSerials: [],
    thisUpdate: new Date(Date.now() - 3_600_000),
    nextUpdate: new Date(Date.now() + 365 * 86_400_000),
  });
  const vcekPath = new RegExp(`^/vcek/v1/${product}/[0-9a-f]{128}$`);
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://kds').pathname;
    served.push(path);
    if (path === `/vcek/v1/${product}/cert_chain`) {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      res.end(encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der));
    } else if (path === `/vcek/v1/${product}/crl`) {
      if (crl) res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(Buffer.from(crl));
      else res.writeHead(503).end();
    } else if (vcekPath.test(path)) {
      res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' });
      res.end(Buffer.from(chain.vcek.der));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    setCrl: (der) => {
      crl = der;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
