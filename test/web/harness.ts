import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PlatformCa } from '../../src/ca/platform-ca.js';
import { type Authenticate, registerDashboard } from '../../src/web/index.js';
import { type BrokerStack, type Json, startBrokerStack } from '../helpers/broker.js';
import { ROOT } from '../helpers/paths.js';

export const ASSETS = join(ROOT, 'dist', 'web-assets');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Builds the dashboard bundle (scripts/build-web.mjs, as `npm run build` does) when web/ is newer. */
export function ensureAssets(): void {
  const index = join(ASSETS, 'index.html');
  if (existsSync(index) && statSync(join(ASSETS, 'app.js')).mtimeMs >= newest(join(ROOT, 'web'))) return;
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
}

export interface UiSession {
  readonly cookie: string;
  readonly csrf: string;
}

export interface DashboardStack extends BrokerStack {
  readonly ui: string;
  signIn(credential?: string): Promise<UiSession>;
  /** A dashboard API call (`path` under /ui/api/) with a session's cookie and, unless told, its CSRF token. */
  api(
    s: UiSession | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json; headers: Headers }>;
}

/** A broker (SQLite, simulator root) serving the dashboard under /ui/. */
export async function startDashboardStack(
  o: {
    authenticate?: Authenticate;
    ca?: PlatformCa;
    caDir?: string;
    project?: string;
    tls?: { certPath: string; keyPath: string };
    signInLimit?: { max: number; windowMs: number };
    /** An offline AMD KDS client with its cache in `<data>/kds-cache` (default: no KDS). */
    kdsOffline?: boolean;
  } = {},
): Promise<DashboardStack> {
  ensureAssets();
  const stack = await startBrokerStack({
    tmpPrefix: 'vouchsafe-web-',
    ...(o.project ? { identity: { project: o.project } } : {}),
    broker: {
      ...(o.caDir ? { ca: { dir: o.caDir } } : {}),
      ...(o.tls ? { tls: o.tls } : {}),
      ...(o.kdsOffline ? { kds: { offline: true }, crl: 'none' as const } : {}),
      extend: async (app, parts) => {
        await registerDashboard(app, parts, {
          assetsDir: ASSETS,
          ...(o.authenticate ? { authenticate: o.authenticate } : {}),
          ...(o.ca ? { ca: o.ca } : {}),
          ...(o.signInLimit ? { signInLimit: o.signInLimit } : {}),
          feedEveryMs: 50,
        });
      },
    },
  });
  const api: DashboardStack['api'] = (s, method, path, body, headers = {}) =>
    stack.call(method, `/ui/api/${path}`, body, {
      ...(s ? { cookie: s.cookie } : {}),
      ...(s && method !== 'GET' ? { 'x-csrf-token': s.csrf } : {}),
      ...headers,
    });
  return {
    get b() {
      return stack.b;
    },
    chain: stack.chain,
    dir: stack.dir,
    call: stack.call,
    admin: stack.admin,
    register: stack.register,
    firmware: stack.firmware,
    storedKey: stack.storedKey,
    restart: stack.restart,
    onClose: stack.onClose,
    close: stack.close,
    ui: `${stack.b.url}/ui/`,
    api,
    async signIn(credential = stack.b.adminToken) {
      const r = await stack.call('POST', '/ui/api/session', { credential });
      if (r.status !== 200) throw new Error(`sign-in: ${r.status} ${JSON.stringify(r.body)}`);
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
      return { cookie, csrf: r.body.csrf as string };
    },
  };
}
