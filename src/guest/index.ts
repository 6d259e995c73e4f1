/** The SVSM side of key release as a library: attest, unwrap, seal/unseal state; report providers. */
export { type BootGuestOptions, type BootResult, bootGuest, pendingPathOf } from './boot.js';
export { type AproxyChannel, type ChannelOpener, GuestChannel } from './channel.js';
export { type ConfigfsTsmOptions, ConfigfsTsmProvider, type TsmFs } from './configfs-tsm.js';
export { pvChannelOverVmmSocket, pvKeyReleaseOpener } from './pv-key-release.js';
export {
  type ReportProvider,
  type ReportResult,
  type SnpFirmwareLike,
  simulatorReportProvider,
} from './report-provider.js';
export {
  GuestSession,
  type GuestSessionInit,
  HaltRequired,
  type HeartbeatLoop,
  type HeartbeatLoopOptions,
  type LeaseAck,
  verifyLeaseAck,
} from './session.js';
export * from './state-file.js';
export { bootWithUefiVariables, type UefiBoot } from './uefi-boot.js';
export { SealedUefiStore, VOUCHSAFE_GUID } from './uefi-vars.js';
