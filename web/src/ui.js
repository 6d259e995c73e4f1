import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/** An error from the broker: its message, code and reason, and a policy refusal's failed checks. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">
    <strong>${error.message}</strong>
    <div class="code">${error.code} ${error.reason}</div>
    ${
      error.failures?.length
        ? html`<ul>
            ${error.failures.map((f) => html`<li><code>${f.code}</code> ${f.message}</li>`)}
          </ul>`
        : null
    }
  </div>`;
}

/**
 * A confirmation before an action that changes state: a modal <dialog> (focus moves into it, Escape
 * cancels, Tab stays inside), so the action is as reachable from the keyboard as with the mouse.
 */
export function ConfirmButton({ label, question, confirmLabel, onConfirm, danger, children }) {
  const ref = useRef(null);
  const [busy, setBusy] = useState(false);
  const open = () => ref.current?.showModal();
  const confirm = async () => {
    setBusy(true);
    try {
      await onConfirm();
    } finally {
      setBusy(false);
      ref.current?.close();
    }
  };
  return html`<span>
    <button type="button" class=${danger ? 'danger' : ''} onClick=${open}>${label}</button>
    <dialog ref=${ref} aria-label=${question}>
      <p>${question}</p>
      ${children}
      <div class="actions">
        <button type="button" class=${danger ? 'danger' : 'primary'} disabled=${busy} onClick=${confirm}>
          ${confirmLabel ?? 'Confirm'}
        </button>
        <button type="button" onClick=${() => ref.current?.close()}>Cancel</button>
      </div>
    </dialog>
  </span>`;
}

/** Loads `fn()` on mount and when `deps` change: [data, error, reload]. */
export function useLoad(fn, deps = []) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    fn().then(
      (data) => live && setState({ data, error: undefined }),
      (error) => live && setState({ data: undefined, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return [state.data, state.error, () => setN((x) => x + 1)];
}

export function Json({ value }) {
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

/** One decision (release or refusal) with every failed check and a link to its audit entry. */
export function Decision({ d }) {
  const refused = d.decision === 'refuse';
  return html`<li class=${`decision ${refused ? 'refused' : 'accepted'}`} data-seq=${d.seq}>
    <div class="line">
      <span class=${`badge ${refused ? 'bad' : 'good'}`}>${refused ? 'REFUSED' : 'RELEASED'}</span>
      <span class="kind">${d.kind}</span>
      ${
        d.instance
          ? html`<a href=${`#/instances/${d.instance}`}>${d.instanceName ?? d.instance}</a>
              <span class="muted">${d.project}</span>`
          : html`<span class="muted">no instance</span>`
      }
      <time>${new Date(d.time).toISOString()}</time>
      <a class="audit-link" href=${`#/audit?seq=${d.seq}`}>audit entry #${d.seq}</a>
    </div>
    ${
      refused
        ? html`<table class="checks">
            <thead><tr><th scope="col">failed check</th><th scope="col">expected</th><th scope="col">actual</th></tr></thead>
            <tbody>
              ${d.failures.map(
                (f) => html`<tr>
                  <td><code>${f.code}</code></td>
                  <td>${f.expected ?? '—'}</td>
                  <td>${f.actual ?? '—'}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<div class="muted">${d.reasons.join(', ')}</div>`
    }
  </li>`;
}
