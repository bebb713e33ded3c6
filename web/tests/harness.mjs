// Starts the real `hotspot serve` on a free port with an empty temporary data directory
// (so it seeds itself from the bundled fixtures) and a headless Chromium to drive it.
// The server gets a config file with one random analyst key (`server.key`); pages get
// that key in sessionStorage unless asked for the public map (`newPage(b, { key: null })`).
//
// HOTSPOT_BIN: the server binary (default: target/debug/hotspot, which `cargo test` and
// `cargo build` make). CHROMIUM: the browser (default: Debian's /usr/bin/chromium).

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');

/** The app's sessionStorage entry for the access key (web/src/app.js). */
export const KEY_STORE = 'hotspot.key';

// The key of the last server started: newPage's default.
let defaultKey = null;

/** `args`: more arguments for `hotspot serve` (e.g. `['--basemap', FILE]`).
 * `makeDefault: false` for a second server: its key does not become newPage's default. */
export async function startServer({ args = [], makeDefault = true } = {}) {
  const bin = path.resolve(process.env.HOTSPOT_BIN || path.join(repo, 'target', 'debug', 'hotspot'));
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run cargo build first`);
  const root = mkdtempSync(path.join(tmpdir(), 'hotspot-web-'));
  const data = path.join(root, 'data');
  mkdirSync(data);
  const key = randomBytes(16).toString('hex');
  const config = path.join(root, 'hotspot.toml');
  writeFileSync(config, [
    '[[keys]]',
    'name = "browser-tests"',
    'role = "analyst"',
    `sha256 = "${createHash('sha256').update(key).digest('hex')}"`,
    '',
  ].join('\n'));
  const child = spawn(bin, ['serve', '--demo', 'sample', '--bind', '127.0.0.1:0', '--data', data, '--config', config, ...args], {
    cwd: repo,
    env: { ...process.env, HOTSPOT_WEB: path.join(repo, 'web'), RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 120 s\n${stderr}`)), 120_000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/web map: (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})\n${stderr}`)); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  if (makeDefault) defaultKey = key;
  return {
    url, // .../map/
    origin: new URL(url).origin,
    key, // an analyst key: send as `Authorization: Bearer ${key}`
    stop() {
      child.kill('SIGTERM');
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Software WebGL: no GPU on CI.
    args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist', '--no-sandbox'],
  });
}

// The OpenStreetMap basemap is optional: tests run offline, so its requests are refused
// here (nothing leaves the machine) and the app must carry on without it.
export const OSM_HOST = 'tile.openstreetmap.org';

/** A page in a fresh context. `key`: the access key put in sessionStorage before any
 * page script runs (default: the last started server's analyst key; null: public). */
export async function newPage(browser, { width = 1400, height = 900, key = defaultKey } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  await context.route((u) => u.hostname.endsWith(OSM_HOST), (r) => r.abort('internetdisconnected'));
  if (key) {
    await context.addInitScript(([name, value]) => {
      try {
        window.sessionStorage.setItem(name, value);
      } catch {
        // about:blank and other opaque origins have no storage.
      }
    }, [KEY_STORE, key]);
  }
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !(m.location()?.url || '').includes(OSM_HOST) && !m.text().includes(OSM_HOST)) {
      page.errors.push(`console: ${m.text()} (${m.location()?.url || ''})`);
    }
  });
  page.on('pageerror', (e) => page.errors.push(`page: ${e.message}`));
  return page;
}

/** Waits until the app has answered its last change and the map has drawn every tile. */
export async function settled(page, timeout = 30_000) {
  await page.waitForFunction(() => {
    const a = window.hotspotApp;
    return a && a.map && document.body.dataset.ready && a.pending === 0
      && a.map.loaded() && a.map.areTilesLoaded() && !a.map.isMoving();
  }, null, { timeout, polling: 100 });
  // One more frame so the canvas holds what was just loaded.
  await page.evaluate(() => new Promise((r) => { window.hotspotApp.map.once('idle', r); window.hotspotApp.map.triggerRepaint(); }));
}

/** Decodes a PNG screenshot into RGBA pixels, in the page (no image library needed). */
export async function pixels(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    return { width: c.width, height: c.height, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
  }, png.toString('base64'));
}

/** Pixels whose colour is saturated: the statistic's ramps, not the grey and white base. */
export function colouredPixels(img) {
  let n = 0;
  const d = img.data;
  for (let i = 0; i < d.length; i += 4) {
    const mx = Math.max(d[i], d[i + 1], d[i + 2]);
    const mn = Math.min(d[i], d[i + 1], d[i + 2]);
    if (mx - mn > 40) n += 1;
  }
  return n;
}

/** Pixels that differ between two images of the same size. */
export function differentPixels(a, b) {
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    const dd = Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
    if (dd > 30) n += 1;
  }
  return n;
}

export async function mapShot(page) {
  return page.locator('#map canvas').screenshot();
}
