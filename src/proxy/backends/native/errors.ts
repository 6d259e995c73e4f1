import { CollateralUnavailable } from '../../../errors.js';

/**
 * The broker could not be asked or did not answer usefully: unreachable, timed out, a 5xx, or a reply
 * that is not the API's. A CollateralUnavailable (ERR_COLLATERAL_UNAVAILABLE), so the proxy tells the
 * guest "try again later" with the reason, and never crashes:
 * - `native.broker_unreachable`: connection refused, DNS, TLS handshake (e.g. an untrusted certificate);
 * - `native.broker_timeout`: no complete answer within the timeout;
 * - `native.broker_error`: the broker answered 5xx (other than 501/503 refusals) or 404/405 (wrong URL);
 * - `native.bad_response`: the answer is not what the /v1 API returns.
 */
export class BrokerUnavailable extends CollateralUnavailable {}
