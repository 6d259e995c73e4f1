import type { Logger } from 'pino';
import { isAttestationError } from '../errors.js';
import { sniffDialect } from '../formats/aproxy/dialect.js';
import {
  type ConfigResponse,
  encodeConfigResponse,
  encodeProxyResponse,
  type ProxyRequest,
  parseProxyRequest,
} from '../formats/aproxy/pr1203.js';
import type { BackendContext } from './backend.js';
import type { FramedSocket } from './framed-socket.js';

/**
 * What a PR #1203 listener forwards through (src/proxy/backends/kbs/forwarder.ts KbsForwarder). `newJar`
 * is called once per guest connection: the jar is that guest's alone.
 */
export interface ProxyForwarder {
  config(): ConfigResponse;
  newJar(): ForwardJar;
  forward(req: ProxyRequest, jar: ForwardJar, ctx: BackendContext): Promise<ForwardOutcome>;
}

/** Opaque per-connection cookie state. */
export type ForwardJar = object;

export type ForwardOutcome =
  | {
      readonly outcome: 'forwarded';
      readonly step: 'auth' | 'attest' | 'resource';
      readonly status: number;
      readonly body: string;
    }
  | { readonly outcome: 'refused'; readonly status: number; readonly reason: string }
  | { readonly outcome: 'unavailable'; readonly status: 500; readonly reason: string };

/** Forwarded exchanges one connection may make (auth, attest, resource, and a retry of each). */
export const MAX_FORWARDS = 6;

export type ForwardSessionOutcome =
  | 'released'
  | 'refused'
  | 'malformed'
  | 'dialect_mismatch'
  | 'backend_error'
  | 'peer_closed';

/**
 * Serves a svsm PR #1203 guest after its ConfigRequest: ConfigResponse, then ProxyRequest -> ProxyResponse
 * until EOF (reference svsm-protocol.md §8). Each exchange goes through `call` (the backend deadline and the
 * proxy's closing signal). Ends with `released` once the resource was served with 200; an unparsable
 * request ends the session (as the PR's aproxy), and one that is another dialect's message is logged as
 * `proxy.dialect.mismatch`.
 */
export async function serveForwarding(
  io: FramedSocket,
  forwarder: ProxyForwarder,
  readMs: number,
  log: Logger,
  call: <T>(fn: (ctx: BackendContext) => Promise<T>) => Promise<T>,
): Promise<ForwardSessionOutcome> {
  await io.write(encodeConfigResponse(forwarder.config()));
  const jar = forwarder.newJar();
  let released = false;
  let refusedByKbs = false;
  for (let n = 0; ; n++) {
    const bytes = await io.read(readMs);
    if (bytes === undefined) return released ? 'released' : refusedByKbs ? 'refused' : 'peer_closed';
    let req: ProxyRequest;
    try {
      req = parseProxyRequest(bytes);
    } catch (e) {
      if (!isAttestationError(e)) throw e;
      const seen = sniffDialect(bytes);
      if (seen !== undefined && seen !== 'pr1203') {
        log.info(
          {
            event: 'refused',
            reason: 'proxy.dialect.mismatch',
            listener_dialect: 'pr1203',
            guest_dialect: seen,
          },
          'the guest speaks another dialect than this listener',
        );
        return 'dialect_mismatch';
      }
      log.info({ event: 'refused', code: e.code, reason: e.reason }, 'malformed ProxyRequest');
      return 'malformed';
    }
    if (n >= MAX_FORWARDS) {
      log.info({ event: 'refused', reason: 'proxy.forward.count' }, 'too many forwarded requests');
      await io.write(encodeProxyResponse({ status: 429, body: '' }));
      return 'refused';
    }
    const r = await call((ctx) => forwarder.forward(req, jar, ctx));
    if (r.outcome === 'refused') {
      log.info({ event: 'refused', reason: r.reason, status: r.status }, 'request not forwarded');
      await io.write(encodeProxyResponse({ status: r.status, body: '' }));
      return 'refused';
    }
    if (r.outcome === 'unavailable') {
      log.warn({ event: 'backend_failed', step: 'forward', reason: r.reason }, 'KBS unavailable');
      await io.write(encodeProxyResponse({ status: 500, body: `proxy: ${r.reason}` }));
      continue;
    }
    log.info({ event: 'forwarded', step: r.step, status: r.status }, 'forwarded to the KBS');
    let reply: Uint8Array;
    try {
      reply = encodeProxyResponse({ status: r.status, body: r.body });
    } catch {
      reply = encodeProxyResponse({ status: 500, body: 'proxy: proxy_kbs.bad_response' });
    }
    await io.write(reply);
    if (r.status !== 200) refusedByKbs = true;
    else if (r.step === 'resource') released = true;
  }
}
