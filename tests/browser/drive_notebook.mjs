// Run one notebook in a live JupyterLab with Debian's chromium (playwright-core; no browser download).
// usage: node drive_notebook.mjs <notebook URL> <screenshot.png> [rate-control | rd-legend | page-rd-legend]
// (open the URL with ?reset: a fresh workspace, without the notebooks a previous run left open)
// Runs every cell, waits until all have run, fails on any error output (a traceback, or a widget that does not
// display), then optionally checks a notebook's interaction:
//   rate-control  step notebook 01's slider down with the keyboard and wait for the shown bpp to change
//   rd-legend     every plotly figure shows all its legend entries inside the figure (no legend scrollbar)
//   page-rd-legend  the same check on a plain HTML page holding plotly figures (no notebook)
// Prints one JSON line with what it saw; saves a screenshot (on failure: <screenshot>.failed.png).
import { chromium } from 'playwright-core';

const [url, screenshot, mode = 'run'] = process.argv.slice(2);
const file = decodeURIComponent(new URL(url).pathname.split('/').pop());
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
const ERRORS = '[data-mime-type="application/vnd.jupyter.error"]';

async function failIfErrors() {
  const error = page.locator(ERRORS);
  if (await error.count()) throw new Error(`a notebook cell failed:\n${await error.first().innerText()}`);
  const widget = page.getByText(/Error displaying widget|Failed to (load|create) (model|view)/);
  if (await widget.count()) throw new Error(`a widget did not display: ${await widget.first().innerText()}`);
}

// every plotly figure's legend: its entries, those inside the figure, its traces, whether it scrolls
const legends = () => page.evaluate(() => [...document.querySelectorAll('.js-plotly-plot')].map((plot) => {
  const box = plot.querySelector('.main-svg').getBoundingClientRect();
  const entries = [...plot.querySelectorAll('.legend .traces')];
  const inside = entries.filter((e) => {
    const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1 && r.left >= box.left - 1
      && r.right <= box.right + 1;
  });
  const bar = plot.querySelector('.legend .scrollbar');
  return {
    entries: entries.length, inside: inside.length, traces: plot.data.filter((t) => t.showlegend !== false).length,
    scrollbar: Boolean(bar && bar.getBoundingClientRect().height > 0),
  };
}));

// every plotly figure: inside its output area? two curves of one panel drawn alike? picture panels with a key?
const figureFacts = () => page.evaluate(() => [...document.querySelectorAll('.js-plotly-plot')].map((plot) => {
  const box = plot.querySelector('.main-svg').getBoundingClientRect();
  const area = plot.closest('.jp-OutputArea-output') || plot.parentElement;
  const room = area.getBoundingClientRect();
  const looks = new Map();
  const alike = [];
  for (const t of plot.data) {
    const lines = (t.type === undefined || t.type === 'scatter') && (t.mode || 'lines').includes('lines');
    const empty = Array.isArray(t.x) && !t.x.some((v) => v !== null); // plotly.py may send arrays base64-packed
    if (!lines || t.visible === false || empty) continue;
    const key = JSON.stringify([t.xaxis || 'x', t.yaxis || 'y', (t.line || {}).color, (t.line || {}).dash || 'solid',
                                (t.marker || {}).symbol || 'circle']);
    if (looks.has(key)) alike.push([looks.get(key), t.name]); else looks.set(key, t.name);
  }
  const pictures = plot.data.some((t) => t.type === 'image' || t.type === 'heatmap');
  const scale = plot.data.some((t) => (t.marker && t.marker.showscale) || (t.type === 'heatmap' && t.showscale !== false))
    || plot.querySelectorAll('.colorbar').length > 0;
  const keyed = plot.querySelectorAll('.legend .traces').length > 0;
  return { title: (plot.layout.title && plot.layout.title.text) || '', width: box.width, room: room.width,
           fits: box.right <= room.right + 1 && box.left >= room.left - 1, alike, pictures, key: scale || keyed };
}));

try {
  page.setDefaultTimeout(Number(process.env.STEP_TIMEOUT_MS || 240_000));
  console.log(JSON.stringify(mode === 'page-rd-legend' ? await figurePage() : await notebook()));
} catch (err) {
  // keep a picture of what the browser showed when it failed, next to the screenshot
  await page.screenshot({ path: screenshot.replace(/\.png$/, '.failed.png'), fullPage: true }).catch(() => {});
  throw err;
} finally {
  // shut the notebook's kernel down: the next notebook gets the machine to itself
  await page.evaluate(() => window.invlabPanel && window.invlabPanel.sessionContext.shutdown()).catch(() => {});
  await browser.close();
}

async function figurePage() { // a saved figure page (plotly's write_html), not a notebook
  await page.goto(url);
  await page.waitForSelector('.js-plotly-plot .legend .traces');
  const figures = await legends();
  await page.screenshot({ path: screenshot });
  return { figures };
}

async function notebook() {
  await page.goto(url);
  await page.waitForSelector('.jp-Notebook .jp-Cell');
  // run all cells only once this notebook's kernel is up and idle (earlier, "run all" is silently dropped)
  await page.waitForFunction((file) => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const session = panel && panel.sessionContext && panel.sessionContext.session;
    if (!session || !session.kernel || panel.context.path.split('/').pop() !== file) return false;
    window.invlabPanel = panel; // the notebook under test, whatever else the shell shows later
    return session.kernel.status === 'idle' && window.jupyterapp.commands.hasCommand('notebook:run-all-cells');
  }, file);
  const started = Date.now();
  await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
  // done: every code cell has an execution count and the kernel is idle again; an error output ends the wait too
  await page.waitForFunction((errors) => {
    if (document.querySelector(errors)) return true;
    const panel = window.invlabPanel;
    const session = panel.sessionContext.session;
    const cells = panel.content.widgets.filter((c) => c.model.type === 'code');
    return cells.every((c) => c.model.executionCount !== null) && session && session.kernel
      && session.kernel.status === 'idle';
  }, ERRORS, { polling: 500 });
  await page.waitForTimeout(1500); // widget views and plotly figures render after the outputs arrive
  await failIfErrors();
  const seen = {
    cells: await page.evaluate(() => window.invlabPanel.content.widgets.filter((c) => c.model.type === 'code').length),
    seconds: (Date.now() - started) / 1000,
  };

  seen.plots = await figureFacts();
  if (mode === 'rate-control') {
    const bpp = () => page.locator('.invlab-bpp').first().innerText();
    const readout = async () => (await page.locator('.widget-slider .widget-readout').first().innerText()).trim();
    // the app is idle: its first picture is drawn and the neighbouring positions are coded ahead
    const idle = () => page.waitForFunction(() => {
      const ahead = document.querySelector('.invlab-ahead');
      return ahead && ahead.innerText.includes('are ready');
    }, null, { polling: 250, timeout: 240000 });
    // a position is settled when the timing line reports the last position the slider shows
    const settled = () => page.waitForFunction(() => {
      const value = document.querySelector('.widget-slider .widget-readout');
      const timing = document.querySelector('.invlab-timing');
      return value && timing && timing.innerText.startsWith('update took')
        && timing.innerText.includes(`(rate ${value.innerText.trim()})`);
    }, null, { polling: 'raf', timeout: 120000 });
    const changed = (old) => page.waitForFunction((before) => {
      const el = document.querySelector('.invlab-bpp');
      return el && el.innerText !== before;
    }, old, { polling: 'raf', timeout: 120000 });
    seen.before = await bpp();
    seen.timings = {};
    const handle = page.locator('.widget-slider .noUi-handle').first();
    await handle.scrollIntoViewIfNeeded();
    // a jump: a click on the slider's track, far from the handle, to a position not coded yet
    for (const [name, at] of [['jump', 0.2], ['jump back', 0.8]]) {
      await idle();
      const track = await page.locator('.widget-slider .noUi-target').first().boundingBox();
      const old = await bpp();
      const t0 = Date.now();
      await page.mouse.click(track.x + at * track.width, track.y + track.height / 2);
      await changed(old);
      const picture = (Date.now() - t0) / 1000;
      await settled();
      seen.timings[name] = { picture, settled: (Date.now() - t0) / 1000, rate: await readout() };
    }
    // one key press: a step to a neighbour coded ahead
    await idle();
    await handle.focus();
    let old = await bpp();
    let t0 = Date.now();
    await page.keyboard.press('ArrowRight');
    await changed(old);
    seen.timings.step = { picture: (Date.now() - t0) / 1000 };
    await settled();
    seen.timings.step.settled = (Date.now() - t0) / 1000;
    // five quick presses: the app must settle on the last position
    await idle();
    await handle.focus();
    old = await bpp();
    t0 = Date.now();
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
    await changed(old);
    await settled();
    seen.timings.presses = { settled: (Date.now() - t0) / 1000 };
    seen.timing = await page.locator('.invlab-timing').first().innerText();
    seen.after = await bpp();
    seen.slider = await readout();
    await page.locator('.invlab-bpp').first().scrollIntoViewIfNeeded();
    await failIfErrors();
  } else if (mode === 'rd-legend') {
    seen.figures = await legends();
    await page.locator('.js-plotly-plot').first().scrollIntoViewIfNeeded();
  }
  await page.screenshot({ path: screenshot });
  return seen;
}
