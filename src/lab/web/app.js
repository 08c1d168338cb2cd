/*
 * sctpt lab dashboard: polls the controller's REST API (same origin), keeps
 * a window of samples per node, derives rates, and draws them with uPlot.
 * Every value from a node is treated as data, never as markup (textContent
 * only), since nodes are other processes.
 */
'use strict';

const WINDOW = 600;           // samples kept per series in the browser
const POLL_MS = 1000;
const HAVE_UPLOT = typeof uPlot !== 'undefined';

const state = {
  nodes: [],                  // from /api/nodes
  since: {},                  // node id -> last sample seq seen
  prev: {},                   // node id -> previous stats (for rates)
  t: [],                      // shared time axis (unix s)
  series: {},                 // name -> array aligned with t
  paths: [],                  // path state changes [{t, text, failover}]
  lastPaths: {},              // sctpt node id -> its last path text
  charts: {},
  runsSeen: '',
  tbSeen: '',
};

const $ = (sel) => document.querySelector(sel);

async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  return { status: r.status, ok: r.ok, body: j };
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
function get(o, ...path) {
  for (const k of path) {
    if (o === null || typeof o !== 'object') return null;
    o = o[k];
  }
  return o === undefined ? null : o;
}
function fmt(v, d = 2) { return v === null || v === undefined ? '' : Number(v).toFixed(d); }

function showResult(form, r) {
  const span = form.querySelector('.result');
  if (!span) return;
  span.className = 'result ' + (r.ok ? 'ok' : 'bad');
  span.textContent = r.ok ? 'ok' : ('error ' + r.status + ': ' + (get(r.body, 'error') || ''));
}

/* ---- charts */

const CHARTS = {
  tput: { el: '#ch-tput', series: ['send rate', 'recv goodput', 'goodput s2c', 'wire c2s', 'wire s2c'] },
  loss: { el: '#ch-loss', series: ['dropped c2s/s', 'dropped s2c/s', 'retransmissions/s'] },
  rtt: { el: '#ch-rtt', series: ['srtt ms', 'rttvar ms', 'cwnd', 'flight'], cwnd: true },
  lat: { el: '#ch-lat', series: ['p50 ms', 'p99 ms'] },
};
const COLORS = ['#1f6feb', '#1f7a3a', '#b3261e', '#9a6700', '#6e40c9', '#0a7480'];

function makeChart(name) {
  const c = CHARTS[name];
  const box = $(c.el);
  const series = [{}].concat(c.series.map((label, i) => ({
    label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
    scale: (c.cwnd && (label === 'cwnd' || label === 'flight')) ? 'cwnd' : 'y',
  })));
  const axes = [{}, { scale: 'y' }];
  if (c.cwnd) axes.push({ scale: 'cwnd', side: 1, grid: { show: false } });
  const opts = {
    width: Math.max(400, box.clientWidth || 520), height: 220, series, axes,
    scales: { x: { time: true } },
    legend: { live: true },
  };
  const data = [[]].concat(c.series.map(() => []));
  state.charts[name] = new uPlot(opts, data, box);
}

function chartData(name) {
  const c = CHARTS[name];
  return [state.t].concat(c.series.map((s) => state.series[name + ':' + s] || state.t.map(() => null)));
}

function redraw() {
  if (!HAVE_UPLOT) return;
  for (const name of Object.keys(CHARTS)) {
    if (!state.charts[name]) makeChart(name);
    state.charts[name].setData(chartData(name));
  }
  const rttSeen = (state.series['rtt:srtt ms'] || []).some((v) => v !== null);
  $('#rtt-none').hidden = rttSeen;
}

/* One point per poll: every series gets a value or null. */
function pushPoint(t, values) {
  state.t.push(t);
  const names = new Set(Object.keys(state.series).concat(Object.keys(values)));
  for (const n of names) {
    if (!state.series[n]) state.series[n] = state.t.slice(0, -1).map(() => null);
    state.series[n].push(values[n] === undefined ? null : values[n]);
  }
  if (state.t.length > WINDOW) {
    state.t.shift();
    for (const n of Object.keys(state.series)) state.series[n].shift();
  }
}

function rate(id, now, prevT, cur, prev) {
  if (cur === null || prev === null || prevT === null || now <= prevT) return null;
  return Math.max(0, (cur - prev) / (now - prevT));
}

/* sctpt --metrics /stats: tolerant of what is there. */
function sctptSessions(s) {
  for (const k of ['sessions', 'associations', 'assocs']) {
    if (Array.isArray(s[k])) return s[k].filter((x) => x && typeof x === 'object');
  }
  return [];
}

function sumField(list, ...path) {
  let any = false, sum = 0;
  for (const x of list) {
    const v = num(get(x, ...path));
    if (v !== null) { any = true; sum += v; }
  }
  return any ? sum : null;
}

function derive(now) {
  const v = {};
  let rttFrom = null;
  for (const n of state.nodes) {
    const s = n.last;
    if (!s || typeof s !== 'object') continue;
    const p = state.prev[n.id] || null;
    const pt = p ? p.t : null;
    const ps = p ? p.s : null;
    if (n.kind === 'send') {
      v['tput:send rate'] = (num(s.rate_bps) || 0) / 1e6;
      if (s.mode === 'rpc') v['tput:goodput s2c'] = (num(s.rate_in_bps) || 0) / 1e6;
      if (s.rpc && s.state === 'running') {
        v['lat:p50 ms'] = num(s.rpc.p50_ms);
        v['lat:p99 ms'] = num(s.rpc.p99_ms);
      }
    } else if (n.kind === 'recv') {
      v['tput:recv goodput'] = (num(s.goodput_bps) || 0) / 1e6;
    } else if (n.kind === 'impair') {
      for (const d of ['c2s', 's2c']) {
        const b = rate(n.id, now, pt, num(get(s, d, 'bytes_forwarded')), num(get(ps, d, 'bytes_forwarded')));
        if (b !== null) v['tput:wire ' + d] = b * 8 / 1e6;
        const dr = rate(n.id, now, pt, num(get(s, d, 'dropped')), num(get(ps, d, 'dropped')));
        if (dr !== null) v['loss:dropped ' + d + '/s'] = dr;
      }
    } else if (n.kind === 'sctpt') {
      // docs/metrics.md, JSON /stats schema 1: sessions[] with srtt_ms, rttvar_ms, cwnd,
      // flight, retransmissions and paths[] {index, kind, state}.
      const ss = sctptSessions(s);
      const pss = ps ? sctptSessions(ps) : [];
      const rt = rate(n.id, now, pt, sumField(ss, 'retransmissions'), sumField(pss, 'retransmissions'));
      if (rt !== null) v['loss:retransmissions/s'] = (v['loss:retransmissions/s'] || 0) + rt;
      // RTT and cwnd of one association: a client's (the sender's side) before a server's.
      const role = get(s, 'process', 'role');
      if (ss.length && (rttFrom === null || (role === 'client' && rttFrom.role !== 'client'))) {
        rttFrom = { id: n.id, role };
        v['rtt:srtt ms'] = num(ss[0].srtt_ms);
        v['rtt:rttvar ms'] = num(ss[0].rttvar_ms);
        v['rtt:cwnd'] = num(ss[0].cwnd);
        v['rtt:flight'] = num(ss[0].flight);
      }
      if (ss.length && Array.isArray(ss[0].paths)) {
        const paths = ss[0].paths;
        const text = n.id + ': ' + paths.map((p, i) => (p && typeof p === 'object')
          ? (String(p.address || p.addr || ((p.kind || 'path') + ' ' + (p.index ?? i))) + ' ' + String(p.state || '?') + (p.primary ? ' (primary)' : ''))
          : String(p)).join(' | ');
        const last = state.lastPaths[n.id];
        if (text !== last) {
          state.paths.push({ t: now, text, failover: last !== undefined });
          if (state.paths.length > 50) state.paths.shift();
          state.lastPaths[n.id] = text;
        }
      }
    }
    state.prev[n.id] = { t: now, s };
  }
  return v;
}

function drawPaths() {
  const box = $('#paths');
  if (!state.paths.length) return;
  box.textContent = '';
  box.className = '';
  for (const p of state.paths.slice(-12)) {
    const s = el('span', new Date(p.t * 1000).toLocaleTimeString() + ' ' + p.text, p.failover ? 'failover' : '');
    box.appendChild(s);
  }
}

function drawStreams() {
  const tb = $('#streams tbody');
  tb.textContent = '';
  let rows = 0;
  for (const n of state.nodes) {
    const s = n.last;
    if (!s) continue;
    const list = n.kind === 'send' ? (s.streams || []) : n.kind === 'recv' ? (s.open || []).concat((s.finished || []).slice(-8)) : [];
    for (const x of list) {
      if (rows++ >= 64) return;
      const tr = el('tr');
      tr.appendChild(el('td', n.id));
      tr.appendChild(el('td', x.stream));
      tr.appendChild(el('td', x.state));
      tr.appendChild(el('td', x.bytes, 'num'));
      tr.appendChild(el('td', x.error || x.sha256 || (x.calls !== undefined ? x.calls + ' calls' : '')));
      tb.appendChild(tr);
    }
  }
}

/* ---- nodes and controls */

function fillSelect(form, kind) {
  const sel = form.querySelector('select[name=node]');
  const want = state.nodes.filter((n) => n.kind === kind).map((n) => n.id);
  const have = Array.from(sel.options).map((o) => o.value);
  if (want.join(',') === have.join(',')) return;
  const cur = sel.value;
  sel.textContent = '';
  for (const id of want) sel.appendChild(el('option', id));
  if (want.includes(cur)) sel.value = cur;
}

function drawNodes() {
  const tb = $('#nodes-table tbody');
  tb.textContent = '';
  for (const n of state.nodes) {
    const tr = el('tr');
    tr.appendChild(el('td', n.id));
    tr.appendChild(el('td', n.kind));
    tr.appendChild(el('td', n.url));
    tr.appendChild(el('td', n.ok ? 'ok' : n.error, n.ok ? 'ok' : 'bad'));
    const td = el('td');
    const b = el('button', 'remove');
    b.addEventListener('click', async () => { await api('DELETE', '/api/nodes/' + encodeURIComponent(n.id)); refreshNodes(); });
    td.appendChild(b);
    tr.appendChild(td);
    tb.appendChild(tr);
  }
  fillSelect($('#f-impair'), 'impair');
  fillSelect($('#f-recv'), 'recv');
  fillSelect($('#f-send'), 'send');
}

async function refreshNodes() {
  const r = await api('GET', '/api/nodes');
  if (!r.ok || !Array.isArray(r.body)) return;
  state.nodes = r.body;
  drawNodes();
}

async function loadImpair() {
  const f = $('#f-impair');
  const id = f.node.value;
  if (!id) return;
  const r = await api('GET', '/api/nodes/' + encodeURIComponent(id) + '/settings');
  if (!r.ok) { showResult(f, r); return; }
  for (const d of ['c2s', 's2c']) {
    for (const k of ['loss', 'delay_ms', 'jitter_ms', 'dup', 'reorder', 'rate_bps']) {
      const inp = f.elements[d + '.' + k];
      if (inp) inp.value = get(r.body, d, k) ?? '';
    }
    f.elements[d + '.blackhole'].checked = !!get(r.body, d, 'blackhole');
  }
}

function wireControls() {
  $('#f-impair').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { c2s: {}, s2c: {} };
    for (const d of ['c2s', 's2c']) {
      for (const k of ['loss', 'delay_ms', 'jitter_ms', 'dup', 'reorder', 'rate_bps']) {
        const inp = f.elements[d + '.' + k];
        if (inp.value !== '') body[d][k] = Number(inp.value);
      }
      body[d].blackhole = f.elements[d + '.blackhole'].checked;
    }
    showResult(f, await api('PUT', '/api/nodes/' + encodeURIComponent(f.node.value) + '/settings', body));
  });
  $('#impair-load').addEventListener('click', loadImpair);
  $('#f-recv').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    showResult(f, await api('PUT', '/api/nodes/' + encodeURIComponent(f.node.value) + '/settings',
      { delay_ms: Number(f.delay_ms.value) }));
  });
  $('#f-send').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const body = { action: 'start', mode: f.mode.value, streams: Number(f.streams.value),
      bytes: Number(f.bytes.value), duration_s: Number(f.duration_s.value) };
    if (f.mode.value === 'rpc') { body.rpc_req = Number(f.rpc_req.value); body.rpc_resp = Number(f.rpc_resp.value); }
    showResult(f, await api('PUT', '/api/nodes/' + encodeURIComponent(f.node.value) + '/settings', body));
  });
  $('#send-stop').addEventListener('click', async () => {
    const f = $('#f-send');
    showResult(f, await api('PUT', '/api/nodes/' + encodeURIComponent(f.node.value) + '/settings', { action: 'stop' }));
  });
  $('#f-node').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    const r = await api('POST', '/api/nodes', { id: f.elements.namedItem('id').value, kind: f.elements.namedItem('kind').value, url: f.elements.namedItem('url').value });
    showResult(f, r);
    refreshNodes();
  });
}

/* ---- scenarios and runs */

const EXAMPLE = {
  name: 'loss-then-blackhole',
  duration_s: 60,
  seed: 1,
  repeat: 1,
  workload: { mode: 'rpc', streams: 4, rpc_req: 200, rpc_resp: 2000, rpc_gap_ms: 10 },
  timeline: ['at 0s loss 2%', 'at 30s blackhole c2s', 'at 45s restore'],
};

function scenarioBody() {
  const res = $('#sc-result');
  try {
    return JSON.parse($('#sc-text').value);
  } catch (e) {
    res.className = 'result bad';
    res.textContent = 'not JSON: ' + e.message;
    return null;
  }
}

function wireScenario() {
  $('#sc-text').value = JSON.stringify(EXAMPLE, null, 2);
  const res = $('#sc-result');
  $('#sc-check').addEventListener('click', async () => {
    const b = scenarioBody();
    if (!b) return;
    const r = await api('POST', '/api/scenarios/check', b);
    res.className = 'result ' + (r.ok ? 'ok' : 'bad');
    res.textContent = r.ok ? ('ok: ' + r.body.timeline.length + ' timeline events, ' +
      r.body.repeat * r.body.variants.length + ' iteration(s)') : ('error: ' + get(r.body, 'error'));
  });
  $('#sc-run').addEventListener('click', async () => {
    const b = scenarioBody();
    if (!b) return;
    const r = await api('POST', '/api/runs', b);
    res.className = 'result ' + (r.ok ? 'ok' : 'bad');
    res.textContent = r.ok ? ('run ' + r.body.id + ' started') : ('error: ' + get(r.body, 'error'));
    refreshRuns();
  });
  $('#sc-stop').addEventListener('click', async () => {
    const info = await api('GET', '/api/info');
    const id = get(info.body, 'active_run');
    if (!id) { res.textContent = 'no run in progress'; return; }
    const r = await api('POST', '/api/runs/' + encodeURIComponent(id) + '/stop');
    res.className = 'result ' + (r.ok ? 'ok' : 'bad');
    res.textContent = r.ok ? ('stopping ' + id) : ('error: ' + get(r.body, 'error'));
  });
}

function link(href, text) {
  const a = el('a', text);
  a.href = href;
  a.setAttribute('download', '');
  return a;
}

async function refreshRuns() {
  const r = await api('GET', '/api/runs');
  if (!r.ok || !Array.isArray(r.body)) return;
  const key = JSON.stringify(r.body);
  if (key === state.runsSeen) return;
  state.runsSeen = key;
  const tb = $('#runs-table tbody');
  tb.textContent = '';
  for (const run of r.body.slice().reverse()) {
    const tr = el('tr');
    tr.dataset.run = run.id;
    tr.appendChild(el('td', run.id));
    tr.appendChild(el('td', run.name));
    tr.appendChild(el('td', run.state + (run.error ? ' (' + run.error + ')' : ''),
      run.state === 'done' ? 'ok' : (run.state === 'failed' || run.state === 'aborted') ? 'bad' : ''));
    tr.appendChild(el('td', run.created));
    tr.appendChild(el('td', run.iterations, 'num'));
    const td = el('td');
    const base = '/api/runs/' + encodeURIComponent(run.id);
    td.appendChild(link(base + '/report.json', 'JSON'));
    td.appendChild(document.createTextNode(' '));
    td.appendChild(link(base + '/report.csv', 'CSV'));
    td.appendChild(document.createTextNode(' '));
    td.appendChild(link(base + '/report.csv?what=samples', 'samples CSV'));
    tr.appendChild(td);
    const td2 = el('td');
    const b = el('button', 'Compare');
    b.addEventListener('click', () => compareRun(run.id));
    td2.appendChild(b);
    tr.appendChild(td2);
    tb.appendChild(tr);
  }
}

/* Side by side: the latency CDF of each variant, pooled over repeats. */
async function compareRun(id) {
  const r = await api('GET', '/api/runs/' + encodeURIComponent(id));
  if (!r.ok) return;
  const run = r.body;
  const byVar = new Map();
  for (const it of run.iterations || []) {
    const v = String(it.variant);
    if (!byVar.has(v)) byVar.set(v, []);
    byVar.get(v).push(it);
  }
  $('#cdf-title').textContent = 'Latency distribution per variant: run ' + run.id + ' (' + run.name + ')';
  const tb = $('#cmp-table tbody');
  tb.textContent = '';
  const qs = new Set();
  const curves = [];
  for (const [name, its] of byVar) {
    // Pool: per quantile, the mean over repeats (each repeat's own CDF).
    const acc = new Map();
    let calls = 0, gp = 0, failed = 0, p50 = [], p90 = [], p99 = [], mx = 0;
    for (const it of its) {
      const rpc = get(it, 'send', 'rpc');
      gp += num(get(it, 'send', 'goodput_bps')) || 0;
      failed += num(get(it, 'send', 'streams_failed')) || 0;
      if (!rpc) continue;
      calls += num(rpc.count) || 0;
      p50.push(rpc.p50_ms); p90.push(rpc.p90_ms); p99.push(rpc.p99_ms);
      mx = Math.max(mx, num(rpc.max_ms) || 0);
      for (const pair of rpc.cdf || []) {
        if (!Array.isArray(pair)) continue;
        const q = num(pair[1]), ms = num(pair[0]);
        if (q === null || ms === null) continue;
        qs.add(q);
        if (!acc.has(q)) acc.set(q, []);
        acc.get(q).push(ms);
      }
    }
    const mean = (a) => a.length ? a.reduce((x, y) => x + y, 0) / a.length : null;
    curves.push({ name, acc });
    const tr = el('tr');
    for (const c of [name, its.length, calls, fmt(mean(p50)), fmt(mean(p90)), fmt(mean(p99)), fmt(mx),
      fmt(gp / Math.max(1, its.length) / 1e6), failed]) tr.appendChild(el('td', c));
    tb.appendChild(tr);
  }
  if (!HAVE_UPLOT) return;
  // x: quantile (as %), y: latency ms, one series per variant.
  const xs = Array.from(qs).sort((a, b) => a - b);
  const data = [xs.map((q) => q * 100)];
  for (const c of curves) {
    data.push(xs.map((q) => { const a = c.acc.get(q); return a ? a.reduce((x, y) => x + y, 0) / a.length : null; }));
  }
  const box = $('#ch-cdf');
  if (state.charts.cdf) { state.charts.cdf.destroy(); box.textContent = ''; }
  state.charts.cdf = new uPlot({
    width: Math.max(400, box.clientWidth || 700), height: 260,
    scales: { x: { time: false }, y: { distr: 3 } },
    axes: [{ label: 'percentile', values: (u, v) => v.map((x) => x + '%') }, { label: 'ms' }],
    series: [{ label: 'percentile' }].concat(curves.map((c, i) => ({ label: c.name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: true } }))),
  }, data, box);
}

/* ---- side by side: a testbed the controller builds, the comparison run on it */

function sbsStatus(text, cls) {
  const p = $('#sbs-status');
  p.textContent = text;
  p.className = cls || 'muted';
}

async function sbsWait(what, secs, fn) {
  const end = Date.now() + secs * 1000;
  while (Date.now() < end) {
    const r = await fn();
    if (r) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(what + ': not within ' + secs + ' s');
}

async function sbsRun(tb, form) {
  const f = new FormData(form);
  const sc = tb.scenario;
  sc.duration_s = Number(f.get('duration_s')) || 10;
  sc.workload.streams = Number(f.get('streams')) || 4;
  const r = await api('POST', '/api/runs', sc);
  if (r.status !== 201) throw new Error('run: ' + (r.body && r.body.error || r.status));
  const id = r.body.id;
  sbsStatus('testbed ' + tb.id + ': run ' + id + ' (' + sc.variants.length + ' variants × ' + sc.duration_s + ' s)…');
  const secs = sc.variants.length * (sc.duration_s + 20) + 30;
  const run = await sbsWait('run ' + id, secs, async () => {
    const x = await api('GET', '/api/runs/' + encodeURIComponent(id));
    return x.ok && ['done', 'failed', 'aborted'].includes(x.body.state) ? x.body : null;
  });
  await compareRun(id);
  sbsStatus('testbed ' + tb.id + ': run ' + id + ' ' + run.state + (run.error ? ' (' + run.error + ')' : '') +
    ': latency distributions below (Runs)', run.state === 'done' ? 'ok' : 'bad');
  $('#sbs').dataset.run = id;
}

async function refreshTestbeds() {
  const r = await api('GET', '/api/testbeds');
  if (!r.ok || !Array.isArray(r.body)) return;
  const tb = $('#tb-table tbody');
  const key = JSON.stringify(r.body.map((t) => [t.id, t.state, t.error]));
  if (key === state.tbSeen) return;
  state.tbSeen = key;
  tb.textContent = '';
  for (const t of r.body) {
    const tr = el('tr');
    tr.dataset.testbed = t.id;
    tr.appendChild(el('td', t.id));
    tr.appendChild(el('td', t.peers.join(', ')));
    tr.appendChild(el('td', 'loss ' + t.loss + ', ' + t.delay_ms + ' ms'));
    tr.appendChild(el('td', t.state + (t.error ? ' (' + t.error + ')' : ''),
      t.state === 'ready' ? 'ok' : t.state === 'failed' ? 'bad' : ''));
    const td = el('td');
    const run = el('button', 'Run');
    run.disabled = t.state !== 'ready';
    run.addEventListener('click', () => sbsRun(t, $('#f-sbs')).catch((e) => sbsStatus(String(e.message || e), 'bad')));
    const del = el('button', 'Delete');
    del.addEventListener('click', async () => {
      const x = await api('DELETE', '/api/testbeds/' + encodeURIComponent(t.id));
      sbsStatus(x.ok ? 'testbed ' + t.id + ' deleted' : 'delete: ' + (x.body && x.body.error), x.ok ? 'muted' : 'bad');
      refreshTestbeds();
    });
    td.appendChild(run);
    td.appendChild(document.createTextNode(' '));
    td.appendChild(del);
    tr.appendChild(td);
    tb.appendChild(tr);
  }
}

function wireSideBySide() {
  const form = $('#f-sbs');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const spec = {
      peers: ['sctpt', 'ssh', 'shadowsocks', 'direct'].filter((p) => f.get('peer-' + p)),
      loss: Number(f.get('loss')), delay_ms: Number(f.get('delay_ms')),
    };
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      sbsStatus('building the testbed (namespaces, impair, tunnels, send, recv)…');
      const r = await api('POST', '/api/testbeds', spec);
      if (r.status !== 201) throw new Error('testbed: ' + (r.body && r.body.error || r.status));
      const id = r.body.id;
      const tb = await sbsWait('testbed ' + id, 90, async () => {
        const x = await api('GET', '/api/testbeds/' + encodeURIComponent(id));
        if (x.ok && x.body.state === 'failed') throw new Error('testbed ' + id + ': ' + x.body.error);
        return x.ok && x.body.state === 'ready' ? x.body : null;
      });
      refreshTestbeds();
      await sbsRun(tb, form);
    } catch (e) {
      sbsStatus(String(e.message || e), 'bad');
    } finally {
      btn.disabled = false;
    }
  });
}

async function refreshEvents() {
  const r = await api('GET', '/api/events');
  if (!r.ok || !Array.isArray(r.body)) return;
  const ul = $('#events');
  ul.textContent = '';
  for (const e of r.body.slice(-40).reverse()) ul.appendChild(el('li', e.time + ' ' + e.msg));
}

/* ---- the loop */

async function tick() {
  try {
    const info = await api('GET', '/api/info');
    if (info.ok) {
      $('#status').textContent = 'controller ' + info.body.version +
        (info.body.active_run ? ' — run ' + info.body.active_run + ' in progress' : ' — idle');
    }
    await refreshNodes();
    const now = Date.now() / 1000;
    pushPoint(now, derive(now));
    redraw();
    drawPaths();
    drawStreams();
    await refreshRuns();
    await refreshTestbeds();
    await refreshEvents();
  } catch (e) {
    $('#status').textContent = 'controller unreachable';
  }
  setTimeout(tick, POLL_MS);
}

/*
 * History: the controller keeps the last samples of every node; replay them
 * once at load, so a page opened mid-run shows what came before.
 */
async function prefill() {
  const info = await api('GET', '/api/info');
  const r = await api('GET', '/api/nodes');
  if (!info.ok || !r.ok || !Array.isArray(r.body)) return;
  const offset = Date.now() / 1000 - num(info.body.uptime_s);   // controller t -> unix s
  const all = [];
  for (const n of r.body) {
    const s = await api('GET', '/api/nodes/' + encodeURIComponent(n.id) + '/series');
    if (!s.ok || !s.body || !Array.isArray(s.body.samples)) continue;
    for (const x of s.body.samples) all.push({ node: n, t: num(x.t), stats: x.stats });
  }
  all.sort((a, b) => a.t - b.t);
  const lastOf = new Map();
  let next = null;
  for (const x of all) {
    if (x.t === null) continue;
    lastOf.set(x.node.id, x.stats);
    if (next !== null && x.t < next) continue;
    next = x.t + 1;
    state.nodes = r.body.map((n) => Object.assign({}, n, { last: lastOf.get(n.id) || null }));
    const when = offset + x.t;
    pushPoint(when, derive(when));
  }
  state.nodes = r.body;
}

function main() {
  if (!HAVE_UPLOT) $('#nocharts').hidden = false;
  wireControls();
  wireScenario();
  wireSideBySide();
  prefill().catch(() => {}).then(() => tick()).then(loadImpair);
}

main();
