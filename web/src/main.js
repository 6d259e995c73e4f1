import { html, render } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure, api, setCsrf } from './api.js';
import { AuditPage } from './pages/audit.js';
import { CertificatePage, CertificatesPage } from './pages/certificates.js';
import { CollateralPage } from './pages/collateral.js';
import { FeedPage } from './pages/feed.js';
import { HealthPage } from './pages/health.js';
import { InstancePage, InstancesPage } from './pages/instances.js';
import { PolicyPage } from './pages/policy.js';
import { ErrorBox } from './ui.js';
import '../styles.css';
import 'uplot/dist/uPlot.min.css';

const PAGES = [
  ['instances', 'Instances'],
  ['feed', 'Live decisions'],
  ['audit', 'Audit log'],
  ['certificates', 'Certificates'],
  ['policy', 'Policy'],
  ['collateral', 'Collateral'],
  ['health', 'Health'],
];

/** The hash route: `#/instances/ID?x=y` -> {parts: ['instances', 'ID'], query}. */
function route(hash) {
  const h = hash.replace(/^#\/?/, '');
  const [path, qs] = h.split('?');
  const parts = (path || 'instances').split('/').map(decodeURIComponent);
  return { parts, query: new URLSearchParams(qs ?? '') };
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef(null);
  useEffect(() => input.current?.focus(), []);
  const submit = async (ev) => {
    ev.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await api('POST', 'session', { credential: input.current.value });
      input.current.value = '';
      onSignedIn(r);
    } catch (e) {
      setError(e instanceof ApiFailure ? e : { message: String(e) });
      input.current?.focus();
    } finally {
      setBusy(false);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Vouchsafe</h1>
    <p>Sign in with an admin credential (the broker's admin token, <code>&lt;data&gt;/admin-token</code>).</p>
    <form onSubmit=${submit}>
      <label for="credential">Credential</label>
      <input id="credential" name="credential" type="password" autocomplete="current-password" ref=${input} required />
      <button type="submit" class="primary" disabled=${busy}>Sign in</button>
    </form>
    <${ErrorBox} error=${error} />
  </main>`;
}

function Shell({ session, onSignOut }) {
  const [hash, setHash] = useState(location.hash);
  const main = useRef(null);
  useEffect(() => {
    const f = () => {
      setHash(location.hash);
      // Keyboard users land on the new page's content, as after a full page load.
      requestAnimationFrame(() => main.current?.focus());
    };
    window.addEventListener('hashchange', f);
    // Effects run after the first paint: a hash that changed in between fired no event we heard.
    setHash(location.hash);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  const r = route(hash);
  const [page, arg] = r.parts;
  const p = session.principal;
  let body;
  if (page === 'instances' && arg) body = html`<${InstancePage} id=${arg} principal=${p} />`;
  else if (page === 'instances') body = html`<${InstancesPage} principal=${p} />`;
  else if (page === 'feed') body = html`<${FeedPage} />`;
  else if (page === 'audit') body = html`<${AuditPage} query=${r.query} principal=${p} />`;
  else if (page === 'certificates' && arg) body = html`<${CertificatePage} serial=${arg} principal=${p} />`;
  else if (page === 'certificates') body = html`<${CertificatesPage} />`;
  else if (page === 'policy') body = html`<${PolicyPage} query=${r.query} principal=${p} />`;
  else if (page === 'collateral') body = html`<${CollateralPage} />`;
  else if (page === 'health') body = html`<${HealthPage} principal=${p} />`;
  else body = html`<h1>Not found</h1><p>No page ${page}.</p>`;
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      main.current?.focus();
    }}>Skip to content</a>
    <header>
      <span class="brand">Vouchsafe</span>
      <nav aria-label="Main">
        <ul>
          ${PAGES.map(
            ([k, label]) => html`<li>
              <a href=${`#/${k}`} aria-current=${page === k ? 'page' : undefined}>${label}</a>
            </li>`,
          )}
        </ul>
      </nav>
      <span class="who">
        <span data-testid="principal">${p.name}</span>
        <span class="dim">${p.role}, ${p.projects.includes('*') ? 'all projects' : p.projects.join(', ')}</span>
        <button type="button" onClick=${onSignOut}>Sign out</button>
      </span>
    </header>
    <main id="main" tabindex="-1" ref=${main}>${body}</main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [checked, setChecked] = useState(false);
  useEffect(() => {
    api('GET', 'session')
      .then((s) => {
        setCsrf(s.csrf);
        setSession(s);
      })
      .catch(() => setSession(undefined))
      .finally(() => setChecked(true));
    const out = () => setSession(undefined);
    window.addEventListener('signed-out', out);
    return () => window.removeEventListener('signed-out', out);
  }, []);
  if (!checked) return html`<p class="loading">Loading…</p>`;
  if (!session)
    return html`<${SignIn}
      onSignedIn=${(s) => {
        setCsrf(s.csrf);
        setSession(s);
      }}
    />`;
  const signOut = async () => {
    await api('POST', 'session/end', {}).catch(() => {});
    setCsrf('');
    setSession(undefined);
  };
  return html`<${Shell} session=${session} onSignOut=${signOut} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
document.documentElement.dataset.ready = 'true';
