import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { ErrorBox, useLoad } from '../ui.js';

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ''));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

function Verdict({ r }) {
  if (r.verdict === 'unverified')
    return html`<div role="alert" class="error" data-testid="verdict"><strong>Not verified</strong>: ${r.error.message} <div class="code">${r.error.code} ${r.error.reason}</div></div>`;
  return html`<div data-testid="verdict" class=${r.verdict === 'accepted' ? 'ok' : 'error'}>
    <strong>${r.verdict === 'accepted' ? 'Accepted' : 'Rejected'}</strong>
    ${
      r.failures.length
        ? html`<table class="checks"><thead><tr><th scope="col">failed check</th><th scope="col">expected</th><th scope="col">actual</th><th scope="col">message</th></tr></thead>
            <tbody>${r.failures.map((f) => html`<tr><td><code>${f.code}</code></td><td>${f.expected ?? '—'}</td><td>${f.actual ?? '—'}</td><td>${f.message}</td></tr>`)}</tbody></table>`
        : null
    }
    <p>Checked: ${r.checked.map((c) => html`<code class="rule">${c}</code> `)}</p>
    <p>Not checked: ${r.unchecked.length ? r.unchecked.map((c) => html`<code class="rule">${c}</code> `) : '—'}</p>
  </div>`;
}

export function PolicyPage({ query, principal }) {
  const [list] = useLoad(() => api('GET', 'instances'));
  const [id, setId] = useState(query.get('instance') ?? '');
  const [text, setText] = useState('');
  const [loadedFor, setLoadedFor] = useState('');
  const [error, setError] = useState(undefined);
  const [saved, setSaved] = useState(undefined);
  const [result, setResult] = useState(undefined);
  const [checkError, setCheckError] = useState(undefined);
  const inst = list?.instances.find((v) => v.id === id);
  useEffect(() => {
    if (!inst) return;
    setText(JSON.stringify(inst.policy, null, 2));
    setLoadedFor(inst.id);
  }, [inst?.id]);
  const parsed = () => {
    try {
      return JSON.parse(text);
    } catch (e) {
      setError({ message: `not JSON: ${e.message}`, code: 'ERR_MALFORMED', reason: 'web.policy_json' });
      return undefined;
    }
  };
  const save = async () => {
    setError(undefined);
    setSaved(undefined);
    const policy = parsed();
    if (policy === undefined) return;
    try {
      await api('PUT', `instances/${encodeURIComponent(id)}/policy`, { policy });
      setSaved('Policy saved.');
    } catch (e) {
      setError(e);
    }
  };
  const check = async (ev) => {
    ev.preventDefault();
    setCheckError(undefined);
    setResult(undefined);
    const policy = parsed();
    if (policy === undefined) return;
    const f = new FormData(ev.target);
    const report = f.get('report');
    const table = f.get('certTable');
    if (!(report instanceof File) || report.size === 0) {
      setCheckError({ message: 'choose a report file', code: 'ERR_INVALID_ARGUMENT', reason: 'web.report' });
      return;
    }
    try {
      setResult(
        await api('POST', 'policy/check', {
          tee: inst?.tee ?? 'snp',
          report: await base64Of(report),
          ...(table instanceof File && table.size > 0 ? { certTable: await base64Of(table) } : {}),
          policy,
        }),
      );
    } catch (e) {
      setCheckError(e);
    }
  };
  return html`<section>
    <h1>Policy</h1>
    <label>Instance
      <select value=${id} onChange=${(e) => setId(e.target.value)} data-testid="policy-instance">
        <option value="">— choose —</option>
        ${(list?.instances ?? []).map((v) => html`<option value=${v.id}>${v.instanceName} (${v.project}, ${v.tee})</option>`)}
      </select>
    </label>
    <label class="block" for="policy-text">Policy (JSON; docs/policy.md)</label>
    <textarea id="policy-text" rows="14" data-loaded-for=${loadedFor} value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    ${principal.role === 'admin' && id ? html`<div class="actions"><button type="button" class="primary" onClick=${save}>Save policy</button></div>` : null}
    ${saved ? html`<p role="status">${saved}</p>` : null}
    <${ErrorBox} error=${error} />
    <h2>What would this report get?</h2>
    <form onSubmit=${check} class="grid">
      <label>Report (binary SEV-SNP report) <input type="file" name="report" /></label>
      <label>Certificate table (optional) <input type="file" name="certTable" /></label>
      <button type="submit">Check against this policy</button>
    </form>
    <p class="muted">Verified with this broker's roots and collateral, appraised with the policy above; nothing is stored or released.</p>
    <${ErrorBox} error=${checkError} />
    ${result ? html`<${Verdict} r=${result} />` : null}
  </section>`;
}
