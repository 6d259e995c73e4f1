import type { Static, TSchema } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import { AttestationError, ErrorCode, type PolicyFailure, PolicyRejected, Unavailable } from '../errors.js';
import { ErrorBody } from './schemas.js';

/**
 * Client-side decoding of /v1 replies against the same TypeBox schemas the server validates and
 * serializes with (wire/schemas.ts), so the contract is written once. Used by the admin client
 * (src/admin/http.ts) and the proxy's native backend (src/proxy/backends/native).
 */

const CODES: readonly string[] = Object.values(ErrorCode);
const REASON = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/;
/** The server's answers for a route it does not have: the URL (or API version) is wrong, not a refusal. */
const ROUTING_REASONS: ReadonlySet<string> = new Set(['api.not_found', 'api.method_not_allowed']);

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();
function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/**
 * `body` as the schema's type, or Unavailable `reason` when it does not match (the server is not speaking
 * this API: a wrong URL, a proxy page, another version).
 */
export function replyAs<T extends TSchema>(schema: T, body: unknown, reason: string): Static<T> {
  const c = checker(schema);
  if (c.Check(body)) return body;
  const first = c.Errors(body).First();
  throw new Unavailable(
    reason,
    `unexpected reply: ${first ? `${first.path || '/'} ${first.message}` : 'does not match the API'}`.slice(
      0,
      300,
    ),
  );
}

/**
 * The one decoder of the API's error replies. Returns undefined for a 2xx. A refusal in the API's shape
 * (ErrorBody with a known code and a dotted reason, status 4xx or 501/503) becomes the AttestationError
 * the server threw (PolicyRejected with its failures); anything else (a 5xx, a route the server does not
 * have, a body that is not an ErrorBody) is Unavailable `reason`: the caller could not get an answer.
 */
export function errorFromReply(status: number, body: unknown, reason: string): AttestationError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const refusalStatus = (status >= 400 && status < 500) || status === 501 || status === 503;
  const c = checker(ErrorBody);
  if (
    refusalStatus &&
    c.Check(body) &&
    CODES.includes(body.code) &&
    REASON.test(body.reason) &&
    body.reason.length <= 128 &&
    !ROUTING_REASONS.has(body.reason)
  ) {
    if (body.code === ErrorCode.PolicyRejected && body.failures && body.failures.length > 0) {
      return new PolicyRejected(body.failures as PolicyFailure[]);
    }
    return new AttestationError(body.code as ErrorCode, body.reason, body.message.slice(0, 512));
  }
  return new Unavailable(reason, `the server answered HTTP ${status}`);
}
