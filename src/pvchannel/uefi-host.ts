import { readFile } from 'node:fs/promises';
import { PvCall } from '../formats/pvchannel/constants.js';
import {
  decodeGetNextRequest,
  decodeGetRequest,
  decodeQueryInfoRequest,
  decodeSetRequest,
  EfiStatus,
  EfiVariable,
  encodeGetAnswer,
  encodeGetNextAnswer,
  encodeQueryInfoAnswer,
  encodeSetAnswer,
  type SetRequest,
  type VariableName,
} from '../formats/pvchannel/uefi.js';
import {
  decodeHostStoreFile,
  encodeHostStoreFile,
  type HostVariable,
} from '../formats/pvchannel/uefi-host-file.js';
import { writeFileDurably } from '../util/durable-file.js';
import type { CallHandler } from './device.js';

/** Sizes the host offers one instance (UEFI QueryVariableInfo; docs/pvchannel.md §7.3). */
export interface UefiHostLimits {
  /** Total bytes of names and data, plus RECORD_OVERHEAD per variable (default 256 KiB). */
  readonly maxStorage: number;
  /** Bound on one variable's name plus data (default 64 KiB). */
  readonly maxVariable: number;
}
export const DEFAULT_UEFI_LIMITS: UefiHostLimits = { maxStorage: 256 * 1024, maxVariable: 64 * 1024 };
/** What one record costs beyond its name and data (its header in the file). */
export const RECORD_OVERHEAD = 28;

/** Attribute bits the host cannot honour on data it cannot read: the guest appends and authenticates. */
const HOST_UNSUPPORTED = EfiVariable.AppendWrite | EfiVariable.AuthenticatedWriteAccess;

function sameName(a: VariableName, b: VariableName): boolean {
  return Buffer.compare(a.guid, b.guid) === 0 && Buffer.compare(a.name, b.name) === 0;
}

/**
 * One instance's non-volatile UEFI variables, as the host keeps them (docs/pvchannel.md §7.3): in memory,
 * written through to one file (atomic rename, fsync) on every change. The values are opaque, sealed by the
 * guest; the host implements only UEFI's storage semantics (UEFI 2.10 §8.2): lookup by vendor GUID and name,
 * SetVariable's delete and attribute rules, GetNextVariableName in storage order, QueryVariableInfo sizes.
 * Nothing here is trusted by the guest: it authenticates every value, and the order, itself.
 *
 * Why a file per instance and not the broker's store: the device runs beside its VM on the host, needs no
 * broker connection to serve firmware, and the file moves with the VM on migration like its disk; since the
 * content is sealed and rollback is caught by the guest against the broker's commitment, where the host keeps
 * the bytes adds no trust.
 */
export class UefiHostStore {
  private constructor(
    private readonly path: string | undefined,
    private vars: HostVariable[],
    readonly limits: UefiHostLimits,
  ) {}

  /** Opens (or starts empty) the store at `path`; `undefined` keeps it in memory (tests). */
  static async open(
    path: string | undefined,
    limits: UefiHostLimits = DEFAULT_UEFI_LIMITS,
  ): Promise<UefiHostStore> {
    let vars: HostVariable[] = [];
    if (path !== undefined) {
      try {
        vars = decodeHostStoreFile(new Uint8Array(await readFile(path)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return new UefiHostStore(path, vars, limits);
  }

  /** The variables in storage order (what a host sees: names, attributes, sealed data). */
  list(): readonly HostVariable[] {
    return this.vars;
  }

  private used(): number {
    return this.vars.reduce((n, v) => n + RECORD_OVERHEAD + v.name.length + v.data.length, 0);
  }

  /** GetVariable (§8.2.1). */
  get(v: VariableName): { status: EfiStatus; attributes: number; data: Uint8Array } {
    const hit = this.vars.find((x) => sameName(x, v));
    if (!hit) return { status: EfiStatus.NotFound, attributes: 0, data: new Uint8Array(0) };
    return { status: EfiStatus.Success, attributes: hit.attributes, data: hit.data };
  }

  /**
   * GetNextVariableName (§8.2.2): an empty name starts the walk; a name that is not stored is
   * INVALID_PARAMETER; after the last, NOT_FOUND. Storage order, as edk2's variable driver walks its store.
   */
  getNext(v: VariableName): { status: EfiStatus; next?: VariableName } {
    let i = 0;
    if (v.name.length > 0) {
      const at = this.vars.findIndex((x) => sameName(x, v));
      if (at < 0) return { status: EfiStatus.InvalidParameter };
      i = at + 1;
    }
    const next = this.vars[i];
    return next ? { status: EfiStatus.Success, next } : { status: EfiStatus.NotFound };
  }

  /**
   * SetVariable (§8.2.3): attributes 0 or no data deletes (NOT_FOUND when absent); the host keeps only
   * non-volatile variables (volatile ones live in the guest's firmware); RUNTIME_ACCESS needs
   * BOOTSERVICE_ACCESS; a stored variable keeps its attributes; APPEND_WRITE and the deprecated
   * AUTHENTICATED_WRITE_ACCESS are UNSUPPORTED here (the guest appends and checks authenticated writes before
   * it seals); too large is INVALID_PARAMETER, no room OUT_OF_RESOURCES.
   */
  async set(s: SetRequest): Promise<EfiStatus> {
    const at = this.vars.findIndex((x) => sameName(x, s));
    if (s.attributes === 0 || s.data.length === 0) {
      if (at < 0) return EfiStatus.NotFound;
      return this.commit(this.vars.filter((_, i) => i !== at));
    }
    const a = s.attributes;
    if (a & HOST_UNSUPPORTED) return EfiStatus.Unsupported;
    if (!(a & EfiVariable.NonVolatile)) return EfiStatus.InvalidParameter;
    if (a & EfiVariable.RuntimeAccess && !(a & EfiVariable.BootserviceAccess))
      return EfiStatus.InvalidParameter;
    if (at >= 0 && this.vars[at]!.attributes !== a) return EfiStatus.InvalidParameter;
    if (s.name.length + s.data.length > this.limits.maxVariable) return EfiStatus.InvalidParameter;
    const old = at >= 0 ? RECORD_OVERHEAD + this.vars[at]!.name.length + this.vars[at]!.data.length : 0;
    const cost = RECORD_OVERHEAD + s.name.length + s.data.length;
    if (this.used() - old + cost > this.limits.maxStorage) return EfiStatus.OutOfResources;
    const rec: HostVariable = { guid: s.guid, name: s.name, attributes: a, data: s.data };
    // An update keeps the variable's place in storage order; a new one goes last.
    return this.commit(at >= 0 ? this.vars.map((x, i) => (i === at ? rec : x)) : [...this.vars, rec]);
  }

  /** QueryVariableInfo (§8.2.4) for non-volatile storage; volatile storage is the guest's own. */
  queryInfo(attributes: number): { status: EfiStatus; max: number; remaining: number; maxVariable: number } {
    const none = { max: 0, remaining: 0, maxVariable: 0 };
    if (attributes === 0) return { status: EfiStatus.InvalidParameter, ...none };
    if (attributes & EfiVariable.RuntimeAccess && !(attributes & EfiVariable.BootserviceAccess))
      return { status: EfiStatus.InvalidParameter, ...none };
    if (!(attributes & EfiVariable.NonVolatile) || attributes & HOST_UNSUPPORTED)
      return { status: EfiStatus.Unsupported, ...none };
    const max = this.limits.maxStorage;
    return {
      status: EfiStatus.Success,
      max,
      remaining: max - this.used(),
      maxVariable: this.limits.maxVariable,
    };
  }

  private async commit(next: HostVariable[]): Promise<EfiStatus> {
    if (this.path !== undefined) await writeFileDurably(this.path, encodeHostStoreFile(next));
    this.vars = next;
    return EfiStatus.Success;
  }
}

/** The four UEFI call handlers over one instance's store (docs/pvchannel.md §7.3), by call id. */
export function uefiHandlers(store: UefiHostStore): Record<number, CallHandler> {
  return {
    [PvCall.UefiGet]: (req) => encodeGetAnswer(store.get(decodeGetRequest(req))),
    [PvCall.UefiSet]: async (req) => encodeSetAnswer(await store.set(decodeSetRequest(req))),
    [PvCall.UefiGetNext]: (req) => {
      const r = store.getNext(decodeGetNextRequest(req));
      return encodeGetNextAnswer({
        status: r.status,
        next: r.next ?? { guid: new Uint8Array(16), name: new Uint8Array(0) },
      });
    },
    [PvCall.UefiQueryInfo]: (req) => {
      const q = store.queryInfo(decodeQueryInfoRequest(req));
      return encodeQueryInfoAnswer({
        status: q.status,
        maximumVariableStorageSize: BigInt(q.max),
        remainingVariableStorageSize: BigInt(q.remaining),
        maximumVariableSize: BigInt(q.maxVariable),
      });
    },
  };
}
