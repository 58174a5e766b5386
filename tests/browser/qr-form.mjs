// Headless-Chromium test of the QR doorplate form (issue 3).
//
//   node tests/browser/qr-form.mjs <base-url> <signed-path>
//
// Opens the signed URL on a phone-sized viewport, checks the registered address is shown,
// fills in the report (kind 纠纷, description, phone), submits, waits for the confirmation with
// the 事件编号 and prints `{"event_id": …}` on stdout. It also checks the page loads nothing
// external, raises no script or CSP error, that the counter counts, that the client keeps one
// event_id per report, and that a tampered signature shows the error page.
// Drives Debian's /usr/bin/chromium (CHROMIUM to override) with a fresh --user-data-dir; the
// screenshots go to target/artifacts/qr-form.png (confirmation; SCREENSHOT to override) and
// qr-form-filled.png (the filled-in form), which git ignores.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [base, signedPath] = process.argv.slice(2);
if (!base || !signedPath) {
  console.error('usage: node qr-form.mjs <base-url> </qr/<plate>?sig=…>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const shot = process.env.SCREENSHOT || 'target/artifacts/qr-form.png';
fs.mkdirSync(path.dirname(shot), { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pingan-chromium-'));

function fail(msg) {
  throw new Error(msg);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: 'zh-CN',
});

const problems = [];
const external = [];
let exitCode = 0;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) external.push(r.url());
  });
  const posted = [];
  page.on('request', (r) => {
    if (r.method() === 'POST') posted.push(r.postDataJSON());
  });
  const answered = [];
  page.on('response', async (r) => {
    if (r.request().method() === 'POST') {
      try {
        answered.push({ status: r.status(), body: await r.json() });
      } catch {
        answered.push({ status: r.status(), body: null });
      }
    }
  });

  // 1. The form, with the plate's registered address.
  const resp = await page.goto(base + signedPath, { waitUntil: 'load' });
  if (resp.status() !== 200) fail(`form answered ${resp.status()}`);
  const address = (await page.locator('#address').textContent()).trim();
  if (!address) fail('no address shown');
  for (const kind of ['报警', '求助', '纠纷', '咨询']) {
    if ((await page.getByText(kind, { exact: true }).count()) < 1) fail(`kind ${kind} missing`);
  }

  // 2. Validation happens in the page before anything is sent.
  await page.locator('#submit').click();
  await page.locator('#error').waitFor({ state: 'visible' });
  if (posted.length !== 0) fail('an empty form was posted');

  // 3. Fill in and submit.
  await page.getByText('纠纷', { exact: true }).click();
  const text = '楼下邻居深夜装修噪音，协商无果，请派人调解。';
  await page.locator('#description').fill(text);
  const counted = (await page.locator('#count').textContent()).trim();
  if (counted !== String([...text].length)) fail(`counter shows ${counted}, expected ${[...text].length}`);
  await page.locator('#phone').fill('138 1234 1234');
  await page.screenshot({ path: shot.replace(/\.png$/, '-filled.png'), fullPage: true });
  await page.locator('#submit').click();
  await page.locator('#done').waitFor({ state: 'visible', timeout: 20000 });
  const eventId = (await page.locator('#event-id').textContent()).trim();
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const sent = posted.at(-1);
  // The page sends its own random id (so a retry is idempotent) and shows the id the server
  // stored the report under: the server namespaces it (CONTRACT §9), so it is never the sent one.
  if (!sent || !uuid.test(sent.event_id || '') || sent.kind !== 'dispute' || sent.description !== text) {
    fail(`unexpected body posted: ${JSON.stringify(sent)}`);
  }
  for (let i = 0; i < 50 && answered.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const answer = answered.at(-1);
  if (!answer || answer.status !== 202 || !answer.body || answer.body.event_id !== eventId) {
    fail(`confirmation shows ${JSON.stringify(eventId)}, the server answered ${JSON.stringify(answer)}`);
  }
  if (!uuid.test(eventId) || eventId === sent.event_id) {
    fail(`confirmation shows ${JSON.stringify(eventId)}: not the server's namespaced id`);
  }
  await page.screenshot({ path: shot, fullPage: true });

  if (external.length) fail(`external requests: ${external.join(', ')}`);
  if (problems.length) fail(problems.join('; '));

  // 4. A tampered signature shows the error page, not the form (its 403 is expected).
  const bad = signedPath.replace(/sig=([^.]*)\.(..)/, (_, v, h) => `sig=${v}.${h === '00' ? '11' : '00'}`);
  const badResp = await page.goto(base + bad, { waitUntil: 'load' });
  if (badResp.status() !== 403) fail(`tampered signature answered ${badResp.status()}`);
  if (!(await page.content()).includes('二维码无效')) fail('no bad-signature message');
  if ((await page.locator('form').count()) !== 0) fail('form shown for a tampered signature');

  process.stdout.write(JSON.stringify({ event_id: eventId, address, screenshot: shot }) + '\n');
} catch (e) {
  console.error(`qr-form: FAILED: ${e.message}`);
  exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(exitCode);
