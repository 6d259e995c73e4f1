import { html } from 'htm/preact';
import { useRef, useState } from 'preact/hooks';
import { ago, api, fmtTime } from '../api.js';
import { ConfirmButton, Decision, ErrorBox, Json, useLoad } from '../ui.js';

const canOperate = (p) => p.role === 'operate' || p.role === 'admin';

function bootState(v, now = Date.now()) {
  if (!v.activeBoot) return 'no active boot';
  return v.activeBoot.leaseExpiresAt > now ? 'running (lease live)' : 'lease expired';
}

function RegisterForm({ onDone }) {
  const [error, setError] = useState(undefined);
  const [made, setMade] = useState(undefined);
  const [pending, setPending] = useState(undefined);
  const dialog = useRef(null);
  // The form only prepares the request; the confirmation dialog sends it.
  const submit = async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    setError(undefined);
    let policy;
    try {
      policy = JSON.parse(String(f.get('policy') || '{}'));
    } catch (e) {
      setError({
        message: `the policy is not JSON: ${e.message}`,
        code: 'ERR_MALFORMED',
        reason: 'web.policy_json',
      });
      return;
    }
    setPending({
      project: f.get('project'),
      zone: f.get('zone'),
      instanceId: f.get('instanceId'),
      instanceName: f.get('instanceName'),
      tee: f.get('tee'),
      policy,
    });
    dialog.current?.showModal();
  };
  const confirm = async () => {
    try {
      const v = await api('POST', 'instances', pending);
      setMade(v);
      onDone();
    } catch (e) {
      setError(e);
    } finally {
      dialog.current?.close();
    }
  };
  return html`<details class="panel">
    <summary>Register an instance</summary>
    <form onSubmit=${submit} class="grid">
      <label>Project <input name="project" required /></label>
      <label>Zone <input name="zone" required /></label>
      <label>Instance id <input name="instanceId" required /></label>
      <label>Name <input name="instanceName" required /></label>
      <label>TEE <select name="tee"><option value="snp">snp</option><option value="tdx">tdx</option><option value="az-snp-vtpm">az-snp-vtpm</option></select></label>
      <label class="wide">Policy (JSON)<textarea name="policy" rows="4">{}</textarea></label>
      <button type="submit" class="primary">Register</button>
    </form>
    <dialog ref=${dialog} aria-label="Register this instance?">
      <p>Register ${pending?.instanceName} (${pending?.project} / ${pending?.zone} / ${pending?.instanceId}, ${pending?.tee})? The broker draws its ${pending?.tee === 'tdx' ? 'MRCONFIGID' : 'HOST_DATA'}, which its VMM must set at launch.</p>
      <div class="actions">
        <button type="button" class="primary" onClick=${confirm}>Register</button>
        <button type="button" onClick=${() => dialog.current?.close()}>Cancel</button>
      </div>
    </dialog>
    <${ErrorBox} error=${error} />
    ${made ? html`<p role="status" data-testid="registered">Registered <a href=${`#/instances/${made.id}`}>${made.instanceName}</a>: ${made.identityField} <code class="hex">${made.hostData}</code></p>` : null}
  </details>`;
}

export function InstancesPage({ principal }) {
  const [data, error, reload] = useLoad(() => api('GET', 'instances'));
  return html`<section>
    <h1>Instances</h1>
    ${canOperate(principal) ? html`<${RegisterForm} onDone=${reload} />` : null}
    <${ErrorBox} error=${error} />
    ${
      data
        ? html`<table class="list" data-testid="instances">
            <thead><tr><th scope="col">name</th><th scope="col">project</th><th scope="col">zone</th><th scope="col">instance id</th><th scope="col">TEE</th><th scope="col">boot</th><th scope="col">counter</th></tr></thead>
            <tbody>
              ${data.instances.map(
                (v) => html`<tr>
                  <td><a href=${`#/instances/${v.id}`}>${v.instanceName}</a></td>
                  <td>${v.project}</td><td>${v.zone}</td><td>${v.instanceId}</td><td>${v.tee}</td>
                  <td>${bootState(v)}</td><td>${v.committedCounter ?? '—'}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${data.instances.length === 0 ? html`<p>No instances.</p>` : null}`
        : null
    }
  </section>`;
}

export function InstancePage({ id, principal }) {
  const [v, error, reload] = useLoad(() => api('GET', `instances/${encodeURIComponent(id)}`), [id]);
  const [actionError, setActionError] = useState(undefined);
  const [note, setNote] = useState(undefined);
  const act = (path, body, done) => async () => {
    setActionError(undefined);
    try {
      const r = await api('POST', `instances/${encodeURIComponent(id)}/${path}`, body);
      setNote(done(r));
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  if (error) return html`<section><h1>Instance</h1><${ErrorBox} error=${error} /></section>`;
  if (!v) return html`<p class="loading">Loading…</p>`;
  return html`<section>
    <h1>${v.instanceName}</h1>
    <dl class="facts">
      <dt>broker id</dt><dd><code>${v.id}</code></dd>
      <dt>project / zone</dt><dd>${v.project} / ${v.zone}</dd>
      <dt>instance id</dt><dd>${v.instanceId}</dd>
      <dt>TEE</dt><dd>${v.tee}</dd>
      <dt>${v.identityField}</dt><dd><code class="hex" data-testid="identity-value">${v.hostData}</code></dd>
      <dt>registered</dt><dd>${fmtTime(v.createdAt)}</dd>
      <dt>new launch</dt><dd>${v.newLaunch}</dd>
      <dt>boot state</dt><dd data-testid="boot-state">${bootState(v)}</dd>
      ${
        v.activeBoot
          ? html`<dt>active boot</dt><dd><code>${v.activeBoot.bootId}</code>, started ${ago(v.activeBoot.startedAt)}, lease until ${fmtTime(v.activeBoot.leaseExpiresAt)}${v.activeBoot.launchId ? html`, launch <code class="hex">${v.activeBoot.launchId}</code>` : null}</dd>`
          : null
      }
      <dt>committed counter</dt><dd>${v.committedCounter ?? '—'}</dd>
    </dl>
    ${
      canOperate(principal)
        ? html`<div class="actions">
            <${ConfirmButton} label="Rotate key" question=${`Add a new sealing-key version for ${v.instanceName}?`} confirmLabel="Rotate"
              onConfirm=${act('rotate-key', {}, (r) => `Key rotated: version ${r.keyVersion}.`)} />
            <${ConfirmButton} label="End boot" danger question=${`End the active boot of ${v.instanceName}? Only when the VM is known to be stopped.`} confirmLabel="End boot"
              onConfirm=${act('reset-boot', {}, (r) => (r.hadActiveBoot ? 'Boot ended.' : 'There was no active boot.'))} />
            <a class="button" href=${`#/policy?instance=${v.id}`}>Edit policy</a>
          </div>`
        : null
    }
    ${note ? html`<p role="status" data-testid="action-note">${note}</p>` : null}
    <${ErrorBox} error=${actionError} />
    <h2>Key versions</h2>
    <table class="list"><thead><tr><th scope="col">version</th><th scope="col">created</th><th scope="col">KEK</th></tr></thead>
      <tbody>${v.keyVersions.map((k) => html`<tr><td>${k.version}</td><td>${fmtTime(k.createdAt)}</td><td><code>${k.kekId}</code></td></tr>`)}</tbody>
    </table>
    <h2>Policy</h2>
    <${Json} value=${v.policy} />
    <h2>Last decisions</h2>
    ${v.recent.length === 0 ? html`<p>None recorded.</p>` : html`<ul class="decisions">${v.recent.map((d) => html`<${Decision} d=${d} />`)}</ul>`}
  </section>`;
}
