import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, fmtTime } from '../api.js';
import { ErrorBox, useLoad } from '../ui.js';

const PROBLEMS = {
  'audit.hash': "the entry's stored hash does not match its fields: the entry was modified",
  'audit.link': 'the entry does not link to the one before: an entry was deleted, inserted or reordered',
  'audit.sequence': 'sequence numbers are not consecutive: an entry was deleted or renumbered',
  'audit.malformed': 'a stored value is not of the shape the broker writes: the row was modified',
  'audit.head': 'the head row does not name the last entry: the tail was truncated or the head edited',
  'audit.truncated': 'the chain is shorter than the recorded head',
  'audit.anchor': 'the entry at the recorded head has another hash: the log was rebuilt',
};

function queryOf(f) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  return q.toString();
}

export function AuditPage({ query, principal }) {
  const focus = query.get('seq');
  const initial = {
    after: focus ? String(Math.max(0, Number(focus) - 10)) : '',
    decision: query.get('decision') ?? '',
    kind: query.get('kind') ?? '',
    instance: query.get('instance') ?? '',
    reason: query.get('reason') ?? '',
  };
  const [filter, setFilter] = useState(initial);
  const [data, error] = useLoad(
    () => api('GET', `audit?${queryOf({ ...filter, limit: '100' })}`),
    [JSON.stringify(filter)],
  );
  const [check, setCheck] = useState(undefined);
  const [checkError, setCheckError] = useState(undefined);
  const verify = async () => {
    setCheckError(undefined);
    setCheck(undefined);
    try {
      setCheck(await api('GET', 'audit/verify'));
    } catch (e) {
      setCheckError(e);
    }
  };
  const apply = (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    setFilter({
      after: '',
      decision: f.get('decision'),
      kind: f.get('kind'),
      instance: f.get('instance'),
      reason: f.get('reason'),
    });
  };
  const broken = check && !check.ok ? check.seq : undefined;
  return html`<section>
    <h1>Audit log</h1>
    <form class="filters" onSubmit=${apply}>
      <label>Decision <select name="decision" value=${filter.decision}><option value="">any</option><option value="accept">accept</option><option value="refuse">refuse</option></select></label>
      <label>Kind <input name="kind" value=${filter.kind} placeholder="release" /></label>
      <label>Instance <input name="instance" value=${filter.instance} /></label>
      <label>Reason contains <input name="reason" value=${filter.reason} /></label>
      <button type="submit">Filter</button>
    </form>
    ${
      principal.projects.includes('*')
        ? html`<div class="actions"><button type="button" class="primary" onClick=${verify}>Verify the hash chain</button></div>`
        : null
    }
    <${ErrorBox} error=${checkError} />
    ${
      check
        ? check.ok
          ? html`<p role="status" class="ok" data-testid="chain-result">Chain intact: ${check.entries} entries, head <code class="hex">${check.headHash}</code>.</p>`
          : html`<div role="alert" class="error" data-testid="chain-result">
              <strong>Chain broken at entry #${check.seq}</strong> (${check.problem}): ${PROBLEMS[check.problem] ?? ''}.
              ${check.entries} entries before it verify. <a href=${`#/audit?seq=${check.seq}`}>Show entry #${check.seq}</a>
            </div>`
        : null
    }
    <${ErrorBox} error=${error} />
    ${
      data
        ? html`<table class="list" data-testid="audit">
            <thead><tr><th scope="col">#</th><th scope="col">time</th><th scope="col">kind</th><th scope="col">decision</th><th scope="col">instance</th><th scope="col">reasons</th><th scope="col">details</th><th scope="col">hash</th></tr></thead>
            <tbody>
              ${data.entries.map(
                (
                  e,
                ) => html`<tr id=${`seq-${e.seq}`} class=${[e.seq === broken ? 'broken' : '', String(e.seq) === focus ? 'focus' : ''].join(' ')}>
                  <td>${e.seq}</td><td>${fmtTime(e.time)}</td><td>${e.kind}</td>
                  <td><span class=${`badge ${e.decision === 'refuse' ? 'bad' : 'good'}`}>${e.decision}</span></td>
                  <td>${e.instance ? html`<a href=${`#/instances/${e.instance}`}>${e.instanceName ?? e.instance}</a>` : '—'}</td>
                  <td>${e.failures.length ? e.failures.map((f) => html`<div><code>${f.code}</code>${f.expected !== null || f.actual !== null ? html` <span class="muted">expected ${f.expected ?? '—'}; actual ${f.actual ?? '—'}</span>` : null}</div>`) : e.reasons.join(', ')}</td>
                  <td class="details">${Object.entries(e.details).map(([k, v]) => html`<div>${k}: ${String(v)}</div>`)}</td>
                  <td><code class="hex short" title=${e.hash}>${e.hash.slice(0, 12)}…</code></td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${data.entries.length === 0 ? html`<p>No entries match.</p>` : null}
          ${data.next !== null ? html`<button type="button" onClick=${() => setFilter({ ...filter, after: String(data.next) })}>Next page</button>` : null}`
        : null
    }
  </section>`;
}
