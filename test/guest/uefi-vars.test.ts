/**
 * Sealed UEFI variables over the pvchannel (docs/pvchannel.md §7.3): a real broker (SQLite) and host proxy,
 * the simulated SNP firmware, the vmm-device's UEFI handlers on a host file, and the guest store. The three
 * attacks of issue 11 — read, forge, roll back — each shown refused, plus GET_NEXT reordering and hiding.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Unavailable } from '../../src/errors.js';
import { PvCall } from '../../src/formats/pvchannel/constants.js';
import { EfiStatus, EfiVariable, nameFromString } from '../../src/formats/pvchannel/uefi.js';
import {
  decodeHostStoreFile,
  encodeHostStoreFile,
  type HostVariable,
} from '../../src/formats/pvchannel/uefi-host-file.js';
import { bootGuest } from '../../src/guest/boot.js';
import { GuestChannel } from '../../src/guest/channel.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { bootWithUefiVariables } from '../../src/guest/uefi-boot.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { type CallHandler, PvDevice } from '../../src/pvchannel/device.js';
import { InProcessPage, inProcessPageTransport } from '../../src/pvchannel/page-transport.js';
import { UefiHostStore, uefiHandlers } from '../../src/pvchannel/uefi-host.js';
import type { SimSnpFirmware } from '../../src/sim/snp/firmware.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { addProxy, type BrokerStack, type ProxyParts, startBrokerStack } from '../helpers/broker.js';
import { ALL, offer } from '../pvchannel/helpers.js';

const NV_BS_RT = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess | EfiVariable.RuntimeAccess;
const GUID_A = Uint8Array.from(Buffer.from('8be4df6193ca11d2aa0d00e098032b8c', 'hex'));
const v = (name: string, guid = GUID_A) => ({ guid, name: nameFromString(name) });
const SECRET = new TextEncoder().encode('the boot order is secret-ish');

/** One VM: its host file, the device serving it (the store behind it can be swapped: a host editing its file). */
class Vm {
  host!: UefiHostStore;
  readonly client: PvClient;
  constructor(
    readonly fw: SimSnpFirmware,
    readonly statePath: string,
    readonly hostPath: string,
  ) {
    const handlers: Record<number, CallHandler> = {};
    for (const id of [PvCall.UefiGet, PvCall.UefiSet, PvCall.UefiGetNext, PvCall.UefiQueryInfo]) {
      handlers[id] = (req, ctx) => uefiHandlers(this.host)[id]!(req, ctx);
    }
    const device = new PvDevice({ offer: offer(ALL), handlers });
    this.client = new PvClient({ transport: inProcessPageTransport(new InProcessPage(device)), want: ALL });
  }
  async reload(): Promise<void> {
    this.host = await UefiHostStore.open(this.hostPath);
  }
  file(): HostVariable[] {
    return decodeHostStoreFile(new Uint8Array(readFileSync(this.hostPath)));
  }
  /** The host rewrites its file and restarts its store from it. */
  async tamper(f: (vars: HostVariable[]) => HostVariable[]): Promise<void> {
    writeFileSync(this.hostPath, encodeHostStoreFile(f(this.file())));
    await this.reload();
  }
}

describe('sealed UEFI variables: a host can neither read, forge nor roll back the store', () => {
  let stack: BrokerStack;
  let p: ProxyParts;
  let n = 0;
  before(async () => {
    stack = await startBrokerStack({ tmpPrefix: 'vs-uefi-' });
    p = await addProxy(stack);
  });
  after(() => stack.close());

  async function newVm(): Promise<Vm> {
    const inst = await stack.register();
    const k = ++n;
    const vm = new Vm(
      stack.firmware(inst.hostData),
      p.statePath(`uefi-${k}`),
      join(stack.dir, `uefi-${k}.vars`),
    );
    await vm.reload();
    return vm;
  }
  const boot = (vm: Vm) =>
    bootWithUefiVariables(
      {
        connect: p.proxy.address,
        provider: simulatorReportProvider(vm.fw),
        statePath: vm.statePath,
        brokerPublicKey: stack.b.publicKey,
        timeoutMs: 10_000,
      },
      vm.client,
    );

  it('set, get, GetNextVariableName and QueryVariableInfo survive a reboot; the host holds only ciphertext', async () => {
    const vm = await newVm();
    const b1 = await boot(vm);
    assert.equal(b1.boot.firstBoot, true);
    assert.equal(await b1.store.set(v('BootOrder'), NV_BS_RT, SECRET), EfiStatus.Success);
    assert.equal(await b1.store.set(v('Lang'), NV_BS_RT, Uint8Array.from([0x65, 0x6e])), EfiStatus.Success);
    assert.equal(await b1.store.set(v('Lang'), NV_BS_RT, Uint8Array.from([0x64, 0x65])), EfiStatus.Success);
    await b1.latest().session?.end();
    // Read: the host file holds the names, never the value.
    const raw = Buffer.from(readFileSync(vm.hostPath));
    assert.equal(raw.includes(Buffer.from(SECRET)), false);
    assert.equal(raw.includes(Buffer.from([0x64, 0x65, 0, 0])), false);

    const b2 = await boot(vm);
    assert.equal(b2.boot.firstBoot, false);
    assert.deepEqual((await b2.store.get(v('BootOrder')))?.data, SECRET);
    assert.deepEqual((await b2.store.get(v('Lang')))?.data, Uint8Array.from([0x64, 0x65]));
    assert.equal(await b2.store.get(v('Nope')), null);
    const names = (await b2.store.names()).map((x) => Buffer.from(x.name).toString('utf16le'));
    assert.deepEqual(names, ['BootOrder', 'Lang']);
    const q = await b2.store.queryInfo(NV_BS_RT);
    assert.equal(q.status, EfiStatus.Success);
    assert.ok(q.remaining < q.max && q.maxVariable > 0n);
    // Delete, then the name is gone from the walk.
    assert.equal(await b2.store.set(v('Lang'), 0, new Uint8Array(0)), EfiStatus.Success);
    assert.deepEqual((await b2.store.names()).length, 1);
    await b2.latest().session?.end();
  });

  it('sealed variables need 0.2.0 (the commit is their rollback protection): 0.1.0 and the dialects are refused', async () => {
    const vm = await newVm();
    const base = {
      connect: p.proxy.address,
      provider: simulatorReportProvider(vm.fw),
      statePath: vm.statePath,
      uefiRoot: { stated: null, next: null },
    };
    await rejectsCode(
      () => bootGuest({ ...base, version: '0.1.0' }),
      'ERR_INVALID_ARGUMENT',
      'guest.uefi_requires_0_2_0',
    );
    await rejectsCode(
      () => bootGuest({ ...base, version: '0.1.0', dialect: 'pr1122' }),
      'ERR_INVALID_ARGUMENT',
      'guest.uefi_requires_0_2_0',
    );
  });

  it('forge: a modified record, one moved to another name or to another instance, is refused (uefi.auth)', async () => {
    const vm = await newVm();
    const b = await boot(vm);
    await b.store.set(v('A'), NV_BS_RT, Uint8Array.from([1]));
    await b.store.set(v('B'), NV_BS_RT, Uint8Array.from([2]));
    const isA = (x: HostVariable) => Buffer.from(x.name).toString('utf16le') === 'A';
    const original = vm.file().find(isA)!.data;
    // A flipped bit in the ciphertext (the byte after the 32-byte header).
    await vm.tamper((vars) =>
      vars.map((x) =>
        isA(x) ? { ...x, data: Uint8Array.from(x.data, (c, i) => (i === 0x20 ? c ^ 1 : c)) } : x,
      ),
    );
    await rejectsCode(() => b.store.get(v('A')), 'ERR_SIGNATURE_INVALID', 'uefi.auth');
    // A's authentic record under B's name.
    await vm.tamper((vars) =>
      vars.map((x) => (Buffer.from(x.name).toString('utf16le') === 'B' ? { ...x, data: original } : x)),
    );
    await rejectsCode(() => b.store.get(v('B')), 'ERR_SIGNATURE_INVALID', 'uefi.auth');
    // Another instance's record for the same name.
    const other = await newVm();
    const ob = await boot(other);
    await ob.store.set(v('A'), NV_BS_RT, Uint8Array.from([9]));
    const foreign = other.file().find((x) => Buffer.from(x.name).toString('utf16le') === 'A')!.data;
    await vm.tamper((vars) =>
      vars.map((x) => (Buffer.from(x.name).toString('utf16le') === 'A' ? { ...x, data: foreign } : x)),
    );
    await rejectsCode(() => b.store.get(v('A')), 'ERR_SIGNATURE_INVALID', 'uefi.auth');
    await b.latest().session?.end();
    await ob.latest().session?.end();
  });

  it('roll back one variable: its older authentic record is refused (uefi.rollback)', async () => {
    const vm = await newVm();
    const b = await boot(vm);
    await b.store.set(v('Counter'), NV_BS_RT, Uint8Array.from([1]));
    const old = vm.file().find((x) => Buffer.from(x.name).toString('utf16le') === 'Counter')!.data;
    await b.store.set(v('Counter'), NV_BS_RT, Uint8Array.from([2]));
    await vm.tamper((vars) =>
      vars.map((x) => (Buffer.from(x.name).toString('utf16le') === 'Counter' ? { ...x, data: old } : x)),
    );
    await rejectsCode(() => b.store.get(v('Counter')), 'ERR_REFUSED', 'uefi.rollback');
    await b.latest().session?.end();
    // Also across a reboot: the committed index still names the newer record.
    const b2 = await boot(vm);
    await rejectsCode(() => b2.store.get(v('Counter')), 'ERR_REFUSED', 'uefi.rollback');
    await b2.latest().session?.end();
  });

  it('roll back the whole store: an older host file with the current state file is refused by the broker', async () => {
    const vm = await newVm();
    const b = await boot(vm);
    await b.store.set(v('Dbx'), NV_BS_RT, Uint8Array.from([1, 1, 1]));
    const older = readFileSync(vm.hostPath);
    await b.store.set(v('Dbx'), NV_BS_RT, Uint8Array.from([2, 2, 2, 2]));
    await b.latest().session?.end();
    writeFileSync(vm.hostPath, older);
    await vm.reload();
    await rejectsCode(() => boot(vm), 'ERR_REFUSED', 'broker.rollback');
  });

  it('GET_NEXT: a host that reorders or hides variables is caught (uefi.order)', async () => {
    const vm = await newVm();
    const b = await boot(vm);
    for (const name of ['One', 'Two', 'Three']) await b.store.set(v(name), NV_BS_RT, Uint8Array.from([1]));
    const isName = (x: HostVariable, s: string) => Buffer.from(x.name).toString('utf16le') === s;
    await vm.tamper((vars) => {
      const i = vars.findIndex((x) => isName(x, 'One'));
      const j = vars.findIndex((x) => isName(x, 'Two'));
      const out = [...vars];
      [out[i], out[j]] = [out[j]!, out[i]!];
      return out;
    });
    await rejectsCode(() => b.store.names(), 'ERR_BINDING_MISMATCH', 'uefi.order');
    await vm.tamper((vars) =>
      vars.filter((x) => !isName(x, 'Two') && !isName(x, 'One')).concat(vars.filter((x) => isName(x, 'One'))),
    );
    await rejectsCode(() => b.store.names(), 'ERR_BINDING_MISMATCH', 'uefi.order');
    await b.latest().session?.end();
  });

  it('a sealing-key rotation moves the index to the new key with the state; the variables stay readable', async () => {
    const inst = await stack.register();
    const vm = new Vm(
      stack.firmware(inst.hostData),
      p.statePath('uefi-rot'),
      join(stack.dir, 'uefi-rot.vars'),
    );
    await vm.reload();
    const b1 = await boot(vm);
    await b1.store.set(v('Rotated'), NV_BS_RT, Uint8Array.from([1, 2]));
    await b1.latest().session?.end();
    const rot = await stack.admin('POST', `/v1/admin/instances/${inst.id}/rotate-key`);
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    // The boot after the rotation opens the state with the older key and rewraps the index in its commit.
    const b2 = await boot(vm);
    assert.notEqual(b2.boot.previousKeyVersion, null);
    assert.deepEqual((await b2.store.get(v('Rotated')))?.data, Uint8Array.from([1, 2]));
    // A rotation while the VM runs: the next SetVariable's commit rewraps.
    const rot2 = await stack.admin('POST', `/v1/admin/instances/${inst.id}/rotate-key`);
    assert.equal(rot2.status, 200);
    await b2.store.set(v('After'), NV_BS_RT, Uint8Array.from([3]));
    assert.notEqual(b2.latest().previousKeyVersion, null);
    assert.deepEqual((await b2.store.get(v('Rotated')))?.data, Uint8Array.from([1, 2]));
    await b2.store.set(v('After'), NV_BS_RT, Uint8Array.from([4]));
    await b2.latest().session?.end();
    // Later boots need no older key at all.
    const b3 = await boot(vm);
    assert.equal(b3.boot.previousKeyVersion, null);
    assert.deepEqual((await b3.store.get(v('After')))?.data, Uint8Array.from([4]));
    assert.deepEqual((await b3.store.names()).length, 2);
    await b3.latest().session?.end();
  });

  it('a SetVariable whose commit never reached the broker: the next boot opens the committed index slot', async () => {
    const vm = await newVm();
    let down = false;
    const connect = (t: number) =>
      down
        ? Promise.reject(new Unavailable('guest.channel.connect', 'down'))
        : GuestChannel.open(p.proxy.address, t);
    const o = {
      connect,
      provider: simulatorReportProvider(vm.fw),
      statePath: vm.statePath,
      brokerPublicKey: stack.b.publicKey,
      timeoutMs: 10_000,
    };
    const b = await bootWithUefiVariables(o, vm.client);
    await b.store.set(v('Kept'), NV_BS_RT, Uint8Array.from([7]));
    await b.store.set(v('Changed'), NV_BS_RT, Uint8Array.from([1]));
    down = true; // the host drops the guest's connection to the broker: the record and index slot are written, not committed
    await rejectsCode(
      () => b.store.set(v('New'), NV_BS_RT, Uint8Array.from([9])),
      'ERR_UNAVAILABLE',
      'guest.channel.connect',
    );
    await rejectsCode(
      () => b.store.set(v('Changed'), NV_BS_RT, Uint8Array.from([2])),
      'ERR_UNAVAILABLE',
      'guest.channel.connect',
    );
    down = false;
    await b.latest().session?.end();
    const b2 = await bootWithUefiVariables(o, vm.client);
    assert.deepEqual((await b2.store.get(v('Kept')))?.data, Uint8Array.from([7]));
    // The uncommitted new variable is not in the committed index: not shown, not in the walk.
    assert.equal(await b2.store.get(v('New')), null);
    assert.deepEqual(
      (await b2.store.names()).map((x) => Buffer.from(x.name).toString('utf16le')),
      ['Kept', 'Changed'],
    );
    // The overwritten one is refused as uncommitted, never silently old or new; setting it again heals it.
    await rejectsCode(() => b2.store.get(v('Changed')), 'ERR_REFUSED', 'uefi.uncommitted');
    await b2.store.set(v('Changed'), NV_BS_RT, Uint8Array.from([3]));
    assert.deepEqual((await b2.store.get(v('Changed')))?.data, Uint8Array.from([3]));
    await b2.latest().session?.end();
  });
});
