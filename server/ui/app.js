// app.js - the page at / (index.html): picks a model from POST
// /v2/repository/index, sends each chosen or dropped image to
// POST /classify?explain=cam (one request per image), and shows its top-k as
// bars, the model, version and precision that answered, the timings, and,
// when the server sends one, the class activation map over the photo.
// Errors are put in words. The bearer token lives in sessionStorage (this
// tab only). Talks to this server only (the CSP says connect-src 'self').
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'resnetd.token';
let lastFiles = [];

function token() {
  return $('token').value.trim();
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: 'Bearer ' + t } : {};
}

function status(text) {
  $('status').textContent = text;
}

// The query /classify gets: top-k, the activation map, the chosen model.
function classifyQuery() {
  const q = new URLSearchParams();
  const k = parseInt($('topk').value, 10);
  if (k > 0) q.set('topk', String(k));
  q.set('explain', 'cam');
  if ($('model').value) q.set('model', $('model').value);
  return '/classify?' + q.toString();
}

// The server's error in words: what happened, then its own message.
function describeError(httpStatus, message, retryAfter) {
  const detail = message ? ' (' + message + ')' : '';
  switch (httpStatus) {
    case 0: return 'Could not reach the server: is it running?';
    case 400: return 'The server could not read this image' + detail + '.';
    case 401: return token()
      ? 'The access token was refused. Check it in the Access token field.'
      : 'This server needs an access token: enter it in the Access token field, then try again.';
    case 404: return 'The server does not serve that' + detail + '.';
    case 413: return 'This image is too large for the server' + detail + '.';
    case 415: return 'The server does not accept this kind of file' + detail + '.';
    case 422: return 'The model could not give an answer for this image' + detail + '.';
    case 503: return 'The server is busy or still loading; try again' +
      (retryAfter ? ' in ' + retryAfter + ' s' : ' shortly') + detail + '.';
    case 504: return 'The server took too long to answer' + detail + '.';
    default: return 'The server answered ' + httpStatus + detail + '.';
  }
}

// The message inside any of the server's error shapes, as plain text.
function errorMessage(body) {
  if (!body || typeof body !== 'object') return '';
  const e = body.error;
  if (typeof e === 'string') return e;
  if (e && typeof e.message === 'string') return e.message;
  if (typeof body.message === 'string') return body.message;
  return '';
}

async function readJson(resp) {
  try {
    return await resp.json();
  } catch (_) {
    return null;
  }
}

async function loadModels() {
  const note = $('model-note');
  let resp;
  try {
    resp = await fetch('/v2/repository/index', { method: 'POST', headers: authHeaders() });
  } catch (_) {
    note.textContent = describeError(0);
    return;
  }
  if (resp.status === 503) { // still loading: ask again shortly
    note.textContent = describeError(503, '', resp.headers.get('Retry-After'));
    setTimeout(loadModels, 2000);
    return;
  }
  if (!resp.ok) {
    note.textContent = resp.status === 401 ? describeError(401) : 'Models not listed: ' +
      describeError(resp.status, errorMessage(await readJson(resp)));
    if (resp.status === 401 && !token()) $('token').focus();
    return;
  }
  const rows = (await readJson(resp)) || [];
  // one entry per model: its ready version (the index lists every version)
  const models = [];
  for (const m of rows) {
    const seen = models.findIndex((x) => x.name === m.name);
    if (seen < 0) models.push(m);
    else if (m.state === 'READY' && models[seen].state !== 'READY') models[seen] = m;
  }
  const select = $('model');
  const keep = select.value;
  select.replaceChildren();
  for (const m of models) {
    const opt = document.createElement('option');
    opt.value = m.name;
    opt.textContent = m.name + (m.version ? ' (version ' + m.version + ', ' : ' (') +
      String(m.state || '').toLowerCase() + ')';
    select.append(opt);
  }
  if (keep && models.some((m) => m.name === keep)) select.value = keep;
  note.textContent = models.length + (models.length === 1 ? ' model served' : ' models served');
}

function percent(p) {
  return (p * 100).toFixed(2) + ' %';
}

function ms(v) {
  return typeof v === 'number' ? v.toFixed(1) + ' ms' : null;
}

function showBars(card, predictions) {
  const bars = card.querySelector('.bars');
  bars.replaceChildren();
  const sorted = predictions.slice().sort((a, b) => b.probability - a.probability);
  for (const p of sorted) {
    const li = document.createElement('li');
    li.className = 'bar';
    const fill = document.createElement('div');
    fill.className = 'fill';
    fill.setAttribute('aria-hidden', 'true');
    fill.style.width = Math.max(0, Math.min(100, p.probability * 100)) + '%';
    const text = document.createElement('div');
    text.className = 'text'; // read as "malamute 80.85 %"; the fill is decoration
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = p.label;
    const prob = document.createElement('span');
    prob.className = 'prob';
    prob.textContent = percent(p.probability);
    text.append(label, prob);
    li.append(fill, text);
    bars.append(li);
  }
}

function showMeta(card, doc, result) {
  const parts = [doc.model];
  if (doc.model_version) parts.push('version ' + doc.model_version);
  if (doc.precision) parts.push(doc.precision.toUpperCase());
  card.querySelector('.meta').textContent = 'Answered by ' + parts.join(' · ');
  const t = result.timings_ms || {};
  const shown = [['decode', t.decode], ['queue', t.queue], ['inference', t.inference],
    ['total', doc.timings_ms && doc.timings_ms.total]]
    .filter(([, v]) => typeof v === 'number').map(([n, v]) => n + ' ' + ms(v));
  card.querySelector('.timings').textContent = shown.join(' · ');
}

// A colour for v in 0..1, black through red and yellow to white, so that
// brighter always means hotter.
function heat(v) {
  const c = (x) => Math.round(255 * Math.max(0, Math.min(1, x)));
  return [c(3 * v), c(3 * v - 1), c(3 * v - 2), Math.round(255 * (0.1 + 0.6 * v))];
}

// Draws cam (height x width floats, raw) upscaled over its crop of the photo.
function drawCam(card, cam, img) {
  const canvas = card.querySelector('canvas.cam');
  const { height, width, data, crop } = cam;
  if (!(height > 0 && width > 0 && Array.isArray(data) && data.length === height * width && crop))
    return false;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi > lo ? hi - lo : 1;
  const grid = document.createElement('canvas');
  grid.width = width;
  grid.height = height;
  const gctx = grid.getContext('2d');
  const pixels = gctx.createImageData(width, height);
  data.forEach((v, i) => pixels.data.set(heat((v - lo) / span), 4 * i));
  gctx.putImageData(pixels, 0, 0);
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'low'; // bilinear: each cell's centre keeps its value
  ctx.drawImage(grid, crop.x, crop.y, crop.width, crop.height);
  canvas.dataset.drawn = 'true';
  return true;
}

function showCam(card, result, img) {
  const note = card.querySelector('.cam-note');
  const cam = result.cam;
  if (!cam) {
    note.hidden = false;
    note.textContent = 'This server sent no activation map.';
    return;
  }
  const draw = () => {
    if (drawCam(card, cam, img)) {
      note.hidden = false;
      note.textContent = 'Activation map of "' + cam.label + '"';
      updateCamVisibility();
    }
  };
  if (img.complete && img.naturalWidth) draw(); else img.addEventListener('load', draw, { once: true });
}

function updateCamVisibility() {
  const on = $('cam').checked;
  for (const c of document.querySelectorAll('canvas.cam')) c.hidden = !on || c.dataset.drawn !== 'true';
}

function showError(card, text) {
  card.querySelector('.pending').hidden = true;
  const p = card.querySelector('.error');
  p.hidden = false;
  p.textContent = text;
}

async function classify(file, card, img) {
  const form = new FormData();
  form.append('image', file, file.name);
  let resp;
  try {
    resp = await fetch(classifyQuery(), { method: 'POST', headers: authHeaders(), body: form });
  } catch (_) {
    showError(card, describeError(0));
    return;
  }
  const doc = await readJson(resp);
  const result = doc && Array.isArray(doc.results) ? doc.results[0] : null;
  if (!resp.ok || !result || result.error) {
    showError(card, describeError(resp.status, errorMessage(result && result.error ? result : doc),
      resp.headers.get('Retry-After')));
    return;
  }
  card.querySelector('.pending').hidden = true;
  showBars(card, result.predictions || []);
  showMeta(card, doc, result);
  showCam(card, result, img);
}

function newCard(file) {
  const card = $('card').content.firstElementChild.cloneNode(true);
  const img = card.querySelector('img');
  img.addEventListener('error', () => { img.hidden = true; }, { once: true }); // not an image
  img.src = URL.createObjectURL(file);
  img.alt = 'Photo ' + file.name;
  card.querySelector('.name').textContent = file.name;
  card.setAttribute('aria-label', file.name);
  return { card, img };
}

async function run(files) {
  files = Array.from(files).filter((f) => f.size > 0 || f.name);
  if (!files.length) return;
  lastFiles = files;
  updateCurl();
  status('Classifying ' + files.length + (files.length === 1 ? ' image…' : ' images…'));
  const cards = files.map(newCard); // the newest batch on top, in the order chosen
  $('results').prepend(...cards.map((c) => c.card));
  await Promise.all(files.map((f, i) => classify(f, cards[i].card, cards[i].img)));
  status('Done: ' + files.length + (files.length === 1 ? ' image.' : ' images.'));
}

// The same request as curl: one -F per image; the token from $RESNETD_TOKEN.
function curlCommand() {
  const q = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";
  const parts = ['curl'];
  if (token()) parts.push('-H', '"Authorization: Bearer $RESNETD_TOKEN"');
  const names = lastFiles.length ? lastFiles.map((f) => f.name) : ['photo.jpg'];
  for (const n of names) parts.push('-F', q('image=@' + n));
  parts.push(q(location.origin + classifyQuery()));
  return parts.join(' ');
}

function updateCurl() {
  $('curl').disabled = false;
  if (!$('curl-text').hidden) $('curl-text').textContent = curlCommand();
}

async function copyCurl() {
  const text = curlCommand();
  const pre = $('curl-text');
  pre.textContent = text;
  pre.hidden = false;
  try {
    await navigator.clipboard.writeText(text);
    status('Copied the curl command' + (token() ? ' (set RESNETD_TOKEN first).' : '.'));
  } catch (_) {
    const range = document.createRange();
    range.selectNodeContents(pre);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    status('Select and copy the command shown.');
  }
}

function setUpDrop() {
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    run(e.dataTransfer.files);
  });
}

function init() {
  $('token').value = sessionStorage.getItem(TOKEN_KEY) || '';
  $('token').addEventListener('change', () => {
    if (token()) sessionStorage.setItem(TOKEN_KEY, token()); else sessionStorage.removeItem(TOKEN_KEY);
    loadModels();
    updateCurl();
  });
  $('files').addEventListener('change', (e) => { run(e.target.files); e.target.value = ''; });
  $('cam').addEventListener('change', updateCamVisibility);
  $('curl').addEventListener('click', copyCurl);
  for (const id of ['model', 'topk']) $(id).addEventListener('change', updateCurl);
  $('curl').disabled = false;
  setUpDrop();
  loadModels();
}

init();
