// The controller's dashboard in a real headless Chromium (Debian's), driven
// by playwright-core from src/lab/web/node_modules.  Run by
// tests/integration/test_lab.py, which starts recv, impair, send and the
// controller and registers them; this script then works the page as a
// researcher would and prints one JSON line with what it saw.
//
//   node tests/browser/dashboard.mjs CONTROLLER_URL IMPAIR_API_URL SCREENSHOT SOCKS \
//        [METRICS_URL [SIDE_BY_SIDE]]
//
// The transfer's sctpt client is registered (its real --metrics) before the page loads: the
// RTT/cwnd chart must show its srtt_ms, cwnd and flight.  METRICS_URL: a stand-in with the
// same JSON schema whose paths fail over, registered through the page's node form, to check
// the path timeline marks a failover.  SIDE_BY_SIDE (any value): the Side by side panel builds
// a testbed (the controller runs as root), runs the comparison, shows the latency chart of
// each variant, and the testbed is deleted from the page.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../src/lab/web/package.json'));
const { chromium } = require('playwright-core');

const [ctlUrl, impairUrl, shot, socks, metricsUrl, sideBySide] = process.argv.slice(2);
const out = { console_errors: [], steps: [] };
const deadline = (s) => Date.now() + s * 1000;

async function until(what, secs, fn) {
  const end = deadline(secs);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out: ' + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  headless: true,
  timeout: 60000,
});
let ok = false;
try {
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
  page.on('pageerror', (e) => out.console_errors.push('pageerror: ' + e.message));
  await page.goto(ctlUrl, { waitUntil: 'load' });
  await until('status line', 15, async () => (await page.textContent('#status')).includes('controller'));
  out.steps.push('loaded');

  // A live transfer from the send form (rpc, so the latency chart has data too).
  await until('send node in the form', 15, async () => (await page.$$('#f-send select[name=node] option')).length > 0);
  await page.selectOption('#f-send select[name=mode]', 'rpc');
  await page.fill('#f-send input[name=streams]', '2');
  await page.fill('#f-send input[name=duration_s]', '15');
  await page.click('#f-send button[name=start]');
  await until('start accepted', 10, async () => (await page.textContent('#f-send .result')) === 'ok');
  out.steps.push('started');
  await until('live throughput and latency in the charts', 30, () => page.evaluate(() =>
    (state.series['tput:send rate'] || []).some((v) => v > 0) &&
    (state.series['tput:recv goodput'] || []).some((v) => v > 0) &&
    (state.series['lat:p50 ms'] || []).some((v) => v > 0) &&
    document.querySelectorAll('#ch-tput canvas, #ch-lat canvas').length >= 2));
  out.charts = await page.evaluate(() => ({
    points: state.t.length,
    send_max_mbit: Math.max(...(state.series['tput:send rate'] || [0]).filter((v) => v !== null)),
    p50_ms: (state.series['lat:p50 ms'] || []).filter((v) => v !== null).slice(-1)[0],
  }));
  out.steps.push('charts');
  // Real sctpt metrics (the transfer's client, --metrics): RTT, cwnd and bytes in flight.
  await until('sctpt RTT and cwnd in the chart', 20, () => page.evaluate(() =>
    (state.series['rtt:srtt ms'] || []).some((v) => v > 0) &&
    (state.series['rtt:cwnd'] || []).some((v) => v > 0) &&
    (state.series['rtt:flight'] || []).some((v) => v !== null) &&
    document.querySelectorAll('#ch-rtt canvas').length >= 1));
  out.sctpt = await page.evaluate(() => {
    const last = (k) => (state.series[k] || []).filter((v) => v !== null).slice(-1)[0];
    return { srtt_ms: last('rtt:srtt ms'), rttvar_ms: last('rtt:rttvar ms'), cwnd: last('rtt:cwnd'),
      flight: last('rtt:flight'), paths: document.querySelector('#paths').textContent };
  });
  out.steps.push('sctpt metrics');

  // A control change through the form must reach impair.
  await page.click('#impair-load');
  await page.fill('#f-impair input[name="c2s.delay_ms"]', '7');
  await page.fill('#f-impair input[name="s2c.loss"]', '0.001');
  await page.click('#f-impair button[type=submit]');
  await until('impair form applied', 10, async () => (await page.textContent('#f-impair .result')) === 'ok');
  const s = await (await fetch(impairUrl + '/settings')).json();
  out.impair_after_form = { c2s_delay_ms: s.c2s.delay_ms, s2c_loss: s.s2c.loss };
  out.steps.push('control');
  await new Promise((r) => setTimeout(r, 5000));
  if (shot) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: shot, fullPage: false });
    out.screenshot = shot;
  }
  await until('transfer end', 30, async () => {
    const r = await (await fetch(ctlUrl + 'api/nodes')).json();
    const snd = r.find((n) => n.kind === 'send');
    return snd && snd.last && snd.last.state !== 'running';
  });

  // A scenario from the runner, to completion, and its report downloaded.
  const sc = {
    name: 'browser', duration_s: 4, seed: 3, repeat: 1,
    workload: { mode: 'rpc', streams: 2, rpc_req: 100, rpc_resp: 500 },
    timeline: ['at 0s loss 1%', 'at 2s delay 20ms c2s', 'at 3s restore'],
    variants: [{ name: 'sctpt', socks: socks || '' }, { name: 'direct', socks: '' }],
  };
  await page.fill('#sc-text', JSON.stringify(sc));
  await page.click('#sc-check');
  await until('scenario checked', 10, async () => (await page.textContent('#sc-result')).startsWith('ok'));
  await page.click('#sc-run');
  const runId = await until('run started', 10, async () => {
    const t = await page.textContent('#sc-result');
    const m = /run (r\d+) started/.exec(t);
    return m && m[1];
  });
  await until('run done in the table', 40, async () => {
    const cell = await page.$(`#runs-table tr[data-run="${runId}"] td:nth-child(3)`);
    return cell && (await cell.textContent()) === 'done';
  });
  out.steps.push('run done');
  await page.click(`#runs-table tr[data-run="${runId}"] button`);
  await until('comparison table', 10, async () => (await page.$$('#cmp-table tbody tr')).length === 2);
  out.compare_canvas = (await page.$$('#ch-cdf canvas')).length;
  const [dl] = await Promise.all([
    page.waitForEvent('download', { timeout: 15000 }),
    page.click(`#runs-table tr[data-run="${runId}"] a:text-is("JSON")`),
  ]);
  const file = await dl.path();
  const rep = JSON.parse(fs.readFileSync(file, 'utf8'));
  out.report = { id: rep.id, state: rep.state, iterations: rep.iterations.length,
    variants: rep.iterations.map((i) => i.variant),
    calls: rep.iterations.map((i) => i.send && i.send.rpc ? i.send.rpc.count : 0) };
  out.steps.push('report');
  if (metricsUrl) {
    await page.fill('#f-node input[name=id]', 'metrics');
    await page.selectOption('#f-node select[name=kind]', 'sctpt');
    await page.fill('#f-node input[name=url]', metricsUrl);
    await page.click('#f-node button[type=submit]');
    await until('metrics node added', 10, async () => (await page.textContent('#f-node .result')) === 'ok');
    await until('RTT, cwnd and retransmissions charted', 20, () => page.evaluate(() =>
      (state.series['rtt:srtt ms'] || []).some((v) => v > 0) &&
      (state.series['rtt:cwnd'] || []).some((v) => v > 0) &&
      (state.series['loss:retransmissions/s'] || []).some((v) => v > 0)));
    await until('a failover on the path timeline', 20, async () => (await page.$$('#paths span.failover')).length > 0);
    out.paths = await page.textContent('#paths');
    out.steps.push('metrics');
  }
  if (sideBySide) {
    await page.fill('#f-sbs input[name=loss]', '0.02');
    await page.fill('#f-sbs input[name=delay_ms]', '10');
    await page.fill('#f-sbs input[name=duration_s]', '3');
    await page.fill('#f-sbs input[name=streams]', '2');
    await page.click('#f-sbs button[type=submit]');
    await until('side-by-side run done', 100, async () => {
      const t = await page.textContent('#sbs-status');
      if (/failed|aborted|error|not within|testbed: /.test(t)) throw new Error('side by side: ' + t);
      return / done: /.test(t);
    });
    await until('3 variants compared', 10, async () => (await page.$$('#cmp-table tbody tr')).length === 3);
    out.sbs = {
      status: await page.textContent('#sbs-status'),
      variants: await page.$$eval('#cmp-table tbody tr', (rows) => rows.map((r) => ({
        name: r.cells[0].textContent, calls: Number(r.cells[2].textContent),
        p50_ms: Number(r.cells[3].textContent), p99_ms: Number(r.cells[5].textContent),
        failed: Number(r.cells[8].textContent) }))),
      canvas: (await page.$$('#ch-cdf canvas')).length,
    };
    const sbsRun = await page.evaluate(() => document.querySelector('#sbs').dataset.run);
    await until('the comparison run done in the runs table', 10, async () => {
      const cell = await page.$(`#runs-table tr[data-run="${sbsRun}"] td:nth-child(3)`);
      return cell && (await cell.textContent()) === 'done';
    });
    if (process.env.SCTPT_LAB_SBS_SCREENSHOT) {
      await (await page.$('#runs')).screenshot({ path: process.env.SCTPT_LAB_SBS_SCREENSHOT });
    }
    await page.click('#tb-table tbody tr button:text-is("Delete")');
    await until('testbed deleted', 30, async () => (await page.$$('#tb-table tbody tr')).length === 0);
    out.steps.push('side by side');
  }
  const after = await (await fetch(impairUrl + '/settings')).json();
  out.impair_after_run = { c2s_delay_ms: after.c2s.delay_ms, s2c_loss: after.s2c.loss, c2s_loss: after.c2s.loss };
  ok = true;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
out.ok = ok;
console.log(JSON.stringify(out));
process.exit(ok ? 0 : 1);
