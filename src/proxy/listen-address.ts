import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { InvalidArgument } from '../errors.js';

/** Where the proxy listens (or the guest connects): a unix socket path or a TCP host and port. */
export type ChannelAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (IPv6 hosts in brackets: `tcp:[::1]:1995`). Node has no AF_VSOCK;
 * bridge vsock port 1995 to a unix socket with socat (docs/protocol.md). Throws InvalidArgument
 * `proxy.address`.
 */
export function parseChannelAddress(s: string): ChannelAddress {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (path.length === 0 || path.includes('\0'))
      throw new InvalidArgument('proxy.address', 'empty unix path');
    return { kind: 'unix', path };
  }
  if (s.startsWith('tcp:')) {
    const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(s);
    const port = m ? Number(m[3]) : Number.NaN;
    if (!m || !(port >= 0 && port <= 65535)) {
      throw new InvalidArgument('proxy.address', `expected tcp:HOST:PORT, got ${s}`);
    }
    return { kind: 'tcp', host: (m[1] ?? m[2])!, port };
  }
  throw new InvalidArgument('proxy.address', `expected unix:PATH or tcp:HOST:PORT, got ${s}`);
}

export function formatChannelAddress(a: ChannelAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`;
}

/**
 * Before binding a unix socket: if a file is at `path`, remove it only if it is a socket that nobody
 * listens on (a stale one left by a crashed proxy). aproxy's `--force` removes whatever is there; this
 * refuses to remove a live socket (InvalidArgument `proxy.listen.in_use`) or a non-socket file
 * (`proxy.listen.not_socket`). There is a window between the probe and the bind; two proxies starting at
 * the same instant on one path can still race.
 */
export async function removeStaleUnixSocket(path: string): Promise<boolean> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  if (!st.isSocket()) {
    throw new InvalidArgument(
      'proxy.listen.not_socket',
      `${path} exists and is not a socket; not removing it`,
    );
  }
  if (await isListening(path)) {
    throw new InvalidArgument('proxy.listen.in_use', `another process is listening on ${path}`);
  }
  await unlink(path);
  return true;
}

function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (live: boolean) => {
      s.destroy();
      resolve(live);
    };
    s.once('connect', () => done(true));
    // ECONNREFUSED: a socket file nobody listens on. Any other error: do not guess, keep the file.
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED'));
    s.setTimeout(1000, () => done(true)); // a hung listener is still a listener
  });
}
