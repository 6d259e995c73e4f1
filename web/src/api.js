// The dashboard's one way to talk to the broker: same-origin JSON, the session cookie sent by the browser
// (HttpOnly: script never sees it), the CSRF token in a header on every state-changing request.

let csrf = '';

export function setCsrf(token) {
  csrf = token;
}

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'ERR_INTERNAL';
    this.reason = body?.reason ?? 'api.internal';
    this.failures = body?.failures ?? [];
  }
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    headers['x-csrf-token'] = csrf;
  }
  const res = await fetch(`api/${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(method !== 'GET' ? { body: JSON.stringify(body ?? {}) } : {}),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const f = new ApiFailure(res.status, json);
    if (res.status === 401 && path !== 'session') window.dispatchEvent(new CustomEvent('signed-out'));
    throw f;
  }
  return json;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function ago(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
