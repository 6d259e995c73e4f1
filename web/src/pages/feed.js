import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { Decision } from '../ui.js';

const KEEP = 200;

/** Releases and refusals as the broker audits them, over server-sent events (GET api/events). */
export function FeedPage() {
  const [items, setItems] = useState([]);
  const [state, setState] = useState('connecting');
  useEffect(() => {
    const es = new EventSource('api/events');
    es.addEventListener('ready', () => setState('live'));
    es.addEventListener('decision', (ev) => {
      const d = JSON.parse(ev.data);
      setItems((xs) => [d, ...xs].slice(0, KEEP));
    });
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    return () => es.close();
  }, []);
  return html`<section>
    <h1>Live decisions</h1>
    <p class="feed-state" data-state=${state} role="status">Feed: ${state}</p>
    ${items.length === 0 ? html`<p>No decisions since this page opened.</p>` : null}
    <ul class="decisions" data-testid="feed">${items.map((d) => html`<${Decision} key=${d.seq} d=${d} />`)}</ul>
  </section>`;
}
