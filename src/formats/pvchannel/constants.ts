/**
 * Numbers of the VMM<->SVSM paravirtual firmware channel, protocol version 1 (docs/pvchannel.md). One table
 * each for statuses, call ids, flags, feature bits and port commands; every other pvchannel file names them
 * from here.
 */

/** "VSPV" read as a little-endian u32 (docs/pvchannel.md §2). */
export const PV_MAGIC = 0x56505356;
/** The only page-format/protocol version this code speaks. */
export const PV_VERSION = 1;
/** The request page: one 4 KiB page of shared guest memory. */
export const PAGE_SIZE = 4096;
/** The message header, at offset 0 of the page or record. */
export const HEADER_SIZE = 0x20;
/** Largest payload of one message (one chunk). */
export const MAX_PAYLOAD = PAGE_SIZE - HEADER_SIZE;
/** Default bound on a reassembled (chunked) message, both sides. */
export const DEFAULT_MAX_MESSAGE = 256 * 1024;

/** Header flags (§2). */
export const PvFlag = {
  /** More chunks of this message follow. */
  More: 0x1,
  /** The guest asks for the answer chunk named by `chunk`. */
  Fetch: 0x2,
} as const;
/** Every defined flag bit; the others are reserved and must be zero. */
export const PV_FLAGS_DEFINED = PvFlag.More | PvFlag.Fetch;

/** Status word at 0x0A (§6). */
export const PvStatus = {
  Request: 0x0000,
  Busy: 0x0001,
  Ok: 0x0002,
  ChunkAccepted: 0x0003,
  Malformed: 0x8001,
  BadVersion: 0x8002,
  NotNegotiated: 0x8003,
  NotSupported: 0x8004,
  FeaturesChanged: 0x8005,
  Sequence: 0x8006,
  ChunkSequence: 0x8007,
  TooLarge: 0x8008,
  CallFailed: 0x8009,
  BadPayload: 0x800a,
  Internal: 0x800f,
} as const;
export type PvStatus = (typeof PvStatus)[keyof typeof PvStatus];

/** Status value -> name, for logs and error reasons. */
export const PV_STATUS_NAME: Readonly<Record<number, string>> = Object.freeze(
  Object.assign(
    Object.create(null) as Record<number, string>,
    Object.fromEntries(Object.entries(PvStatus).map(([k, v]) => [v, k])),
  ),
);

/** Call ids (§7). */
export const PvCall = {
  Negotiate: 0x0001,
  GetPlatformIdentity: 0x0002,
  CertifyEk: 0x0003,
  CertifyAk: 0x0004,
  UefiGet: 0x0005,
  UefiSet: 0x0006,
  UefiGetNext: 0x0007,
  UefiQueryInfo: 0x0008,
  KeyRelease: 0x0009,
} as const;
export type PvCall = (typeof PvCall)[keyof typeof PvCall];

/** Feature bits of the u64 bitmap (§7). */
export const PvFeature = {
  PlatformIdentity: 1n << 0n,
  CertifyEk: 1n << 1n,
  CertifyAk: 1n << 2n,
  UefiVariables: 1n << 3n,
  KeyRelease: 1n << 4n,
  C509: 1n << 5n,
} as const;
/** Every defined feature bit; a device never offers and a guest never selects the others. */
export const PV_FEATURES_DEFINED = Object.values(PvFeature).reduce((a, b) => a | b, 0n);

/** The feature bit each call needs; NEGOTIATE needs none (0n). */
export const CALL_FEATURE: Readonly<Record<number, bigint>> = Object.freeze(
  Object.assign(Object.create(null) as Record<number, bigint>, {
    [PvCall.Negotiate]: 0n,
    [PvCall.GetPlatformIdentity]: PvFeature.PlatformIdentity,
    [PvCall.CertifyEk]: PvFeature.CertifyEk,
    [PvCall.CertifyAk]: PvFeature.CertifyAk,
    [PvCall.UefiGet]: PvFeature.UefiVariables,
    [PvCall.UefiSet]: PvFeature.UefiVariables,
    [PvCall.UefiGetNext]: PvFeature.UefiVariables,
    [PvCall.UefiQueryInfo]: PvFeature.UefiVariables,
    [PvCall.KeyRelease]: PvFeature.KeyRelease,
  }),
);

/** Port-only path: values written to the command port (§5). */
export const PortCommand = { Reset: 1, Submit: 2, Rewind: 3 } as const;
/** Port-only path: values read from the command port (§5). */
export const PortState = { Idle: 0, Busy: 1, Ready: 2 } as const;
/** Default port numbers (configuration; §5). */
export const DEFAULT_PORTS = { doorbell: 0x0528, command: 0x0520, data: 0x0524 } as const;
