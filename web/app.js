// The page around wgen's wasm Trainer: a training loop of a few steps per animation frame,
// every readback awaited (WebGPU never blocks), the sample grid and the VAE's reconstructions
// redrawn every few hundred steps, and a state object (`window.wgenPage.state()`) that the
// browser test reads.
import init, { Trainer, defaults } from './pkg/wgen_web.js';

const $ = (id) => document.getElementById(id);
const DATA = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];
// The first steps run one per read, so the curve's steep start is exact step by step.
const SINGLE_STEPS = 10;
// Steps between sample grids (and the VAE's test pass).
const GRID_EVERY = 200;
// A read every ~this many ms: long enough to keep the GPU busy, short enough to stay live.
const READ_MS = 120;
// The form's GAN settings, `wgen train --loss`, `--augment` and `--spectral-norm`.
const GAN_ONLY = ['loss', 'aug-color', 'aug-translation', 'aug-cutout', 'spectral-norm'];
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];

const page = {
  trainer: null, files: null, folder: null, running: false, adapter: '', error: null,
  history: [], chunk: 1, trainMs: 0, trainImages: 0, rate: 0, lastGrid: -1, negElbo: null, describe: null,
  // The data's line, which each run's notes follow.
  source: $('data-source').textContent,
};

function problem(text) {
  page.error = text;
  const box = $('problem');
  box.textContent = text;
  box.hidden = !text;
}

function setState(text) { $('state').textContent = text; }

function buttons() {
  const ready = page.files && !page.error?.startsWith('WebGPU');
  $('start').disabled = !ready || page.running;
  $('pause').disabled = !page.running;
  $('reset').disabled = !page.trainer || page.running;
  $('download').disabled = !page.trainer || page.running;
  for (const id of ['model', 'conditional', 'lr', 'batch', 'seed', 'folder', 'size', ...GAN_ONLY]) $(id).disabled = !!page.trainer;
  const model = $('model').value;
  if (!page.trainer && !model.includes('gan')) for (const id of GAN_ONLY) $(id).disabled = true;
}

async function openWebGpu() {
  if (!navigator.gpu) {
    throw new Error('WebGPU is not available in this browser. Use a recent Chrome or Edge (113+), Safari 26+, or Firefox 141+ on Windows; on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu. The page needs a secure context too: https:// or http://127.0.0.1.');
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error('WebGPU is present but offers no adapter: the browser may block this GPU or its driver (see chrome://gpu).');
  }
  const info = adapter.info || {};
  page.adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' · ') || 'unnamed adapter';
  const features = [...adapter.features].filter((f) => f === 'subgroups' || f.includes('timestamp')).join(', ');
  $('adapter').textContent = `adapter: ${page.adapter}; features used: ${features || 'none beyond core WebGPU'}; max storage binding ${(adapter.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`;
}

async function fetchData() {
  const files = await Promise.all(DATA.map(async (name) => {
    const response = await fetch(`data/${name}`);
    if (!response.ok) throw new Error(`data/${name}: ${response.status} ${response.statusText} (was the page built with cargo xtask web?)`);
    return new Uint8Array(await response.arrayBuffer());
  }));
  page.files = files;
}

function settings() {
  const lr = Number($('lr').value);
  const batch = Math.trunc(Number($('batch').value));
  const seed = Math.trunc(Number($('seed').value));
  if (!(lr > 0 && Number.isFinite(lr))) throw new Error(`the learning rate must be a positive number, got "${$('lr').value}"`);
  if (!(batch >= 1 && batch <= 9000)) throw new Error(`the batch must be between 1 and 9000 (the training images), got "${$('batch').value}"`);
  if (!(seed >= 0 && seed < 2 ** 32)) throw new Error(`the seed must be a whole number from 0 to ${2 ** 32 - 1}`);
  const gan = $('model').value.includes('gan');
  const augment = ['color', 'translation', 'cutout'].filter((t) => $(`aug-${t}`).checked).join(',');
  // A field left at the model's default is not passed (0), so the default can fit the data.
  const given = (id, v) => ($(id).value === $(id).dataset.default ? 0 : v);
  return {
    model: $('model').value, lr: given('lr', lr), batch: given('batch', batch), seed, conditional: $('conditional').checked,
    loss: gan ? $('loss').value : '', augment: gan ? augment : '', spectralNorm: gan && $('spectral-norm').checked,
  };
}

// A picked folder's images, [{path, file}] with paths relative to it: their bytes, one after
// another, for the Trainer to decode as `wgen train --data DIR` would.
async function loadFolder(name, entries) {
  setState('reading the folder…');
  const buffers = await Promise.all(entries.map((e) => e.file.arrayBuffer()));
  const lengths = new Uint32Array(buffers.map((b) => b.byteLength));
  const bytes = new Uint8Array(lengths.reduce((a, n) => a + n, 0));
  let at = 0;
  for (const b of buffers) {
    bytes.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  page.folder = { name, paths: entries.map((e) => e.path), lengths, bytes };
  page.source = `data: ${name}, ${entries.length} files (decoded when you press Start)`;
  $('data-source').textContent = page.source;
  setState('ready');
  buttons();
}

function pickedFolder() {
  const files = [...$('folder').files];
  if (!files.length) return;
  // webkitRelativePath is "picked-folder/sub/…/name.png".
  const name = files[0].webkitRelativePath.split('/')[0];
  loadFolder(name, files.map((file) => ({ path: file.webkitRelativePath.split('/').slice(1).join('/'), file }))).catch((e) => problem(`${e.message || e}`));
}

// Images dropped on the page: one folder (its name and the paths inside it, as the picker
// gives them), several class folders, or loose images; subfolders read to any depth. The
// drop's items are only readable during the event, so their entries are taken first.
async function droppedFolder(event) {
  event.preventDefault();
  document.body.classList.remove('dragging');
  if (page.trainer || page.running) {
    problem('press Reset before dropping other images: a model is built on the current ones');
    return;
  }
  const tops = [...event.dataTransfer.items].filter((i) => i.kind === 'file').map((i) => ({ entry: i.webkitGetAsEntry?.(), file: i.getAsFile() }));
  let entries = [];
  for (const top of tops) {
    if (top.entry) entries.push(...await readEntry(top.entry));
    else if (top.file) entries.push({ path: top.file.name, file: top.file });
  }
  const folder = tops.length === 1 && tops[0].entry?.isDirectory ? tops[0].entry.name : null;
  if (folder) entries = entries.map((e) => ({ ...e, path: e.path.split('/').slice(1).join('/') }));
  if (!entries.length) throw new Error('nothing readable was dropped: drop a folder of PNG or JPEG images (a subfolder per class)');
  if (!page.error?.startsWith('WebGPU')) problem(null);
  await loadFolder(folder || 'the dropped images', entries);
}

// [{path, file}] of every file under a dropped entry, paths from the drop's root.
async function readEntry(entry) {
  if (entry.isFile) return [{ path: entry.fullPath.replace(/^\//, ''), file: await new Promise((ok, fail) => entry.file(ok, fail)) }];
  const reader = entry.createReader();
  const children = [];
  for (;;) {
    // A directory reader hands its entries over in batches until an empty one.
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    children.push(...batch);
  }
  return (await Promise.all(children.map(readEntry))).flat();
}

async function create() {
  const s = settings();
  setState(page.folder ? 'decoding the images…' : 'building the model…');
  await nextFrame();
  if (page.folder) {
    const f = page.folder;
    const size = Math.trunc(Number($('size').value)) || 0;
    page.trainer = await Trainer.create_from_folder(s.model, s.lr, s.batch, s.seed, s.conditional, s.loss, s.augment, s.spectralNorm, size, f.name, f.paths, f.lengths, f.bytes);
  } else {
    const [a, b, c, d] = page.files;
    page.trainer = await Trainer.create(s.model, s.lr, s.batch, s.seed, s.conditional, s.loss, s.augment, s.spectralNorm, a, b, c, d);
  }
  page.describe = JSON.parse(page.trainer.describe());
  // This run's notes after the data's line, not after an earlier run's.
  const notes = page.describe.notes.length ? ` (${page.describe.notes.join('; ')})` : '';
  $('data-source').textContent = page.source + notes;
  page.history = [];
  page.chunk = 1;
  page.trainMs = 0;
  page.trainImages = 0;
  page.lastGrid = -1;
  page.negElbo = null;
  $('recon-box').hidden = !page.describe.model.includes('vae');
  classPicker(page.describe.class_names);
  listKernels();
}

// A conditional model's grid: a row per class, or all of the class picked here.
function classPicker(names) {
  const options = [new Option('a row per class', '-1'), ...(names || []).map((name, c) => new Option(name, String(c)))];
  $('class').replaceChildren(...options);
  $('class-pick').hidden = !names;
  page.gridClass = null;
}

function listKernels() {
  const d = page.describe;
  const table = $('kernels');
  table.replaceChildren();
  const head = table.insertRow();
  for (const h of ['phase', 'kernel', 'layer', 'shape']) head.appendChild(Object.assign(document.createElement('th'), { textContent: h }));
  let phase = null;
  for (const l of d.launches) {
    const row = table.insertRow();
    row.insertCell().textContent = l.phase === phase ? '' : l.phase;
    phase = l.phase;
    const link = Object.assign(document.createElement('a'), { href: `shaders/${l.file}.wgsl`, textContent: l.kernel, target: '_blank' });
    link.title = `shaders/${l.file}.wgsl`;
    row.insertCell().appendChild(link);
    row.insertCell().textContent = l.layer;
    Object.assign(row.insertCell(), { textContent: l.shape, className: 'shape' });
  }
  const classes = d.classes ? `, conditioned on ${d.classes} classes` : '';
  $('kernel-summary').textContent = `${d.model}${classes}: ${d.launches.length} dispatches per step, batch ${d.batch}, ${d.steps_per_epoch} steps per epoch, matmul family ${d.matmul} (subgroups of ${d.subgroup_sizes.join('–')} lanes). Each name links to its WGSL source.`;
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

async function loop() {
  const stopAt = Number($('stop-at').value) || Infinity;
  while (page.running) {
    const global = page.history.length ? page.history[page.history.length - 1].global : 0;
    if (global >= stopAt) break;
    const want = Math.min(global < SINGLE_STEPS ? 1 : page.chunk, stopAt - global);
    const t0 = performance.now();
    const n = page.trainer.submit(want);
    const w = JSON.parse(await page.trainer.losses());
    const ms = performance.now() - t0;
    page.history.push(w);
    if (global >= SINGLE_STEPS) {
      page.trainMs += ms;
      page.trainImages += n * page.describe.batch;
      page.rate = page.trainImages / (page.trainMs / 1000);
      page.chunk = Math.max(1, Math.min(32, Math.round(n * READ_MS / Math.max(ms, 1))));
    }
    if (w.global - page.lastGrid >= GRID_EVERY) await refreshImages();
    draw();
    await nextFrame();
  }
  if (page.history.length && page.lastGrid !== page.history[page.history.length - 1].global) await refreshImages();
  draw();
}

async function refreshImages() {
  const images = await page.trainer.grid(Number($('class').value));
  // A row per class: each row named on its left, as `wgen sample` names them.
  const d = page.describe;
  const rows = d.classes && $('class').value === '-1' ? Array.from({ length: d.classes }, (_, c) => d.class_names?.[c] ?? String(c)) : null;
  drawImages($('grid'), images, 8, 2, rows);
  page.gridClass = $('class').value === '-1' ? null : $('class').selectedOptions[0].textContent;
  const w = page.history[page.history.length - 1];
  page.lastGrid = w ? w.global : 0;
  $('grid-step').textContent = `(step ${page.lastGrid})`;
  const pass = JSON.parse(await page.trainer.test_pass(8));
  if (pass) {
    page.negElbo = pass.neg_elbo;
    $('elbo').textContent = `(test −ELBO ${pass.neg_elbo.toFixed(1)} nats)`;
    drawImages($('recon'), [...pass.originals, ...pass.reconstructions], 8, 2);
  }
}

// Images [n, C, S, S] in [0, 1] (C 1 or 3, S from the model), `cols` to a row; with `labels`,
// each row's name in a margin on its left.
function drawImages(canvas, images, cols, scale, labels = null) {
  const { channels, side: s } = page.describe.image;
  const pixels = s * s;
  const n = images.length / (channels * pixels);
  const rows = Math.ceil(n / cols);
  const pad = 1;
  const side = s + pad;
  const raw = new ImageData(cols * side + pad, rows * side + pad);
  const byte = (v) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * side;
    const y0 = pad + Math.floor(i / cols) * side;
    for (let p = 0; p < pixels; p++) {
      const o = ((y0 + Math.floor(p / s)) * raw.width + x0 + (p % s)) * 4;
      for (let c = 0; c < 3; c++) raw.data[o + c] = byte(images[(i * channels + (channels === 3 ? c : 0)) * pixels + p]);
      raw.data[o + 3] = 255;
    }
  }
  const small = Object.assign(document.createElement('canvas'), { width: raw.width, height: raw.height });
  small.getContext('2d').putImageData(raw, 0, 0);
  const ctx = canvas.getContext('2d');
  const font = '12px monospace';
  ctx.font = font;
  const margin = labels ? Math.ceil(Math.max(...labels.map((l) => ctx.measureText(l).width))) + 8 : 0;
  // Resizing the canvas resets its context: the font is set again below.
  canvas.width = raw.width * scale + margin;
  canvas.height = raw.height * scale;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = 'black';
  ctx.fillRect(0, 0, margin, canvas.height);
  ctx.drawImage(small, margin, 0, canvas.width - margin, canvas.height);
  if (labels) {
    Object.assign(ctx, { font, fillStyle: 'white', textBaseline: 'middle' });
    labels.forEach((label, r) => ctx.fillText(label, 4, (pad + r * side + s / 2) * scale));
  }
}

function draw() {
  const last = page.history[page.history.length - 1];
  $('step').textContent = last ? last.global : 0;
  $('epoch').textContent = last ? `${last.epoch} (${Math.round(100 * ((last.global - 1) % page.describe.steps_per_epoch + 1) / page.describe.steps_per_epoch)}%)` : '–';
  $('rate').textContent = page.rate ? page.rate.toFixed(0) : '–';
  drawChart();
}

function drawChart() {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!page.history.length) return;
  const keys = Object.keys(page.history[0].values);
  const left = 52, right = 10, top = 10, bottom = 24;
  const w = canvas.width - left - right, h = canvas.height - top - bottom;
  const xs = page.history.map((p) => p.global);
  const all = page.history.flatMap((p) => keys.map((k) => p.values[k]));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const xmax = Math.max(...xs, 1);
  const X = (g) => left + (g / xmax) * w;
  const Y = (v) => top + (1 - (v - lo) / (hi - lo)) * h;
  ctx.strokeStyle = '#999';
  ctx.fillStyle = '#444';
  ctx.font = '11px system-ui';
  ctx.strokeRect(left, top, w, h);
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    ctx.fillText(v.toPrecision(3), 4, Y(v) + 4);
  }
  ctx.fillText(`step ${xmax}`, left + w - 60, top + h + 16);
  keys.forEach((k, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    page.history.forEach((p, j) => (j ? ctx.lineTo : ctx.moveTo).call(ctx, X(p.global), Y(p.values[k])));
    ctx.stroke();
  });
  $('legend').innerHTML = keys.map((k, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${k} ${last(page.history).values[k].toFixed(4)}</span>`).join('');
}

const last = (a) => a[a.length - 1];

async function start() {
  problem(page.error?.startsWith('WebGPU') ? page.error : '');
  try {
    if (!page.trainer) await create();
    page.running = true;
    buttons();
    setState('training');
    await loop();
    setState('paused');
  } catch (e) {
    console.error(e);
    problem(`${e.message || e}`);
    setState('stopped');
  }
  page.running = false;
  buttons();
}

function pause() {
  page.running = false;
  setState('pausing…');
  buttons();
}

function reset() {
  page.trainer?.free();
  page.trainer = null;
  page.history = [];
  page.rate = 0;
  problem('');
  for (const id of ['grid', 'recon', 'chart']) $(id).getContext('2d').clearRect(0, 0, $(id).width, $(id).height);
  $('legend').textContent = '';
  $('kernels').replaceChildren();
  $('grid-step').textContent = $('elbo').textContent = '';
  classPicker(null);
  $('kernel-summary').textContent = 'Start a model to list its kernels. Each name links to its WGSL source.';
  draw();
  setState('ready');
  buttons();
}

async function download() {
  try {
    const bytes = await page.trainer.model_safetensors();
    const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: 'model.safetensors' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    console.error(e);
    problem(`download failed: ${e.message || e}`);
  }
}

// The form follows `wgen train MODEL [--conditional]`'s defaults (the library's, one owner).
function formDefaults() {
  const [lr, batch] = defaults($('model').value, $('conditional').checked);
  $('lr').value = $('lr').dataset.default = lr;
  $('batch').value = $('batch').dataset.default = batch;
  buttons();
}
$('model').addEventListener('change', formDefaults);
$('conditional').addEventListener('change', formDefaults);
$('start').addEventListener('click', start);
$('pause').addEventListener('click', pause);
$('reset').addEventListener('click', reset);
$('download').addEventListener('click', download);
$('folder').addEventListener('change', pickedFolder);
// A picked class is drawn at once when paused, at the next read while running.
$('class').addEventListener('change', () => {
  if (page.running) page.lastGrid = -GRID_EVERY;
  else if (page.trainer) refreshImages().catch((e) => problem(`${e.message || e}`));
});
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('dragging'); });
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) document.body.classList.remove('dragging'); });
document.addEventListener('drop', (e) => droppedFolder(e).catch((err) => problem(`${err.message || err}`)));

window.wgenPage = {
  // What the browser test checks: every window's losses, the img/s after the single steps,
  // the last test −ELBO and any problem shown.
  state: () => ({
    running: page.running, adapter: page.adapter, error: page.error, rate: page.rate, trainMs: page.trainMs, trainImages: page.trainImages,
    history: page.history, negElbo: page.negElbo, describe: page.describe, lastGrid: page.lastGrid, gridClass: page.gridClass,
  }),
};

try {
  await init();
  formDefaults();
  await openWebGpu();
  setState('fetching the digits…');
  await fetchData();
  setState('ready');
} catch (e) {
  console.error(e);
  problem(`${e.message || e}`);
  setState('unavailable');
}
buttons();
