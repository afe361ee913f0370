// Drive notebook 01 in a live JupyterLab with Debian's chromium (playwright-core; no browser download).
// usage: node drive_rate_control.mjs <notebook URL> <screenshot.png>   -> prints {"before": ..., "after": ...}
import { chromium } from 'playwright-core';

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
try {
  page.setDefaultTimeout(Number(process.env.STEP_TIMEOUT_MS || 180_000));
  await page.goto(url);
  await page.waitForSelector('.jp-Notebook .jp-Cell');
  // run all cells only once the notebook's kernel is up and idle (earlier, "run all" is silently dropped)
  await page.waitForFunction(() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return kernel && kernel.status === 'idle' && window.jupyterapp.commands.hasCommand('notebook:run-all-cells');
  });
  await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
  // the last cell prints "<old bpp> -> <new bpp>" once every cell has run; a traceback ends the wait too
  await page.waitForFunction(() => document.querySelector('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')
    || [...document.querySelectorAll('.jp-OutputArea-output')].some((e) => e.textContent.includes(' -> ')));
  const error = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]');
  if (await error.count()) throw new Error(`a notebook cell failed:\n${await error.first().innerText()}`);
  const bpp = () => page.locator('.invlab-bpp').first().innerText();
  const before = await bpp();
  // the notebook left the slider at its maximum: step it down with the keyboard, as a user would
  const handle = page.locator('.widget-slider .noUi-handle').first();
  await handle.scrollIntoViewIfNeeded();
  await handle.focus();
  for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowLeft');
  await page.waitForFunction((old) => {
    const el = document.querySelector('.invlab-bpp');
    return el && el.innerText !== old;
  }, before);
  await page.waitForTimeout(3000); // let the queued updates land before the picture
  const after = await bpp();
  await page.locator('.invlab-bpp').first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ before, after }));
} catch (err) {
  // keep a picture of what the browser showed when it failed, next to the screenshot
  await page.screenshot({ path: screenshot.replace(/\.png$/, '.failed.png') }).catch(() => {});
  throw err;
} finally {
  await browser.close();
}
