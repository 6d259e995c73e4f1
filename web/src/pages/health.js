import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api } from '../api.js';
import { ErrorBox } from '../ui.js';

const EVERY_MS = 5000;
const KEEP = 120;
const COLORS = ['#c0392b', '#8e44ad', '#d35400', '#2c3e50', '#16a085', '#7f8c8d'];

function Chart({ title, series, data, testid, minTop }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!el.current) return;
    plot.current?.destroy();
    plot.current = new uPlot(
      {
        title,
        width: Math.max(320, el.current.clientWidth || 600),
        height: 220,
        series: [{}, ...series.map((s, i) => ({ label: s, stroke: COLORS[i % COLORS.length], width: 2 }))],
        // From zero up, at least to minTop, so that a quiet broker still draws a readable frame.
        scales: { y: { range: (_u, _min, max) => [0, Math.max(max ?? 0, minTop) * 1.1] } },
        axes: [{}, { size: 60 }],
      },
      data,
      el.current,
    );
    return () => plot.current?.destroy();
  }, [series.join('|')]);
  useEffect(() => plot.current?.setData(data), [data]);
  return html`<figure class="chart" data-testid=${testid} aria-label=${title}><div ref=${el}></div></figure>`;
}

/** Release rate, refusal rate by code and latency percentiles, from api/metrics every 5 s (kept in the page). */
export function HealthPage({ principal }) {
  const [samples, setSamples] = useState([]);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    if (!principal.projects.includes('*')) return;
    let live = true;
    const tick = () =>
      api('GET', 'metrics').then(
        (m) => live && setSamples((xs) => [...xs, m].slice(-KEEP)),
        (e) => live && setError(e),
      );
    tick();
    const t = setInterval(tick, EVERY_MS);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, []);
  if (!principal.projects.includes('*'))
    return html`<section><h1>Health</h1><p>Platform-wide figures need a credential for all projects.</p></section>`;
  const last = samples[samples.length - 1];
  const codes = [...new Set(samples.flatMap((s) => Object.keys(s.refusalsByCode)))].sort();
  // A leading empty point ten minutes back: the time axis spans minutes from the first sample on.
  const times = samples.length ? [samples[0].at / 1000 - 600, ...samples.map((s) => s.at / 1000)] : [];
  const rate = (pick) => [
    null,
    ...samples.map((s, i) =>
      i === 0 ? 0 : Math.max(0, (pick(s) - pick(samples[i - 1])) / ((s.at - samples[i - 1].at) / 60000)),
    ),
  ];
  const each = (pick) => [null, ...samples.map(pick)];
  return html`<section>
    <h1>Health</h1>
    <${ErrorBox} error=${error} />
    ${
      last
        ? html`<dl class="facts" data-testid="health-figures">
            <dt>releases</dt><dd>${last.releases}</dd>
            <dt>refusals</dt><dd>${last.refusals}</dd>
            <dt>release latency</dt><dd>${last.latency.count ? `p50 ${fmt(last.latency.p50)}, p90 ${fmt(last.latency.p90)}, p99 ${fmt(last.latency.p99)} (${last.latency.count} decisions)` : 'no releases yet'}</dd>
          </dl>`
        : html`<p class="loading">Loading…</p>`
    }
    ${
      samples.length > 0
        ? html`<${Chart} testid="chart-releases" title="Releases per minute" series=${['releases/min']} minTop=${1} data=${[times, rate((s) => s.releases)]} />
          <${Chart} testid="chart-refusals" title="Refusals per minute, by code" series=${codes.length ? codes : ['none']} minTop=${1}
            data=${[times, ...(codes.length ? codes.map((c) => rate((s) => s.refusalsByCode[c] ?? 0)) : [rate(() => 0)])]} />
          <${Chart} testid="chart-latency" title="Release latency (seconds)" series=${['p50', 'p90', 'p99']} minTop=${0.01}
            data=${[times, each((s) => s.latency.p50), each((s) => s.latency.p90), each((s) => s.latency.p99)]} />`
        : null
    }
    <p class="muted">Rates are differences between samples taken every ${EVERY_MS / 1000} s while this page is open.</p>
  </section>`;
}

function fmt(s) {
  return s === null ? '—' : s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
}
