import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, fmtTime } from '../api.js';
import { ConfirmButton, ErrorBox, Json, useLoad } from '../ui.js';

const REASONS = [
  [0, 'unspecified'],
  [1, 'keyCompromise'],
  [3, 'affiliationChanged'],
  [4, 'superseded'],
  [5, 'cessationOfOperation'],
];

function Crl() {
  const [data, error] = useLoad(() => api('GET', 'crl'));
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data?.configured) return null;
  return html`<section class="panel">
    <h2>Current CRL</h2>
    ${
      data.crl
        ? html`<p data-testid="crl">CRL number ${data.crl.number}, this update ${fmtTime(data.crl.thisUpdate)}, next update ${fmtTime(data.crl.nextUpdate)}; ${data.revoked.length} revoked.</p>
            <pre class="pem">${data.crl.pem}</pre>`
        : html`<p>No CRL issued yet.</p>`
    }
  </section>`;
}

export function CertificatesPage() {
  const [data, error] = useLoad(() => api('GET', 'certificates'));
  return html`<section>
    <h1>Certificates</h1>
    <${ErrorBox} error=${error} />
    ${data && !data.configured ? html`<p>This broker was not given the platform CA (<code>vouchsafe serve --ca-dir DIR</code>).</p>` : null}
    ${
      data?.configured
        ? html`<table class="list" data-testid="certificates">
            <thead><tr><th scope="col">serial</th><th scope="col">kind</th><th scope="col">instance</th><th scope="col">issued</th><th scope="col">not after</th><th scope="col">status</th><th scope="col">C509</th></tr></thead>
            <tbody>${data.certificates.map(
              (c) => html`<tr>
                <td><a href=${`#/certificates/${c.serial}`}><code>${c.serial}</code></a></td>
                <td>${c.kind}</td>
                <td>${c.identity ? `${c.identity.projectId}/${c.identity.instanceName}` : '—'}</td>
                <td>${fmtTime(c.issuedAt)}</td><td>${fmtTime(c.notAfter)}</td>
                <td>${c.revokedAt ? html`<span class="badge bad">revoked</span>` : html`<span class="badge good">valid</span>`}</td>
                <td>${c.hasC509 ? 'yes' : '—'}</td>
              </tr>`,
            )}</tbody>
          </table>
          <${Crl} />`
        : null
    }
  </section>`;
}

export function CertificatePage({ serial, principal }) {
  const [c, error, reload] = useLoad(
    () => api('GET', `certificates/${encodeURIComponent(serial)}`),
    [serial],
  );
  const [reason, setReason] = useState(0);
  const [note, setNote] = useState(undefined);
  const [actionError, setActionError] = useState(undefined);
  if (error) return html`<section><h1>Certificate</h1><${ErrorBox} error=${error} /></section>`;
  if (!c) return html`<p class="loading">Loading…</p>`;
  const revoke = async () => {
    setActionError(undefined);
    try {
      const r = await api('POST', `certificates/${encodeURIComponent(serial)}/revoke`, {
        reason: Number(reason),
      });
      setNote(`Revoked (${r.result}); CRL number ${r.crlNumber} issued.`);
      reload();
    } catch (e) {
      setActionError(e);
    }
  };
  return html`<section>
    <h1>${c.kind.toUpperCase()} certificate <code>${c.serial}</code></h1>
    <p data-testid="cert-status">
      ${c.revokedAt ? html`<span class="badge bad">revoked</span> ${fmtTime(c.revokedAt)} (${c.revocationReason})` : html`<span class="badge good">valid</span>`}
    </p>
    ${
      principal.role === 'admin' && !c.revokedAt
        ? html`<${ConfirmButton} label="Revoke" danger question=${`Revoke certificate ${c.serial}? A new CRL is issued at once.`} confirmLabel="Revoke" onConfirm=${revoke}>
            <label>Reason <select value=${reason} onChange=${(e) => setReason(e.target.value)}>${REASONS.map(([n, t]) => html`<option value=${n}>${t}</option>`)}</select></label>
          <//>`
        : null
    }
    ${note ? html`<p role="status">${note}</p>` : null}
    <${ErrorBox} error=${actionError} />
    <div class="side-by-side">
      <section>
        <h2>X.509 (${c.x509.bytes} bytes)</h2>
        <dl class="facts">
          <dt>subject</dt><dd>${c.x509.subject || '(empty: the identity is in the SAN)'}</dd>
          <dt>issuer</dt><dd>${c.x509.issuer}</dd>
          <dt>serial</dt><dd><code>${c.x509.serialNumber}</code></dd>
          <dt>validity</dt><dd>${c.x509.notBefore} — ${c.x509.notAfter}</dd>
          <dt>signature</dt><dd>${c.x509.signatureAlgorithm}</dd>
          <dt>public key</dt><dd>${c.x509.publicKeyAlgorithm}</dd>
        </dl>
        <h3>Extensions</h3>
        <ul class="extensions">${c.x509.extensions.map(
          (e) => html`<li>
            <strong>${e.name ?? e.oid}</strong> <span class="muted">${e.oid}${e.critical ? ', critical' : ''}</span>
            ${e.decoded ? html`<div data-testid="identity-extension"><${Json} value=${e.decoded} /></div>` : html`<div><code class="hex">${e.valueHex}</code></div>`}
          </li>`,
        )}</ul>
        <pre class="pem">${c.x509.pem}</pre>
      </section>
      <section>
        <h2>C509 ${c.c509 && !c.c509.error ? `(${c.c509.bytes} bytes, type ${c.c509.type})` : ''}</h2>
        ${c.c509 ? html`<${Json} value=${c.c509} />` : html`<p>No C509 form was issued for this certificate.</p>`}
      </section>
    </div>
  </section>`;
}
