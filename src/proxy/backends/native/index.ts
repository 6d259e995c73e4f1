/** The host proxy's native backend: the broker's /v1 HTTP API behind the ProxyBackend interface. */
export { BrokerUnavailable } from './errors.js';
export { checkBrokerUrl, type JsonReply, type PostJson } from './http-client.js';
export { createNativeBackend, type NativeBackendOptions } from './native-backend.js';
