/**
 * The `vouchsafe vmm-device` socket (docs/pvchannel.md §8): a test VMM forwards the guest's doorbell and port
 * events; every call over both paths; a malformed frame closes only that connection. The CLI command is run
 * once and awaited on its "listening" line (no timers).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  DEFAULT_PORTS,
  MAX_PAYLOAD,
  PAGE_SIZE,
  PvCall,
  PvFeature,
} from '../../src/formats/pvchannel/constants.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { PageTransport } from '../../src/pvchannel/page-transport.js';
import { PortTransport } from '../../src/pvchannel/port-path.js';
import { serveVmmDevice, VmmSocketClient } from '../../src/pvchannel/vmm-socket.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { loaderFor, ROOT, runnable } from '../helpers/paths.js';
import { ALL, allHandlers, CALLS, IDENTITY, offer } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-vmmdev-'));
const MAIN = runnable('src/cli/main.ts');
after(() => rmSync(dir, { recursive: true, force: true }));

/** A guest page in "guest memory" whose doorbell the test VMM forwards over the socket. */
function pageOver(vmm: VmmSocketClient): PageTransport {
  const page = new Uint8Array(PAGE_SIZE);
  return new PageTransport(page, async () => page.set(await vmm.doorbell(page)));
}

describe('vmm-device over a unix socket', () => {
  it('serves every call over the page path and the port-only path', async () => {
    const path = join(dir, 'a.sock');
    const server = serveVmmDevice(new PvDevice({ offer: offer(), handlers: allHandlers() }), DEFAULT_PORTS);
    await new Promise<void>((r) => server.listen(path, r));
    const vmm = await VmmSocketClient.connect(path);
    try {
      for (const t of [pageOver(vmm), new PortTransport(vmm.portBus(), DEFAULT_PORTS)]) {
        const c = new PvClient({ transport: t, want: ALL });
        assert.deepEqual(await c.getPlatformIdentity(), IDENTITY);
        for (const [name, id] of CALLS) {
          if (id === PvCall.GetPlatformIdentity) continue;
          const body = Uint8Array.from({ length: MAX_PAYLOAD + 10 }, (_, i) => i & 0xff);
          const out = await c.call(id, body);
          assert.deepEqual(out.subarray(1), body.slice().reverse(), name);
        }
      }
    } finally {
      vmm.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('a malformed frame: ERROR and that connection closed; others are served', async () => {
    const path = join(dir, 'b.sock');
    const server = serveVmmDevice(new PvDevice({ offer: offer(), handlers: allHandlers() }), DEFAULT_PORTS);
    await new Promise<void>((r) => server.listen(path, r));
    const bad = await VmmSocketClient.connect(path);
    const good = await VmmSocketClient.connect(path);
    try {
      bad.writeRaw(Uint8Array.of(0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0x10, 0, 0)); // a PAGE frame sent to the device
      await rejectsCode(bad.doorbell(new Uint8Array(PAGE_SIZE)), 'ERR_UNAVAILABLE');
      const c = new PvClient({ transport: pageOver(good), want: ALL });
      assert.deepEqual(await c.getPlatformIdentity(), IDENTITY);
    } finally {
      bad.close();
      good.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('`vouchsafe vmm-device` serves NEGOTIATE, GET_PLATFORM_IDENTITY and CERTIFY_EK; a call not offered is NOT_NEGOTIATED', async () => {
    const path = join(dir, 'cli.sock');
    const idFile = join(dir, 'identity.json');
    writeFileSync(idFile, JSON.stringify(IDENTITY));
    // CERTIFY_EK relays to a CA service (docs/pvchannel.md §7.2); a payload that does not decode never reaches it.
    const tokenFile = join(dir, 'ca-token');
    writeFileSync(tokenFile, 'x'.repeat(43));
    const child = spawn(
      process.execPath,
      [
        ...loaderFor(MAIN),
        MAIN,
        'vmm-device',
        '--socket',
        path,
        '--identity',
        idFile,
        '--features',
        'platform-identity,certify-ek',
        '--ca-url',
        'http://127.0.0.1:9',
        '--ca-token-file',
        tokenFile,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('listening')) resolve();
        });
        child.once('exit', () => reject(new Error(`vmm-device exited: ${out}`)));
      });
      const vmm = await VmmSocketClient.connect(path);
      const c = new PvClient({ transport: pageOver(vmm), want: ALL });
      const a = await c.negotiate();
      assert.equal(a.accepted, PvFeature.PlatformIdentity | PvFeature.CertifyEk);
      assert.deepEqual(await c.getPlatformIdentity(), IDENTITY);
      await rejectsCode(
        c.call(PvCall.CertifyEk, new Uint8Array(0)),
        'ERR_INVALID_ARGUMENT',
        'pvchannel.status.bad_payload',
      );
      await rejectsCode(
        c.call(PvCall.CertifyAk, new Uint8Array(0)),
        'ERR_NOT_SUPPORTED',
        'pvchannel.not_negotiated',
      );
      vmm.close();
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
