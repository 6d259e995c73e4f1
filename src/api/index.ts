/**
 * The broker's HTTP API: the native /v1 guest API, the admin API, health, metrics and OpenAPI
 * (docs/api.md), plus the KBS routes from src/kbs.
 */

export {
  type NativeAttestInput,
  type NativeAttestResult,
  NativeService,
  REPORT_DATA_PARAMS,
} from '../native/service.js';
export { createTeeVerifier, type SnpTeeConfig, type TeeConfig } from '../policy/tees.js';
export { checkBearer, describePublicKey, openAdminToken, openSigningKey } from './broker-keys.js';
export { ApiError, type ErrorBody, errorResponse, STATUS_BY_CODE, STATUS_BY_REASON } from './http-errors.js';
export { parseHostPort } from './listen-address.js';
export { Metrics } from './metrics.js';
export { type BrokerServerOptions, buildBrokerServer, DEFAULT_BODY_LIMIT } from './server.js';
export {
  type BrokerParts,
  type KbsContext,
  type RunningBroker,
  type StartBrokerOptions,
  startBroker,
} from './start.js';
