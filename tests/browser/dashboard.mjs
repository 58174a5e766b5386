// Headless-Chromium test of the command-center dashboard against a running `pingan serve`.
// Usage: node tests/browser/dashboard.mjs <dashboard url> <clickhouse url> <database> <screenshot.png>
// Checks: counters and the map render; new rows inserted into ClickHouse show up as a changed
// counter through the live SSE feed within a few seconds; saves a 1920×1080 screenshot.
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, clickhouse, db, shot] = process.argv.slice(2);
if (!shot) {
  console.error('usage: dashboard.mjs <url> <clickhouse url> <database> <screenshot.png>');
  process.exit(2);
}

async function ch(sql) {
  const r = await fetch(`${clickhouse}/?database=${db}`, { method: 'POST', body: sql });
  const text = await r.text();
  if (!r.ok) throw new Error(`clickhouse: ${text}`);
  return text;
}

const profile = mkdtempSync(join(tmpdir(), 'pingan-chromium-'));
// A fresh profile directory per run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1920, height: 1080 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok' : 'FAIL'} - ${what}`);
  if (!ok) failed++;
};
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  const external = [];
  page.on('request', (req) => { if (!req.url().startsWith(url)) external.push(req.url()); });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20000 });
  await page.waitForFunction(() => /\d/.test(document.getElementById('today-total').textContent), null, { timeout: 10000 });
  const before = Number((await page.textContent('#today-total')).replace(/,/g, ''));
  check(before > 0, `counters render (today total ${before})`);
  const tiles = await page.locator('.counter').count();
  check(tiles === 10, `ten category counters (${tiles})`);
  const cells = Number(await page.getAttribute('body', 'data-map-cells'));
  check(cells > 50, `map renders hexagon cells (${cells})`);
  const canvas = await page.locator('#map canvas').count();
  check(canvas > 0, 'map canvas present');
  const incidents = await page.locator('#incidents li').count();
  check(incidents > 3, `newest incidents listed (${incidents})`);

  // New events stored now must reach the counter through SSE, no reload.
  await ch(`INSERT INTO incidents (event_id, source, event_time, category, subtype, department, district_code, town_code,
      station_code, compound_id, lat, lon, h3, h3_r8, h3_r7, keywords, description)
    SELECT generateUUIDv4(), 'call', now(), 'FRAUD', 'FRAUD_FAKE_GOV', 'ANTIFRAUD', district_code, town_code, station_code,
      compound_id, lat, lon, h3, h3_r8, h3_r7, ['冒充','公检法'], '浏览器测试：冒充公检法要求转账'
    FROM incidents WHERE isNotNull(h3) LIMIT 7`);
  const t0 = Date.now();
  let after = before;
  try {
    await page.waitForFunction((b) => Number(document.getElementById('today-total').textContent.replace(/,/g, '')) >= b + 7, before, { timeout: 8000 });
    after = Number((await page.textContent('#today-total')).replace(/,/g, ''));
  } catch { /* reported below */ }
  check(after === before + 7, `counter changed ${before} → ${after} via SSE in ${Date.now() - t0} ms`);
  // The feed is a separate SSE message from the counters: give it the same few seconds.
  try {
    await page.waitForFunction(() => (document.querySelector('#incidents li')?.textContent ?? '').includes('冒充公检法'), null, { timeout: 8000 });
  } catch { /* reported below */ }
  const top = await page.textContent('#incidents li:first-child');
  check(top.includes('冒充公检法'), `new incident on top of the feed (${top.trim().slice(0, 40)})`);
  // A spike alert written by the aggregator reaches the alert feed through SSE.
  await ch(`INSERT INTO alerts (id, alert_key, area_level, area_code, category, subtype, window_start, window_end, observed,
      expected, baseline, score, p_value, level, method, contributors, created_at, updated_at, version)
    VALUES ('browser-test', 'browser-test', 'town', '310112102', 'FRAUD', 'FRAUD_FAKE_GOV', now() - 3600, now(), 7, 0.8,
      'same hour of week, 8 weeks', 5.2, 0.0001, 'red', 'poisson', [], now(), now(), 1)`);
  try {
    await page.waitForFunction(() => document.querySelector('#alerts li:first-child')?.textContent.includes('七宝镇'), null, { timeout: 8000 });
    check(true, 'new alert on top of the alert feed via SSE');
  } catch {
    check(false, `new alert on top of the alert feed (${await page.textContent('#alerts')})`);
  }
  check(external.length === 0, `no request leaves the origin (${external.slice(0, 3).join(', ')})`);
  await page.waitForTimeout(2500);
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${9 - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
