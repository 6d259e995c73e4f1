import { randomBytes } from 'node:crypto';
import { BindingMismatch, MalformedEvidence, Unavailable } from '../errors.js';
import { PvCall } from '../formats/pvchannel/constants.js';
import {
  decodeGetAnswer,
  decodeGetNextAnswer,
  decodeQueryInfoAnswer,
  decodeSetAnswer,
  EfiStatus,
  EfiVariable,
  encodeGetNextRequest,
  encodeGetRequest,
  encodeQueryInfoRequest,
  encodeSetRequest,
  nameFromString,
  type VariableName,
} from '../formats/pvchannel/uefi.js';
import type { PvClient } from '../pvchannel/client.js';
import { ctEqual } from '../util/bytes.js';
import {
  decodeIndexBody,
  encodeIndexBody,
  type IndexEntry,
  openRecord,
  parseRecordHeader,
  RecordKind,
  SEAL_OVERHEAD,
  sealRecord,
  sha256,
  VariableRollback,
} from './uefi-seal.js';

/** The vendor GUID of the store's own index slots (never shown to firmware). */
export const VOUCHSAFE_GUID = Uint8Array.from(Buffer.from('6d1a4c3e9b2f4f0a8c5e7d3b1a2f4e61', 'hex'));
const INDEX_NAMES = [nameFromString('VouchsafeVarIndex0'), nameFromString('VouchsafeVarIndex1')] as const;
/** Bound on host entries skipped in one GetNextVariableName step. */
const MAX_SKIPPED = 256;
const INDEX_ATTRIBUTES = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess;

/** The index after a sealing-key rotation rewrapped it (rewrapIndex). */
export interface Rewrapped {
  readonly root: Uint8Array;
  readonly generation: bigint;
  /** The index key it is now sealed under (copy it; the caller zeroes its own). */
  readonly key: Uint8Array;
}

/**
 * Called after every change with the new store root; it must commit it to the broker before returning. When
 * the commit found the sealing key rotated, it rewrapped the new index under the new key and returns that.
 */
export type CommitRoot = (root: Uint8Array, previous: Uint8Array | null) => Promise<Rewrapped | null>;

export interface SealedStoreOptions {
  readonly client: PvClient;
  /** The index key, from deriveVariableKey (the store copies it; zeroize yours). */
  readonly key: Uint8Array;
  /** The instance binding of the boot (state-file.ts instanceBindingOf). */
  readonly instanceBinding: Uint8Array;
  /**
   * The root the broker has committed for this instance's store (what the boot stated and the broker
   * accepted), or null when no store was ever committed.
   */
  readonly committedRoot: Uint8Array | null;
  readonly commit: CommitRoot;
}

function same(a: VariableName, b: VariableName): boolean {
  return ctEqual(a.guid, b.guid) && a.name.length === b.name.length && ctEqual(a.name, b.name);
}

function isIndexSlot(v: VariableName): boolean {
  return (
    same(v, { guid: VOUCHSAFE_GUID, name: INDEX_NAMES[0] }) ||
    same(v, { guid: VOUCHSAFE_GUID, name: INDEX_NAMES[1] })
  );
}

async function hostGet(
  client: PvClient,
  v: VariableName,
): Promise<{ status: EfiStatus; attributes: number; data: Uint8Array }> {
  return decodeGetAnswer(await client.call(PvCall.UefiGet, encodeGetRequest(v)));
}

async function hostSet(
  client: PvClient,
  v: VariableName,
  attributes: number,
  data: Uint8Array,
): Promise<EfiStatus> {
  return decodeSetAnswer(await client.call(PvCall.UefiSet, encodeSetRequest({ ...v, attributes, data })));
}

/**
 * The index slot a boot must state: of the two slots on the host, the sealed blobs present (unauthenticated
 * until the broker accepts the root and the store opens it), newest generation first. The boot states the
 * first; on `broker.rollback` it tries the next (a crash between writing an index and committing it leaves the
 * committed one in the other slot).
 */
export async function indexCandidates(client: PvClient): Promise<Uint8Array[]> {
  const found: { gen: bigint; blob: Uint8Array }[] = [];
  for (const name of INDEX_NAMES) {
    const a = await hostGet(client, { guid: VOUCHSAFE_GUID, name });
    if (a.status !== EfiStatus.Success) continue;
    try {
      found.push({ gen: parseRecordHeader(a.data).generation, blob: a.data });
    } catch {
      // A malformed slot cannot be the committed one; the broker would refuse its root anyway.
    }
  }
  return found.sort((x, y) => (x.gen > y.gen ? -1 : x.gen < y.gen ? 1 : 0)).map((f) => f.blob);
}

/**
 * A sealing-key rotation (docs/broker.md "Sealing keys"): the index whose SHA-256 is `root` is opened with the
 * key derived from the older sealing key and sealed again, unchanged (same data key, same entries), under the
 * current one at the next generation, in the other slot — or, with `inPlace`, at its own generation in its
 * own slot, for an index not yet committed (a SetVariable's, whose commit found the rotation: the other slot
 * holds the committed index and must survive until the commit). The records are untouched. The boot that
 * found the rotation commits the new root with the state it reseals under the new key, so both move
 * together; a crash before that commit leaves the old state and the old index, and the next boot rotates
 * again. Null when `root` is null (no store).
 */
export async function rewrapIndex(
  client: PvClient,
  root: Uint8Array | null,
  keys: { readonly previous: Uint8Array; readonly current: Uint8Array },
  instanceBinding: Uint8Array,
  inPlace = false,
): Promise<Rewrapped | null> {
  if (root === null) return null;
  const place = (name: Uint8Array) => ({
    instanceBinding,
    guid: VOUCHSAFE_GUID,
    name,
    attributes: INDEX_ATTRIBUTES,
  });
  for (const blob of await indexCandidates(client)) {
    if (!ctEqual(sha256(blob), root)) continue;
    const gen = parseRecordHeader(blob).generation;
    const from = INDEX_NAMES[Number(gen % 2n)]!;
    const toGen = inPlace ? gen : gen + 1n;
    const to = INDEX_NAMES[Number(toGen % 2n)]!;
    const opened = openRecord(keys.previous, RecordKind.Index, place(from), blob);
    const index = sealRecord(keys.current, RecordKind.Index, toGen, place(to), opened.body);
    opened.body.fill(0);
    const st = await hostSet(client, { guid: VOUCHSAFE_GUID, name: to }, INDEX_ATTRIBUTES, index);
    if (st !== EfiStatus.Success)
      throw new Unavailable('uefi.host', `the host did not store the index (EFI status ${st})`);
    return { root: sha256(index), generation: toGen, key: Uint8Array.from(keys.current) };
  }
  throw new BindingMismatch('uefi.root', 'the host holds no variable index with the committed root');
}

/**
 * UEFI variables as the SVSM serves them to firmware (UEFI 2.10 §8.2), kept by the host through the pvchannel
 * UEFI calls but sealed here (uefi-seal.ts): the host reads no value and can neither forge, reorder nor roll
 * back the store or any one variable. Every change is committed to the broker (`commit`) before set()
 * returns, so a later boot states, and the broker checks, the newest root.
 *
 * Errors: VariableRollback (ERR_REFUSED) `uefi.rollback` / `uefi.missing`; SignatureInvalid `uefi.auth`;
 * BindingMismatch `uefi.order`, `uefi.root`; MalformedEvidence `uefi.*`; Unavailable `uefi.host` when the
 * host refuses to store what it is given; the channel's own `pvchannel.*` errors.
 */
export class SealedUefiStore {
  private entries: IndexEntry[] = [];
  private generation = 0n;
  private root: Uint8Array | null;
  private key: Uint8Array;
  /** The records' key, kept in the index (random for a new store). */
  private dataKey: Uint8Array = new Uint8Array(randomBytes(32));

  private constructor(private readonly o: SealedStoreOptions) {
    this.key = Uint8Array.from(o.key);
    this.root = o.committedRoot;
  }

  /**
   * Opens the store whose root the broker committed: fetches both index slots, takes the one whose SHA-256 is
   * the committed root (none: `uefi.root`, a rollback or a store from elsewhere), and authenticates it.
   * With no committed root the store starts empty, whatever the host holds.
   */
  static async open(o: SealedStoreOptions): Promise<SealedUefiStore> {
    const s = new SealedUefiStore(o);
    if (o.committedRoot === null) return s;
    for (const blob of await indexCandidates(o.client)) {
      if (!ctEqual(sha256(blob), o.committedRoot)) continue;
      const slot = INDEX_NAMES[Number(parseRecordHeader(blob).generation % 2n)]!;
      const opened = openRecord(
        s.key,
        RecordKind.Index,
        s.place({ guid: VOUCHSAFE_GUID, name: slot }, INDEX_ATTRIBUTES),
        blob,
      );
      const body = decodeIndexBody(opened.body);
      opened.body.fill(0);
      s.entries = body.entries;
      s.dataKey = body.dataKey;
      s.generation = opened.generation;
      return s;
    }
    throw new BindingMismatch('uefi.root', 'the host holds no variable index with the committed root');
  }

  /** The root now committed (SHA-256 of the current index), null for a store never written. */
  get currentRoot(): Uint8Array | null {
    return this.root;
  }

  private place(v: VariableName, attributes: number) {
    return { instanceBinding: this.o.instanceBinding, guid: v.guid, name: v.name, attributes };
  }

  private find(v: VariableName): number {
    return this.entries.findIndex((e) => same(e, v));
  }

  /** GetVariable: the value, opened and checked against the index; null when the index lists no such variable. */
  async get(v: VariableName): Promise<{ attributes: number; data: Uint8Array } | null> {
    const at = this.find(v);
    if (at < 0 || isIndexSlot(v)) return null;
    const e = this.entries[at]!;
    const a = await hostGet(this.o.client, v);
    if (a.status !== EfiStatus.Success) {
      throw new VariableRollback('uefi.missing', 'the host no longer holds a variable the index lists');
    }
    if (a.attributes !== e.attributes)
      throw new BindingMismatch('uefi.attributes', 'the host changed the attributes');
    const opened = openRecord(this.dataKey, RecordKind.Variable, this.place(v, e.attributes), a.data);
    // Authentic but not the version the index names: an older record served again (single-variable rollback).
    if (opened.generation !== e.generation || !ctEqual(sha256(a.data), e.digest)) {
      opened.body.fill(0);
      // Newer than the index: this guest's own write whose commit never reached the broker (a crash or a
      // dropped connection between SetVariable's write and its commit). Neither value is served: SET heals it.
      if (opened.generation > e.generation) {
        throw new VariableRollback('uefi.uncommitted', 'the variable was rewritten but never committed');
      }
      throw new VariableRollback(
        'uefi.rollback',
        'the host served another version of the variable than the committed one',
      );
    }
    return { attributes: e.attributes, data: opened.body };
  }

  /**
   * GetNextVariableName (§8.2.2): the successor by the index, after checking the host's GET_NEXT walk gives
   * the same one (skipping the store's own index slots), so a host that reorders, hides or inserts names is
   * caught (`uefi.order`). Null at the end; `uefi.not_found` (InvalidParameter in UEFI) for an unknown name.
   */
  async getNext(v: VariableName | null): Promise<VariableName | null> {
    let i = 0;
    if (v !== null) {
      const at = this.find(v);
      if (at < 0)
        throw new MalformedEvidence(
          'uefi.not_found',
          'GetNextVariableName of a variable that does not exist',
        );
      i = at + 1;
    }
    const expected = this.entries[i];
    let cursor: VariableName = v ?? { guid: new Uint8Array(16), name: new Uint8Array(0) };
    // Host entries the index does not list (its own slots; a write whose commit never arrived) are skipped:
    // they are never shown. A bound keeps a host from holding the guest in the walk.
    for (let hops = 0; hops < MAX_SKIPPED; hops++) {
      const a = decodeGetNextAnswer(
        await this.o.client.call(PvCall.UefiGetNext, encodeGetNextRequest(cursor)),
      );
      const got = a.status === EfiStatus.Success ? a.next : null;
      if (got !== null && (isIndexSlot(got) || this.find(got) < 0)) {
        cursor = got;
        continue;
      }
      if (got === null && expected === undefined) return null;
      if (got !== null && expected !== undefined && same(got, expected))
        return { guid: expected.guid, name: expected.name };
      break;
    }
    throw new BindingMismatch(
      'uefi.order',
      'the host walks the variables in another order than the committed index',
    );
  }

  /** Every variable name, in order (a whole GetNextVariableName walk, each step checked). */
  async names(): Promise<VariableName[]> {
    const out: VariableName[] = [];
    for (let v = await this.getNext(null); v !== null; v = await this.getNext(v)) out.push(v);
    return out;
  }

  /**
   * SetVariable (§8.2.3), non-volatile: seals the value, stores it, writes the next index to the other slot,
   * and commits the new root before returning. Empty data deletes. The host's UEFI status is returned when it
   * refuses (e.g. OUT_OF_RESOURCES); nothing is committed then.
   */
  async set(v: VariableName, attributes: number, data: Uint8Array): Promise<EfiStatus> {
    if (isIndexSlot(v)) return EfiStatus.InvalidParameter;
    const at = this.find(v);
    const gen = this.generation + 1n;
    let next: IndexEntry[];
    if (data.length === 0 || attributes === 0) {
      if (at < 0) return EfiStatus.NotFound;
      const st = await hostSet(this.o.client, v, 0, new Uint8Array(0));
      if (st !== EfiStatus.Success) return st;
      next = this.entries.filter((_, i) => i !== at);
    } else {
      const sealed = sealRecord(this.dataKey, RecordKind.Variable, gen, this.place(v, attributes), data);
      const st = await hostSet(this.o.client, v, attributes, sealed);
      if (st !== EfiStatus.Success) return st;
      const e: IndexEntry = {
        guid: Uint8Array.from(v.guid),
        name: Uint8Array.from(v.name),
        attributes,
        generation: gen,
        digest: sha256(sealed),
      };
      next = at >= 0 ? this.entries.map((x, i) => (i === at ? e : x)) : [...this.entries, e];
    }
    const slot = { guid: VOUCHSAFE_GUID, name: INDEX_NAMES[Number(gen % 2n)]! };
    const index = sealRecord(
      this.key,
      RecordKind.Index,
      gen,
      this.place(slot, INDEX_ATTRIBUTES),
      encodeIndexBody({ dataKey: this.dataKey, entries: next }),
    );
    const st = await hostSet(this.o.client, slot, INDEX_ATTRIBUTES, index);
    if (st !== EfiStatus.Success)
      throw new Unavailable('uefi.host', `the host did not store the index (EFI status ${st})`);
    const root = sha256(index);
    const rewrapped = await this.o.commit(root, this.root);
    this.entries = next;
    this.generation = rewrapped?.generation ?? gen;
    this.root = rewrapped?.root ?? root;
    if (rewrapped) {
      this.key.fill(0);
      this.key = Uint8Array.from(rewrapped.key);
    }
    return EfiStatus.Success;
  }

  /** QueryVariableInfo (§8.2.4): the host's sizes, less what sealing and the two index slots take. */
  async queryInfo(
    attributes: number,
  ): Promise<{ status: EfiStatus; max: bigint; remaining: bigint; maxVariable: bigint }> {
    const a = decodeQueryInfoAnswer(
      await this.o.client.call(PvCall.UefiQueryInfo, encodeQueryInfoRequest(attributes)),
    );
    const o = BigInt(SEAL_OVERHEAD);
    const sub = (x: bigint, y: bigint) => (x > y ? x - y : 0n);
    return {
      status: a.status,
      max: a.maximumVariableStorageSize,
      remaining: sub(a.remainingVariableStorageSize, o * BigInt(this.entries.length)),
      maxVariable: sub(a.maximumVariableSize, o),
    };
  }

  /** Zeroes the keys held. */
  close(): void {
    this.key.fill(0);
    this.dataKey.fill(0);
  }
}
