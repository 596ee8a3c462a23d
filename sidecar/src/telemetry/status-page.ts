// The status page at / of the metrics listener: one HTML file, no framework, no build step. The
// status is in the page as a JSON data block (rendered at once) and read again from
// /status.json every 2 s. The script builds every cell with textContent, never with markup, so
// a name is shown as the text it is whatever it holds; the policy (CSP) lets no other script run.
import { createHash } from 'node:crypto';
import type { StatusDoc } from './status.js';

const SCRIPT = `
const $ = (id) => document.getElementById(id);
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
  return td;
}
function fill(id, items, columns, rowClass) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = body.insertRow();
    if (rowClass) row.className = rowClass(item);
    for (const col of columns) {
      const [text, cls] = [].concat(col(item));
      cell(row, text, cls);
    }
  }
  $(id + '-count').textContent = String(items.length);
}
function age(ms) {
  return ms == null ? 'never' : ms < 10000 ? (ms / 1000).toFixed(1) + ' s ago' : Math.round(ms / 1000) + ' s ago';
}
function render(s) {
  $('host').textContent = s.host;
  $('time').textContent = s.time;
  fill('networks', s.networks, [
    (n) => n.name, (n) => n.driver, (n) => n.scope,
    (n) => [n.subnet, n.subnet6].filter(Boolean).join(' '), (n) => n.gateway || '', (n) => n.endpoints,
    (n) => n.pool.used + ' / ' + n.pool.size + ' (' + (n.pool.size ? (100 * n.pool.used / n.pool.size).toFixed(1) : '0') + '%)',
  ]);
  fill('endpoints', s.endpoints, [
    (e) => e.name || '', (e) => e.network, (e) => e.sandbox, (e) => e.host, (e) => e.addresses.join(' '),
    (e) => e.aliases.join(' '), (e) => [e.status + (e.error ? ': ' + e.error : ''), e.status],
  ]);
  fill('services', s.services, [
    (v) => v.name, (v) => v.network, (v) => v.mode, (v) => [v.vip, v.vip6].filter(Boolean).join(' '),
    (v) => v.ports.join(' ') || 'all', (v) => v.scheduler, (v) => v.dataplane || '', (v) => v.health || 'none',
    (v) => v.backends.length,
  ]);
  const backends = s.services.flatMap((v) => v.backends.map((b) => ({ service: v.name, network: v.network, ...b })));
  fill('backends', backends, [
    (b) => b.service, (b) => b.network, (b) => b.name || '', (b) => [b.address, b.address6].filter(Boolean).join(' '),
    (b) => b.weight, (b) => [b.health, b.health],
  ], (b) => b.health);
  const c = s.cluster;
  $('cluster').hidden = !c;
  if (c) {
    $('cluster-state').textContent = (c.connected ? 'connected' : 'not connected') + (c.server ? ' to ' + c.server : '');
    fill('hosts', c.hosts, [
      (h) => h.host, (h) => h.addr || '', (h) => (h.host === c.host ? 'this host' : age(h.lastHeartbeatMs)),
      (h) => [h.alive ? 'alive' : 'gone', h.alive ? 'healthy' : 'unhealthy'],
    ]);
  }
  fill('errors', s.errors, [(e) => e.time, (e) => [e.level, e.level], (e) => e.code || '', (e) => e.msg]);
  document.body.dataset.rendered = 'script';
}
render(JSON.parse($('status').textContent));
async function refresh() {
  try {
    const r = await fetch('status.json', { cache: 'no-store' });
    if (r.ok) render(await r.json());
    $('stale').hidden = r.ok;
  } catch {
    $('stale').hidden = false;
  }
}
setInterval(refresh, 2000);
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; min-width: 40em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em 0.25em 0; text-align: left; vertical-align: top; }
th { font-weight: 600; } small, .muted { color: #777; }
.healthy, .ready { color: #17692d; } .unhealthy, .failed, .error { color: #b00020; font-weight: 600; }
.warn { color: #8a5a00; } .unchecked { color: #777; } #stale { color: #b00020; }
`;

/** The hashes the page's policy allows: this script and this style alone. */
const sha = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha(SCRIPT)}`,
  `style-src ${sha(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function table(id: string, title: string, columns: string[]): string {
  return `<h2>${title} (<span id="${id}-count">0</span>)</h2>
<table id="${id}"><thead><tr>${columns.map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody></tbody></table>`;
}

/** The page, with the status it starts from. */
export function statusPage(doc: StatusDoc): string {
  // A JSON data block is not run; escaping `<` keeps a name holding `</script>` inside it.
  const data = JSON.stringify(doc).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>cnmd status</title><style>${STYLE}</style></head>
<body>
<h1>cnmd on <span id="host"></span> <small>at <span id="time"></span></small> <small id="stale" hidden>(not refreshing)</small></h1>
<noscript>This page renders with a small script; the same status is at <a href="status.json">status.json</a>.</noscript>
${table('networks', 'Networks', ['name', 'driver', 'scope', 'subnet', 'gateway', 'endpoints', 'pool use'])}
${table('endpoints', 'Endpoints', ['name', 'network', 'sandbox', 'host', 'addresses', 'aliases', 'status'])}
${table('services', 'Services', ['name', 'network', 'mode', 'VIP', 'ports', 'scheduler', 'data plane', 'health check', 'backends'])}
${table('backends', 'Backends', ['service', 'network', 'task', 'address', 'weight', 'health'])}
<section id="cluster" hidden><h2>Cluster: <span id="cluster-state"></span></h2>
${table('hosts', 'Hosts', ['host', 'address', 'last heartbeat', 'state'])}</section>
${table('errors', 'Last warnings and errors', ['time', 'level', 'code', 'message'])}
<script type="application/json" id="status">${data}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
