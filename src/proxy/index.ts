export type { AdmissionRefusal } from './admission.js';
export type * from './backend.js';
export {
  type ForwardOutcome,
  MAX_FORWARDS,
  type ProxyForwarder,
} from './forward-session.js';
export {
  type ChannelAddress,
  formatChannelAddress,
  parseChannelAddress,
  removeStaleUnixSocket,
} from './listen-address.js';
export {
  DEFAULT_LIMITS,
  type ProxyLimits,
  type ProxyOptions,
  type RunningProxy,
  startProxy,
} from './server.js';
export { DEFAULT_TIMEOUTS, type ProxyTimeouts, type SessionOutcome } from './session.js';
