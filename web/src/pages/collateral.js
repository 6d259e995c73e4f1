import { html } from 'htm/preact';
import { ago, api, fmtTime } from '../api.js';
import { ErrorBox, useLoad } from '../ui.js';

export function CollateralPage() {
  const [data, error] = useLoad(() => api('GET', 'collateral'));
  return html`<section>
    <h1>Collateral</h1>
    <${ErrorBox} error=${error} />
    ${data && !data.dir ? html`<p>This broker has no KDS cache (started with <code>--no-kds</code>).</p>` : null}
    ${
      data?.dir
        ? html`<p>AMD KDS cache <code>${data.dir}</code>${data.crlRefresh ? html`; next CRL refresh check ${fmtTime(data.crlRefresh.nextCheckAt)}` : ''}.</p>
          <table class="list" data-testid="collateral">
            <thead><tr><th scope="col">file</th><th scope="col">kind</th><th scope="col">bytes</th><th scope="col">written</th><th scope="col">CRL</th></tr></thead>
            <tbody>${data.files.map(
              (f) => html`<tr>
                <td><code>${f.path}</code></td><td>${f.kind}</td><td>${f.bytes}</td>
                <td>${ago(Date.parse(f.modified))}</td>
                <td>${f.crl ? ('unreadable' in f.crl ? html`<span class="badge bad">unreadable</span>` : html`this update ${f.crl.thisUpdate}, next ${f.crl.nextUpdate ?? '—'} ${f.crl.stale ? html`<span class="badge bad">STALE</span>` : ''}`) : '—'}</td>
              </tr>`,
            )}</tbody>
          </table>
          ${data.files.length === 0 ? html`<p>Nothing cached yet.</p>` : null}`
        : null
    }
  </section>`;
}
