/** The host's UEFI variable storage semantics (UEFI 2.10 §8.2) behind calls 5-8, over the page path. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PvCall } from '../../src/formats/pvchannel/constants.js';
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
} from '../../src/formats/pvchannel/uefi.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { InProcessPage, inProcessPageTransport } from '../../src/pvchannel/page-transport.js';
import { UefiHostStore, uefiHandlers } from '../../src/pvchannel/uefi-host.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { ALL, offer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vs-uefi-host-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NV_BS = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess;
const guid = new Uint8Array(16).fill(7);
const v = (s: string) => ({ guid, name: nameFromString(s) });

async function client(path: string | undefined, limits?: { maxStorage: number; maxVariable: number }) {
  const store = await UefiHostStore.open(path, limits);
  const device = new PvDevice({ offer: offer(ALL), handlers: uefiHandlers(store) });
  const c = new PvClient({ transport: inProcessPageTransport(new InProcessPage(device)), want: ALL });
  return {
    c,
    device,
    set: async (name: string, attributes: number, data: Uint8Array) =>
      decodeSetAnswer(await c.call(PvCall.UefiSet, encodeSetRequest({ ...v(name), attributes, data }))),
    get: async (name: string) => decodeGetAnswer(await c.call(PvCall.UefiGet, encodeGetRequest(v(name)))),
    next: async (name: string | null) =>
      decodeGetNextAnswer(
        await c.call(
          PvCall.UefiGetNext,
          encodeGetNextRequest(
            name === null ? { guid: new Uint8Array(16), name: new Uint8Array(0) } : v(name),
          ),
        ),
      ),
    query: async (a: number) =>
      decodeQueryInfoAnswer(await c.call(PvCall.UefiQueryInfo, encodeQueryInfoRequest(a))),
  };
}

describe('UEFI host store (calls 5-8)', () => {
  it('SetVariable rules: NV only, RT needs BS, no attribute change, append and old auth unsupported, delete', async () => {
    const h = await client(undefined);
    assert.equal(await h.set('A', NV_BS, Uint8Array.from([1])), EfiStatus.Success);
    assert.equal(
      await h.set('V', EfiVariable.BootserviceAccess, Uint8Array.from([1])),
      EfiStatus.InvalidParameter,
    );
    assert.equal(
      await h.set('R', EfiVariable.NonVolatile | EfiVariable.RuntimeAccess, Uint8Array.from([1])),
      EfiStatus.InvalidParameter,
    );
    assert.equal(
      await h.set('A', NV_BS | EfiVariable.RuntimeAccess, Uint8Array.from([2])),
      EfiStatus.InvalidParameter,
    );
    assert.equal(
      await h.set('A', NV_BS | EfiVariable.AppendWrite, Uint8Array.from([2])),
      EfiStatus.Unsupported,
    );
    assert.equal(
      await h.set('A', NV_BS | EfiVariable.AuthenticatedWriteAccess, Uint8Array.from([2])),
      EfiStatus.Unsupported,
    );
    assert.deepEqual(await h.get('A'), {
      status: EfiStatus.Success,
      attributes: NV_BS,
      data: Uint8Array.from([1]),
    });
    assert.equal(await h.set('A', 0, new Uint8Array(0)), EfiStatus.Success);
    assert.equal((await h.get('A')).status, EfiStatus.NotFound);
    assert.equal(await h.set('A', 0, new Uint8Array(0)), EfiStatus.NotFound);
  });

  it('GetNextVariableName: storage order, an update keeps its place, unknown name INVALID_PARAMETER, end NOT_FOUND', async () => {
    const h = await client(undefined);
    for (const n of ['C', 'A', 'B']) await h.set(n, NV_BS, Uint8Array.from([1]));
    await h.set('C', NV_BS, Uint8Array.from([2]));
    const walk: string[] = [];
    for (let r = await h.next(null); r.status === EfiStatus.Success; r = await h.next(walk.at(-1)!)) {
      walk.push(Buffer.from(r.next.name).toString('utf16le'));
    }
    assert.deepEqual(walk, ['C', 'A', 'B']);
    assert.equal((await h.next('B')).status, EfiStatus.NotFound);
    assert.equal((await h.next('Z')).status, EfiStatus.InvalidParameter);
  });

  it('QueryVariableInfo sizes; too large INVALID_PARAMETER, full OUT_OF_RESOURCES; the file survives a restart', async () => {
    const path = join(dir, 'vm.vars');
    const h = await client(path, { maxStorage: 200, maxVariable: 100 });
    const q0 = await h.query(NV_BS);
    assert.deepEqual(
      [q0.status, q0.maximumVariableStorageSize, q0.remainingVariableStorageSize, q0.maximumVariableSize],
      [EfiStatus.Success, 200n, 200n, 100n],
    );
    assert.equal((await h.query(0)).status, EfiStatus.InvalidParameter);
    assert.equal((await h.query(EfiVariable.BootserviceAccess)).status, EfiStatus.Unsupported);
    assert.equal(await h.set('Big', NV_BS, new Uint8Array(100)), EfiStatus.InvalidParameter);
    assert.equal(await h.set('X', NV_BS, new Uint8Array(90)), EfiStatus.Success);
    assert.equal((await h.query(NV_BS)).remainingVariableStorageSize, 200n - 28n - 2n - 90n);
    assert.equal(await h.set('Y', NV_BS, new Uint8Array(90)), EfiStatus.OutOfResources);
    const again = await client(path, { maxStorage: 200, maxVariable: 100 });
    assert.equal((await again.get('X')).data.length, 90);
  });

  it('a garbled payload is BAD_PAYLOAD and changes nothing', async () => {
    const h = await client(undefined);
    await h.set('A', NV_BS, Uint8Array.from([1]));
    const bad = encodeSetRequest({ ...v('A'), attributes: NV_BS, data: Uint8Array.from([9]) });
    bad[0x12] = 1; // reserved
    await rejectsCode(
      () => h.c.call(PvCall.UefiSet, bad),
      'ERR_INVALID_ARGUMENT',
      'pvchannel.status.bad_payload',
    );
    assert.deepEqual((await h.get('A')).data, Uint8Array.from([1]));
  });
});
