import { adminCaller, type HttpAdminOptions } from '../api/admin-client.js';
import { CollateralUnavailable } from '../errors.js';
import type { TokenKeyRotation } from './broker-kbs.js';

/**
 * Calls a running broker's `POST /v1/admin/token-keys/rotate` (what `vouchsafe token-keys rotate` does).
 * Throws the broker's refusal as an AttestationError with its code and reason; InvalidArgument
 * `admin.url`; CollateralUnavailable `admin.unreachable`, `admin.bad_response`.
 */
export async function rotateTokenKeyOverHttp(o: HttpAdminOptions): Promise<TokenKeyRotation> {
  const body = await adminCaller(o)<{ [k: string]: unknown } | null>('POST', '/v1/admin/token-keys/rotate');
  if (!body || typeof body.kid !== 'string' || !Array.isArray(body.published)) {
    throw new CollateralUnavailable('admin.bad_response', 'the broker answered without the expected JSON');
  }
  return body as unknown as TokenKeyRotation;
}
