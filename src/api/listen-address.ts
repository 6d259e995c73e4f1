import { InvalidArgument } from '../errors.js';

/** Parses `HOST:PORT` (IPv6 in brackets: `[::1]:8443`; port 0 picks a free one). Throws InvalidArgument `api.listen`. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new InvalidArgument('api.listen', `expected HOST:PORT (e.g. 127.0.0.1:8443), got ${s}`);
  }
  return { host: (m[1] ?? m[2])!, port };
}
