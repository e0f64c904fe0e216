// test_page.mjs - the page at / in a real browser: Debian's Chromium driven
// by playwright-core, against the real resnetd on 127.0.0.1 with the real
// default ResNet-50. Judged against the server's own answer for the same file
// fetched with curl in the same run:
// - GET / and /ui/* carry the strict CSP, types, ETag (304 on revalidation);
// - dog.jpg: the bars are the server's top-k in its order, "malamute" first,
//   each shown probability equal to the server's as displayed (2 decimals of
//   a percent); the model, version and precision that answered are shown;
// - the activation map layer is drawn over the photo, hottest where the
//   server's map is hottest (sampled at each cell's centre in its crop);
// - a file that is not an image shows an error in words, not JSON;
// - with auth_token set (and accept_png=false, small body limits): the page
//   loads without the token, says a token is needed, works once it is typed,
//   keeps it for the tab only; a PNG, 413 and 503 are refused in words;
// - nothing is requested outside 127.0.0.1, and no CSP violation is reported.
// Screenshots (desktop and phone) go to the log folder given.
//
// usage: node test_page.mjs RESNETD MODEL PHOTO LOGDIR
// playwright-core comes from npm into .cache/playwright (tools/install_deps.sh
// puts it there; this installs it when missing). Without Chromium or
// playwright-core it skips (77), except under CI=true, where that fails.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [binary, model, photo, logDir] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const cacheDir = path.resolve(here, '../../.cache/playwright');
const CHROMIUM = '/usr/bin/chromium';
const failures = [];

function check(cond, msg) {
  if (!cond) {
    failures.push(msg);
    console.log('FAIL: ' + msg);
  } else {
    console.log('ok: ' + msg);
  }
  return cond;
}

function unavailable(why) {
  if (process.env.CI === 'true') {
    console.log(`test_page.mjs: FAIL: ${why}, and CI=true (tools/install_deps.sh installs it)`);
    process.exit(1);
  }
  console.log(`test_page.mjs: SKIP: ${why}`);
  process.exit(77);
}

function loadPlaywright() {
  const req = createRequire(path.join(cacheDir, 'package.json'));
  try {
    return req('playwright-core');
  } catch (_) {
    fs.mkdirSync(cacheDir, { recursive: true });
    try {
      execFileSync('npm', ['install', '--prefix', cacheDir, '--no-audit', '--no-fund',
        'playwright-core'], { stdio: 'inherit', timeout: 120000 });
      return req('playwright-core');
    } catch (e) {
      unavailable('playwright-core could not be installed from npm (' + e.message + ')');
    }
  }
}

class Server {
  constructor(flags) {
    this.logPath = path.join(os.tmpdir(), `resnetd-page.${process.pid}.${Date.now()}.log`);
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RESNETD_')));
    this.log = fs.openSync(this.logPath, 'w');
    this.proc = spawn(binary, ['serve', '--bind', '127.0.0.1', '--port', '0', '--model', model,
      '--http-threads', '2', ...flags], { stdio: ['ignore', 'ignore', this.log], env });
  }

  async ready() {
    const deadline = Date.now() + 300000;
    while (Date.now() < deadline) {
      const m = /ready: listening on \S*:(\d+)"/.exec(fs.readFileSync(this.logPath, 'utf8'));
      if (m) {
        this.base = `http://127.0.0.1:${m[1]}`;
        return this;
      }
      if (this.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('resnetd did not start:\n' + fs.readFileSync(this.logPath, 'utf8'));
  }

  async stop() {
    this.proc.kill('SIGTERM');
    await new Promise((r) => (this.proc.exitCode !== null ? r() : this.proc.on('exit', r)));
    fs.closeSync(this.log);
    check(this.proc.exitCode === 0, `resnetd exited ${this.proc.exitCode} (0 expected; a sanitizer ` +
      `report makes it fail): ${this.proc.exitCode ? fs.readFileSync(this.logPath, 'utf8').slice(-2000) : ''}`);
    if (this.proc.exitCode === 0) fs.unlinkSync(this.logPath);
  }
}

// The server's answer for the photo, with curl (an independent client).
function curlClassify(base, token) {
  const args = ['-s', '-F', `image=@${photo}`, `${base}/classify?topk=5&explain=cam`];
  if (token) args.unshift('-H', `Authorization: Bearer ${token}`);
  return JSON.parse(execFileSync('curl', args, { encoding: 'utf8' }));
}

async function checkHeaders(base) {
  const csp = ["default-src 'none'", "script-src 'self'", "style-src 'self'",
    "img-src 'self' blob: data:", "connect-src 'self'", "frame-ancestors 'none'",
    "base-uri 'none'", "form-action 'none'"];
  for (const [url, type] of [['/', 'text/html'], ['/ui/app.js', 'text/javascript'],
    ['/ui/style.css', 'text/css']]) {
    const r = await fetch(base + url);
    const got = (r.headers.get('content-security-policy') || '').split(';').map((s) => s.trim());
    check(r.status === 200 && (r.headers.get('content-type') || '').startsWith(type),
      `GET ${url}: 200 ${type} (${r.status} ${r.headers.get('content-type')})`);
    check(csp.every((d) => got.includes(d)) && got.length === csp.length,
      `GET ${url}: the strict CSP (${got.join('; ')})`);
    check(r.headers.get('x-content-type-options') === 'nosniff', `GET ${url}: nosniff`);
    const etag = r.headers.get('etag');
    const again = await fetch(base + url, { headers: { 'If-None-Match': etag || '"none"' } });
    check(etag && again.status === 304, `GET ${url} with If-None-Match: 304 (${again.status})`);
  }
  const missing = await fetch(base + '/ui/nope.js');
  check(missing.status === 404, `GET /ui/nope.js: 404 (${missing.status})`);
}

async function launch(chromium) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'resnetd-page-chromium.'));
  const browser = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1100, height: 800 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return { browser, userDir };
}

// Watches a page: every request must be for base (or blob:/data:), and no CSP violation.
function watch(page, base, label) {
  const state = { outside: [], csp: [] };
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base + '/') && !u.startsWith('blob:') && !u.startsWith('data:'))
      state.outside.push(u);
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) state.csp.push(m.text());
  });
  state.done = () => {
    check(state.outside.length === 0, `${label}: no request outside ${base} (${state.outside})`);
    check(state.csp.length === 0, `${label}: no CSP violation (${state.csp})`);
  };
  return state;
}

// The first card's outcome once it has one: bars or an error.
async function cardOutcome(page) {
  const card = page.locator('#results .card').first();
  await card.locator('.bar, .error:not([hidden])').first().waitFor({ timeout: 120000 });
  return card;
}

async function upload(page, files) {
  await page.locator('#files').setInputFiles(files);
  return cardOutcome(page);
}

// Drops a file on the drop zone, as a drag from the desktop does.
async function dropFile(page, file, type) {
  const before = await page.locator('#results .card').count();
  const dt = await page.evaluateHandle(([b64, name, type]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const d = new DataTransfer();
    d.items.add(new File([bytes], name, { type }));
    return d;
  }, [fs.readFileSync(file).toString('base64'), path.basename(file), type]);
  await page.dispatchEvent('#drop', 'dragover', { dataTransfer: dt });
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
  await page.waitForFunction((n) => document.querySelectorAll('#results .card').length > n, before);
}

// The displayed bars: [{label, percent}] as shown.
async function bars(card) {
  return card.locator('.bar').evaluateAll((els) => els.map((e) => ({
    label: e.querySelector('.label').textContent,
    shown: e.querySelector('.prob').textContent,
  })));
}

function argmax(values) {
  let best = 0;
  values.forEach((v, i) => { if (v > values[best]) best = i; });
  return best;
}

async function checkCam(card, ref) {
  const cam = ref.results[0].cam;
  if (!check(cam && Array.isArray(cam.data), 'the server sends a CAM for explain=cam (POST /classify?explain=cam)'))
    return;
  const canvas = card.locator('canvas.cam');
  check(await canvas.isVisible(), 'the activation map layer is shown over the photo');
  // brightness at the centre of each cell of the crop, as drawn on the canvas
  const heat = await canvas.evaluate((c, cam) => {
    const ctx = c.getContext('2d');
    const out = [];
    for (let y = 0; y < cam.height; y++)
      for (let x = 0; x < cam.width; x++) {
        const px = Math.floor(cam.crop.x + (x + 0.5) * cam.crop.width / cam.width);
        const py = Math.floor(cam.crop.y + (y + 0.5) * cam.crop.height / cam.height);
        const d = ctx.getImageData(px, py, 1, 1).data;
        out.push(d[3] ? d[0] + d[1] + d[2] : -1);
      }
    return out;
  }, cam);
  check(heat.every((v) => v >= 0), 'the map covers every cell of its crop');
  const outside = await canvas.evaluate((c, crop) => {
    const ctx = c.getContext('2d');
    const alpha = (x, y) => (x >= 0 && y >= 0 && x < c.width && y < c.height
      ? ctx.getImageData(x, y, 1, 1).data[3] : 0);
    return Math.max(alpha(crop.x - 2, crop.y + 2), alpha(crop.x + crop.width + 1, crop.y + 2),
      alpha(crop.x + 2, crop.y - 2), alpha(crop.x + 2, crop.y + crop.height + 1));
  }, cam.crop);
  check(outside === 0, `nothing is drawn outside the crop (alpha ${outside} there)`);
  const drawn = argmax(heat);
  const server = argmax(cam.data);
  check(drawn === server, `the drawn map is hottest at the server's hottest cell ` +
    `(drawn cell ${drawn}, server cell ${server}, grid ${cam.width}x${cam.height})`);
}

// "Copy as curl": the command shown, run by a shell beside the photo, gives
// the server's answer (the token comes from $RESNETD_TOKEN).
async function checkCurl(page, ref, token) {
  await page.getByRole('button', { name: 'Copy as curl' }).press('Enter');
  const cmd = await page.locator('#curl-text').textContent();
  let doc = null;
  try {
    doc = JSON.parse(execFileSync('sh', ['-c', cmd], { cwd: path.dirname(photo), encoding: 'utf8',
      env: { ...process.env, RESNETD_TOKEN: token } }));
  } catch (e) {
    doc = { error: String(e) };
  }
  const got = doc.results && doc.results[0].predictions;
  check(got && got[0].label === ref.results[0].predictions[0].label &&
    Math.abs(got[0].probability - ref.results[0].predictions[0].probability) < 1e-6,
    `copy as curl${token ? ' (token)' : ''}: the command gives the server's answer (${cmd})`);
}

async function checkDog(page, card, ref, label) {
  const shown = await bars(card);
  const want = ref.results[0].predictions;
  check(shown.length === want.length, `${label}: ${want.length} bars (${shown.length})`);
  check(shown[0] && shown[0].label === 'malamute' && want[0].label === 'malamute',
    `${label}: malamute is the first bar (${shown[0] && shown[0].label})`);
  want.forEach((p, i) => {
    const s = shown[i] || { label: '?', shown: '' };
    const pct = parseFloat(s.shown);
    check(s.label === p.label && /^\d+\.\d\d %$/.test(s.shown) &&
      Math.abs(pct - p.probability * 100) <= 0.005 + 1e-9,
      `${label}: bar ${i + 1} ${s.label} ${s.shown} is the server's ${p.label} ${p.probability}`);
  });
  // what a screen reader is given: the list by its name, each bar's label and percentage
  const aria = await card.getByRole('list', { name: 'Top predictions' }).ariaSnapshot();
  check(aria.includes(`listitem: ${want[0].label} ${shown[0] && shown[0].shown}`),
    `${label}: the bars are read as label and percentage (${aria.split('\n').slice(0, 2).join(' | ')})`);
  const meta = await card.locator('.meta').textContent();
  check(meta.includes(ref.model) && meta.includes('version 1') &&
    meta.toLowerCase().includes(String(ref.precision).toLowerCase()),
    `${label}: model, version and precision shown (${meta})`);
  check(/inference \d/.test(await card.locator('.timings').textContent()), `${label}: timings shown`);
}

async function openServer(chromium, base) {
  const { browser, userDir } = await launch(chromium);
  const page = browser.pages()[0] || await browser.newPage();
  const w = watch(page, base, base);
  await page.goto(base + '/');
  return { browser, userDir, page, w };
}

async function plain(chromium) {
  const srv = await new Server(['--access-log', 'false']).ready();
  try {
    await checkHeaders(srv.base);
    const ref = curlClassify(srv.base);
    const { browser, page, w } = await openServer(chromium, srv.base);
    await page.getByLabel('Model').locator('option', { hasText: ref.model }).waitFor({ state: 'attached' });
    check(await page.getByLabel('Access token').isVisible(), 'the token field has a label');
    const card = await upload(page, photo);
    await checkDog(page, card, ref, 'dog.jpg');
    await page.waitForTimeout(300);
    await checkCam(card, ref);
    await page.screenshot({ path: path.join(logDir, 'page.png') });
    await checkCurl(page, ref, '');
    await dropFile(page, photo, 'image/jpeg');
    await checkDog(page, await cardOutcome(page), ref, 'dog.jpg dropped');
    const bad = await upload(page, { name: 'notes.jpg', mimeType: 'image/jpeg',
      buffer: Buffer.from('this is a text file, not a photo\n') });
    const text = (await bad.locator('.error').textContent()) || '';
    check(/could not read this image/.test(text) && !/[{}]/.test(text),
      `a file that is not an image: an error in words (${text})`);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(logDir, 'page-phone.png') });
    const cardBox = await page.locator('#results .card').first().boundingBox();
    check(cardBox && cardBox.x + cardBox.width <= 390, 'phone width: the cards fit the screen');
    w.done();
    await browser.close();
  } finally {
    await srv.stop();
  }
}

async function withToken(chromium) {
  const token = 'page-test-' + process.pid;
  // dog.jpg (164 KB) fits both limits; 300 KB is over the buffering budget
  // (503), 500 KB over max_body_bytes (413)
  const srv = await new Server(['--access-log', 'false', '--auth-token', token,
    '--accept-png', 'false', '--max-body-bytes', '400000',
    '--max-buffered-body-bytes', '250000']).ready();
  try {
    const ref = curlClassify(srv.base, token);
    const { browser, page, w } = await openServer(chromium, srv.base);
    await page.locator('#model-note', { hasText: 'access token' }).waitFor();
    check(true, 'auth: the page loads without the token and says one is needed');
    const refused = await upload(page, photo);
    const text = (await refused.locator('.error').textContent()) || '';
    check(/access token/.test(text) && !/[{}]/.test(text), `auth: 401 in words (${text})`);
    await page.getByLabel('Access token').fill(token);
    await page.getByLabel('Access token').press('Tab'); // keyboard only: leaving the field applies it
    await page.locator('#model option', { hasText: ref.model }).waitFor({ state: 'attached' });
    // from the keyboard: Tab from the map toggle to the picker, Space opens it
    await page.getByLabel('Show where it looked (activation map)').focus();
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.id) === 'files',
      'keyboard: Tab from the toggle reaches the image picker');
    const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10000 }),
      page.keyboard.press('Space')]);
    await chooser.setFiles(photo);
    const card = await cardOutcome(page);
    await checkDog(page, card, ref, 'auth: dog.jpg with the token, picked from the keyboard');
    await checkCurl(page, ref, token);
    for (const [size, words] of [[500000, /too large for the server/], [300000, /busy .*try again in 1 s/]]) {
      const big = await upload(page, { name: `big${size}.jpg`, mimeType: 'image/jpeg',
        buffer: Buffer.alloc(size, 0x5a) });
      const t = (await big.locator('.error').textContent()) || '';
      check(words.test(t) && !/[{}]/.test(t), `a ${size}-byte upload: ${size > 400000 ? 413 : 503} in words (${t})`);
    }
    const png = await page.screenshot({ clip: { x: 0, y: 0, width: 64, height: 64 } });
    const pngCard = await upload(page, { name: 'shot.png', mimeType: 'image/png', buffer: png });
    const pngText = (await pngCard.locator('.error').textContent()) || '';
    check(/PNG/.test(pngText) && /could not read|does not accept/.test(pngText) && !/[{}]/.test(pngText),
      `accept_png=false: a PNG refused in words (${pngText})`);
    await page.reload();
    check(await page.getByLabel('Access token').inputValue() === token, 'auth: the token is kept for the tab');
    const other = await browser.newPage();
    await other.goto(srv.base + '/');
    check(await other.getByLabel('Access token').inputValue() === '', 'auth: not kept for another tab');
    w.done();
    await browser.close();
  } finally {
    await srv.stop();
  }
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) unavailable(`no ${CHROMIUM} (apt-get install chromium)`);
  const { chromium } = loadPlaywright();
  fs.mkdirSync(logDir, { recursive: true });
  await plain(chromium);
  await withToken(chromium);
  console.log(`screenshots: ${path.join(logDir, 'page.png')}, page-phone.png`);
  if (failures.length) {
    console.log(`test_page.mjs: ${failures.length} failure(s)`);
    process.exit(1);
  }
  console.log('test_page.mjs: all checks passed');
}

main().catch((e) => {
  console.log('test_page.mjs: FAIL: ' + (e.stack || e));
  process.exit(1);
});
