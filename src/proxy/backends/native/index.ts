/** The host proxy's native backend: the broker's /v1 HTTP API behind the ProxyBackend interface. */
export { createNativeBackend, NATIVE_UNAVAILABLE, type NativeBackendOptions } from './native-backend.js';
