// Browser tests of the web map in real headless Chromium against the real server
// (`node --test tests/` in web/; scripts/test runs them after cargo test).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  startServer, startBrowser, newPage, settled, pixels, colouredPixels, differentPixels, mapShot, OSM_HOST,
} from './harness.mjs';

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let server;
let browser;
let meta;
const timings = {};

before(async () => {
  server = await startServer();
  browser = await startBrowser();
  meta = await (await fetch(`${server.url}api/meta`)).json();
});

after(async () => {
  await browser?.close();
  server?.stop();
  if (Object.keys(timings).length) console.log(`timings (ms): ${JSON.stringify(timings)}`);
});

async function open(query = '', opts = {}) {
  const page = await newPage(browser, opts);
  const t0 = Date.now();
  await page.goto(`${server.url}${query ? `?${query}` : ''}`);
  await settled(page, 120_000);
  return { page, ms: Date.now() - t0 };
}

/** Changes a control and times until the map has redrawn: `name` gets the app's own
 * measure (control event to the map's next idle with every layer's new data, which is what
 * a user waits for) and `name_wall` the test's (adds the driver's round trips and polling). */
async function change(page, action, name = null) {
  const before = await page.evaluate(() => document.body.dataset.ready);
  const t0 = Date.now();
  await action();
  await page.waitForFunction((b) => document.body.dataset.ready !== b, before, { timeout: 30_000 });
  await settled(page);
  if (!name) return;
  timings[`${name}_wall`] = Date.now() - t0;
  await page.waitForFunction(() => window.hotspotApp.changeStart === null, null, { timeout: 30_000 });
  timings[name] = await page.evaluate(() => window.hotspotApp.lastUpdateMs);
}

test('the page loads with no console errors and shows its controls', async () => {
  const { page, ms } = await open();
  timings.first_load = ms;
  assert.deepEqual(page.errors, []);
  assert.ok(await page.locator('input[name=type]').count() >= 5, 'crime type boxes');
  assert.match(await page.locator('#status').textContent(), /all crime types/);
  assert.ok(await page.locator('#legends .legend').count() >= 2, 'legends for the visible layers');
  // Under Gi* cells the heatmap is hidden (its blue would read as cold) and says so.
  assert.match(await page.locator('#legends').textContent(), /Getis-Ord Gi\*/);
  assert.doesNotMatch(await page.locator('#legends').textContent(), /kernel density/);
  assert.match(await page.locator('#heat-state').textContent(), /hidden/);
  assert.equal(await page.evaluate(() => window.hotspotApp.map.getLayoutProperty('heat', 'visibility')), 'none');
  // Data currency: the months the data cover, in words.
  const last = new Date(`${meta.months.last}-01T00:00:00Z`).toLocaleDateString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
  assert.match(await page.locator('#currency').textContent(), new RegExp(`to ${last}`));
  await page.close();
  // With counts the heatmap is drawn, with its legend in incidents per km².
  const counts = await open('method=counts');
  assert.match(await counts.page.locator('#legends').textContent(), /per km²/);
  assert.match(await counts.page.locator('#legends').textContent(), /natural breaks, Jenks/);
  assert.equal(await counts.page.evaluate(() => window.hotspotApp.map.getLayoutProperty('heat', 'visibility')), 'visible');
  await counts.page.close();
});

test('the heatmap and the cell layer draw non-blank pixels', async () => {
  const heat = await open('cells=0&patrol=0');
  const h = colouredPixels(await pixels(heat.page, await mapShot(heat.page)));
  assert.ok(h > 2000, `heatmap alone: ${h} coloured pixels`);
  const cells = await open('heat=0&patrol=0&method=counts');
  const c = colouredPixels(await pixels(cells.page, await mapShot(cells.page)));
  assert.ok(c > 2000, `cells alone: ${c} coloured pixels`);
  const none = await open('heat=0&cells=0&patrol=0');
  const n = colouredPixels(await pixels(none.page, await mapShot(none.page)));
  assert.ok(n < c / 10 && n < h / 10, `without either layer the map is grey: ${n} coloured pixels`);
  assert.deepEqual([...heat.page.errors, ...cells.page.errors, ...none.page.errors], []);
  for (const p of [heat.page, cells.page, none.page]) await p.close();
});

test('changing the crime type requests new tiles and changes the picture', async () => {
  const { page } = await open('cells=0&patrol=0');
  const a = await pixels(page, await mapShot(page));
  const requested = [];
  page.on('request', (r) => { if (r.url().includes('/tiles/heatmap/')) requested.push(r.url()); });
  const rare = meta.types.find((t) => t.slug === 'burglary') || meta.types[meta.types.length - 1];
  await change(page, () => page.click('#types-none'), 'clear_types');
  await change(page, () => page.check(`input[name=type][value="${rare.slug}"]`), 'change_type');
  assert.ok(requested.some((u) => u.includes(`types=${rare.slug}`) && /\.png/.test(u)),
    `new heatmap tiles for ${rare.slug}: ${requested.slice(0, 3).join(' ')}`);
  const b = await pixels(page, await mapShot(page));
  const diff = differentPixels(a, b);
  assert.ok(diff > 1000, `the picture changed: ${diff} pixels`);
  assert.match(page.url(), new RegExp(`types=${rare.slug}`));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('each control change redraws the default view with what it asked for (timed)', async () => {
  // The default view: heatmap, Gi* cells at resolution 8, patrol list.
  const { page } = await open();
  const cells = () => page.evaluate(() => window.hotspotApp.cellsData.features.map((f) => f.properties));
  // An H3 index's second hex digit is its resolution.
  const resOf = (props) => new Set(props.map((p) => parseInt(p.cell[1], 16)));
  const rare = meta.types.find((t) => t.slug === 'burglary') || meta.types[meta.types.length - 1];
  const before = (await cells()).reduce((n, p) => n + p.count, 0);
  await change(page, () => page.click('#types-none'));
  await change(page, () => page.check(`input[name=type][value="${rare.slug}"]`), 'type_default_view');
  const after = (await cells()).reduce((n, p) => n + p.count, 0);
  assert.ok(after > 0 && after < before, `${rare.slug}: ${after} of ${before}`);
  await change(page, () => page.selectOption('#method', 'counts'), 'change_method');
  assert.ok((await cells()).every((p) => p.bin === 0 && p.value === p.count), 'counts, no bins');
  await change(page, () => page.selectOption('#res', '9'), 'change_res');
  assert.deepEqual([...resOf(await cells())], [9]);
  await change(page, () => page.selectOption('#method', 'moran'), 'change_method_moran');
  // Local Moran's I and its permutation p, not counts.
  assert.ok((await cells()).some((p) => !Number.isInteger(p.value) && p.p > 0), 'I values');
  await change(page, () => page.selectOption('#res', '10'), 'change_res_10_moran');
  assert.deepEqual([...resOf(await cells())], [10]);
  await change(page, () => page.selectOption('#method', 'gistar'), 'change_res_10_gistar');
  const gi = await cells();
  assert.ok(gi.some((p) => !Number.isInteger(p.value) && p.p > 0), 'Gi* z values');
  assert.deepEqual([...resOf(gi)], [10]);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('clicking a hot cell opens its details', async () => {
  const { page } = await open('heat=0&patrol=0&res=8');
  const target = await page.evaluate(() => {
    const a = window.hotspotApp;
    const f = a.cellsData.features.reduce((m, x) => (x.properties.count > m.properties.count ? x : m));
    const ring = f.geometry.coordinates[0].slice(0, -1);
    const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
    const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
    a.map.jumpTo({ center: [lon, lat], zoom: 12 });
    return { cell: f.properties.cell, count: f.properties.count };
  });
  await settled(page);
  const box = await page.locator('#map canvas').boundingBox();
  const t0 = Date.now();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.locator('#details').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#details-body h2'));
  timings.details = Date.now() - t0;
  assert.equal(await page.locator('#details').getAttribute('data-id'), target.cell);
  const text = await page.locator('#details').textContent();
  assert.match(text, new RegExp(`${target.count.toLocaleString('en-GB')} incidents`));
  assert.match(text, /Gi\* z = -?\d/);
  assert.match(text, /p [<=] 0\.\d{3}/);
  assert.match(text, /Trend: /);
  assert.match(text, /Emerging hot spot category: /);
  assert.ok(await page.locator('#details table tr').count() >= 1, 'counts by type');
  assert.equal(await page.locator('#details svg.sparkline polyline').count(), 1, 'sparkline');
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#details').isHidden(), true, 'Escape closes the details');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('the patrol export downloads valid GeoJSON and CSV', async () => {
  const { page } = await open();
  assert.ok(await page.locator('#patrol-list li button').count() > 0, 'a ranked list');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-geojson')]);
  assert.match(dl.suggestedFilename(), /\.geojson$/);
  const fc = JSON.parse(await readFile(await dl.path(), 'utf8'));
  assert.equal(fc.type, 'FeatureCollection');
  assert.ok(fc.features.length > 0);
  for (const f of fc.features) {
    assert.equal(f.type, 'Feature');
    assert.match(f.geometry.type, /Polygon/);
    assert.ok(Number.isInteger(f.properties.rank));
  }
  assert.deepEqual(fc.features.map((f) => f.properties.rank), fc.features.map((_, i) => i + 1));
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const lines = (await readFile(await csv.path(), 'utf8')).trim().split('\n');
  assert.match(lines[0], /rank/);
  assert.equal(lines.length, fc.features.length + 1);
  // The print view: the map as an image and the list, on one A4 page.
  await page.evaluate(() => window.hotspotApp.preparePrint());
  await page.emulateMedia({ media: 'print' });
  const printed = await page.evaluate(() => {
    const img = document.getElementById('print-map');
    return { width: img.naturalWidth, shown: img.getBoundingClientRect().width };
  });
  assert.ok(printed.width > 100 && printed.shown > 100, `print map ${JSON.stringify(printed)}`);
  assert.equal(await page.locator('#patrol-list').isVisible(), true);
  assert.equal(await page.locator('#controls').isVisible(), false);
  const pdf = (await page.pdf({ format: 'A4' })).toString('latin1');
  assert.equal((pdf.match(/\/Type\s*\/Page[^s]/g) || []).length, 1, 'one page');
  await page.emulateMedia({ media: 'screen' });
  // Clicking a list entry zooms to it.
  const z0 = await page.evaluate(() => window.hotspotApp.map.getZoom());
  await page.click('#patrol-list li:first-child button');
  await page.waitForFunction((z) => window.hotspotApp.map.getZoom() > z + 1, z0, { timeout: 10_000 });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('road collisions are chosen by severity, and a link keeps the choice', async () => {
  const sev = Object.fromEntries(meta.severities.map((s) => [s.slug, s.count]));
  assert.ok(sev.fatal > 0 && sev.serious > 0 && sev.slight > 0, JSON.stringify(meta.severities));
  const { page } = await open('patrol=0&method=counts');
  const requested = [];
  page.on('request', (r) => { if (r.url().includes('/tiles/heatmap/')) requested.push(r.url()); });
  await change(page, () => page.click('#types-none'));
  await change(page, async () => {
    await page.check('input[name=type][value="road-collision:fatal"]');
    await page.check('input[name=type][value="road-collision:serious"]');
  });
  assert.match(page.url(), /types=road-collision&severity=fatal%2Cserious/);
  assert.match(await page.locator('#status').textContent(), /road collisions: fatal, serious/);
  // The cells count exactly the killed or seriously injured collisions.
  const total = await page.evaluate(() => window.hotspotApp.cellsData.features
    .reduce((n, f) => n + (f.properties.count || 0), 0));
  assert.equal(total, sev.fatal + sev.serious);
  assert.ok(requested.some((u) => /severity=fatal%2Cserious|severity=fatal,serious/.test(u)), requested[0]);
  const shared = page.url();
  await page.close();

  const again = await newPage(browser);
  await again.goto(shared);
  await settled(again, 60_000);
  const checked = await again.$$eval('input[name=type]:checked', (xs) => xs.map((x) => x.value));
  assert.deepEqual(checked.sort(), ['road-collision:fatal', 'road-collision:serious']);
  const head = again.locator('input[data-group^="road-collision:"]');
  assert.equal(await head.evaluate((x) => x.indeterminate), true, 'the group shows a partial choice');
  assert.deepEqual(again.errors, []);
  await again.close();
});

test('a shared URL restores the same filters and view', async () => {
  const [t1, t2] = meta.types.slice(0, 2).map((t) => t.slug);
  const from = meta.months.first;
  const to = meta.months.last;
  // A month between the first and the last (or the only one).
  const [y0, m0] = from.split('-').map(Number);
  const [y1, m1] = to.split('-').map(Number);
  const k = Math.floor(((y1 - y0) * 12 + (m1 - m0)) / 2) + (m0 - 1);
  const mid = `${y0 + Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
  const { page } = await open();
  await change(page, async () => {
    await page.click('#types-none');
    await page.check(`input[name=type][value="${t1}"]`);
    await page.check(`input[name=type][value="${t2}"]`);
  });
  await change(page, () => page.selectOption('#method', 'moran'));
  await change(page, () => page.selectOption('#res', '7'));
  await change(page, () => page.uncheck('#fdr'));
  await change(page, () => page.selectOption('#areas', 'districts'));
  await change(page, () => page.fill('#to', mid).then(() => page.locator('#to').dispatchEvent('change')));
  await page.evaluate(() => window.hotspotApp.map.jumpTo({ center: [-2.7, 53.76], zoom: 11 }));
  await settled(page);
  const shared = page.url();
  await page.close();

  const again = await newPage(browser);
  await again.goto(shared);
  await settled(again, 60_000);
  const checked = await again.$$eval('input[name=type]:checked', (xs) => xs.map((x) => x.value));
  assert.deepEqual(checked.sort(), [t1, t2].sort());
  assert.equal(await again.inputValue('#method'), 'moran');
  assert.equal(await again.inputValue('#res'), '7');
  assert.equal(await again.isChecked('#fdr'), false);
  assert.equal(await again.inputValue('#areas'), 'districts');
  assert.equal(await again.inputValue('#to'), mid);
  assert.match(shared, new RegExp(`to=${mid}`));
  const view = await again.evaluate(() => {
    const m = window.hotspotApp.map;
    return [m.getCenter().lng, m.getCenter().lat, m.getZoom()];
  });
  assert.ok(Math.abs(view[0] + 2.7) < 1e-3 && Math.abs(view[1] - 53.76) < 1e-3 && Math.abs(view[2] - 11) < 1e-2, `view ${view}`);
  // And the requests follow the restored filter.
  const cells = await again.evaluate(() => window.hotspotApp.cellsData.features.length);
  assert.ok(cells > 0);
  assert.deepEqual(again.errors, []);
  await again.close();
});

test('the month slider shows one month and play steps through them', async () => {
  const { page } = await open('heat=0&patrol=0&method=counts');
  const total = () => page.evaluate(() => window.hotspotApp.cellsData.features.reduce((s, f) => s + f.properties.count, 0));
  const all = await total();
  await change(page, () => page.check('#single'));
  assert.equal(await page.locator('#month-label').textContent(), meta.months.first);
  assert.match(page.url(), new RegExp(`month=${meta.months.first}`));
  const one = await total();
  assert.ok(one > 0 && one < all, `one month ${one} of ${all}`);
  await page.focus('#month');
  await change(page, () => page.keyboard.press('ArrowRight'));
  const second = await page.locator('#month-label').textContent();
  assert.notEqual(second, meta.months.first, 'the arrow key moves the slider');
  await page.click('#play');
  await page.waitForFunction((m) => document.getElementById('month-label').textContent !== m, second, { timeout: 10_000 });
  await page.click('#play');
  assert.equal(await page.getAttribute('#play', 'aria-pressed'), 'false');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('without a key the public map draws, withholds small numbers and opens details', async () => {
  // The heatmap, with the patrol layer on: the patrol list needs a partner key, so the
  // panel says so instead of failing (and nothing is asked that would be refused).
  const heat = await open('cells=0', { key: null });
  assert.equal(await heat.page.evaluate(() => window.sessionStorage.getItem('hotspot.key')), null, 'no key');
  const h = colouredPixels(await pixels(heat.page, await mapShot(heat.page)));
  assert.ok(h > 2000, `public heatmap: ${h} coloured pixels`);
  assert.match(await heat.page.locator('#patrol-note').textContent(), /Patrol list needs a partner key/);
  assert.equal(await heat.page.locator('#patrol-list li').count(), 0);
  assert.equal(await heat.page.isDisabled('#export-geojson'), true);
  assert.match(await heat.page.locator('#access-state').textContent(), /Public map/);
  assert.deepEqual(heat.page.errors, []);
  await heat.page.close();

  const { page } = await open('heat=0&patrol=0&method=counts&res=8', { key: null });
  const cells = await page.evaluate(() => {
    const fs = window.hotspotApp.cellsData.features;
    return { all: fs.length, withheld: fs.filter((f) => f.properties.suppressed).length };
  });
  assert.ok(cells.withheld > 0 && cells.withheld < cells.all, `some cells withheld: ${JSON.stringify(cells)}`);
  const c = colouredPixels(await pixels(page, await mapShot(page)));
  assert.ok(c > 2000, `public cells by count: ${c} coloured pixels`);
  assert.match(await page.locator('#legends').textContent(), /grey: withheld \(small numbers\)/);
  // The statistic is published as its bin, so Gi* still colours the cells.
  await change(page, () => page.selectOption('#method', 'gistar'));
  const g = colouredPixels(await pixels(page, await mapShot(page)));
  assert.ok(g > 500, `public cells by Gi* bin: ${g} coloured pixels`);
  assert.match(await page.locator('#legends').textContent(), /bins only/);

  // Details of a withheld cell, then of a published one with withheld months.
  const clickCell = async (pick) => {
    const cell = await page.evaluate((which) => {
      const a = window.hotspotApp;
      const fs = a.cellsData.features;
      const f = which === 'withheld'
        ? fs.find((x) => x.properties.suppressed)
        : fs.reduce((m, x) => ((x.properties.count ?? -1) > (m.properties.count ?? -1) ? x : m));
      const ring = f.geometry.coordinates[0].slice(0, -1);
      const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
      const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
      a.map.jumpTo({ center: [lon, lat], zoom: 13 });
      return f.properties.cell;
    }, pick);
    await settled(page);
    const box = await page.locator('#map canvas').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction((id) => document.querySelector('#details')?.dataset.id === id
      && !document.querySelector('#details').hidden, cell, { timeout: 30_000 });
    return page.locator('#details').textContent();
  };
  const withheld = await clickCell('withheld');
  assert.match(withheld, /withheld \(small numbers/);
  assert.match(withheld, /Trend: /);
  assert.doesNotMatch(withheld, /null|NaN|undefined/);
  await page.keyboard.press('Escape');
  const busiest = await clickCell('busiest');
  assert.match(busiest, /\d incidents of the selected types/);
  assert.match(busiest, /Gi\*: .*exact z and p withheld/);
  assert.doesNotMatch(busiest, /null|NaN|undefined/);
  assert.ok(await page.locator('#details svg.sparkline').count() === 1, 'sparkline');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('entering an access key reloads the layers as that role', async () => {
  const { page } = await open('heat=0&method=counts&res=8', { key: null });
  const withheld = () => page.evaluate(() => window.hotspotApp.cellsData.features.filter((f) => f.properties.suppressed).length);
  assert.ok(await withheld() > 0, 'public: some cells withheld');
  const seen = [];
  page.on('request', (r) => seen.push(r.headerValue('authorization').then((h) => [new URL(r.url()).origin, h])));
  await change(page, async () => {
    await page.fill('#access-key', server.key);
    await page.press('#access-key', 'Enter');
  });
  assert.equal(await withheld(), 0, 'analyst: nothing withheld');
  assert.ok(await page.locator('#patrol-list li button').count() > 0, 'the patrol list with a key');
  const auth = (await Promise.all(seen)).filter(([, h]) => h);
  assert.ok(auth.length > 0 && auth.every(([o, h]) => o === server.origin && h === `Bearer ${server.key}`), 'the key goes to our origin only');
  assert.doesNotMatch(page.url(), new RegExp(server.key), 'never in the URL');
  assert.deepEqual(page.errors, []);
  await page.close();
});

/** The map's centre and zoom once it has stopped moving. */
async function view(page) {
  await page.waitForFunction(() => !window.hotspotApp.map.isMoving(), null, { timeout: 20_000 });
  return page.evaluate(() => {
    const m = window.hotspotApp.map;
    const c = m.getCenter();
    return { lon: c.lng, lat: c.lat, zoom: m.getZoom() };
  });
}

function km(a, lon, lat) {
  const dx = (a.lon - lon) * 111.32 * Math.cos((lat * Math.PI) / 180);
  const dy = (a.lat - lat) * 110.57;
  return Math.hypot(dx, dy);
}

test('searching a postcode and a town flies there; choosing a district zooms to it', async () => {
  const { page } = await open();
  const input = page.locator('#search-q');
  // A postcode typed without its space: Enter takes the best match.
  await input.fill('pr12he');
  await input.press('Enter');
  // Enter asks the server first (the first search builds its street index): wait for the
  // answer to be shown before reading the view.
  await page.waitForFunction(() => /PR1 2HE/.test(window.hotspotApp.lastPlace?.name || ''), null, { timeout: 30_000 });
  const pc = (await (await fetch(`${server.url}api/places?q=PR1%202HE`)).json()).places[0];
  let v = await view(page);
  assert.ok(km(v, pc.lon, pc.lat) < 0.2 && v.zoom >= 15, `postcode: ${JSON.stringify(v)}`);
  assert.match(await input.inputValue(), /PR1 2HE/);
  // A town picked from the suggestions.
  await input.fill('Garst');
  await page.locator('#search-results button', { hasText: 'Garstang' }).first().click();
  const town = (await (await fetch(`${server.url}api/places?q=Garstang`)).json()).places.find((p) => p.kind === 'town');
  v = await view(page);
  assert.ok(km(v, town.lon, town.lat) < 0.5 && v.zoom >= 12, `town: ${JSON.stringify(v)}`);
  // The district control zooms to the district it filters to.
  const preston = meta.districts.find((d) => d.name === 'Preston');
  await change(page, () => page.selectOption('#district', preston.code));
  v = await view(page);
  const [w, s, e, n] = preston.bbox;
  assert.ok(v.lon > w && v.lon < e && v.lat > s && v.lat < n && v.zoom > 9, `district: ${JSON.stringify(v)}`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('"None" means no crime type: nothing drawn, the header says so, a link keeps it', async () => {
  const { page } = await open();
  await change(page, () => page.click('#types-none'));
  assert.match(await page.locator('#status').textContent(), /No crime types chosen/);
  assert.equal(await page.locator('#patrol-list li').count(), 0);
  const visible = await page.evaluate(() => ['heat', 'cells-fill', 'patrol-line']
    .filter((id) => window.hotspotApp.map.getLayoutProperty(id, 'visibility') !== 'none'));
  assert.deepEqual(visible, []);
  assert.match(page.url(), /types=none/);
  const again = await open(new URL(page.url()).search.slice(1));
  assert.match(await again.page.locator('#status').textContent(), /No crime types chosen/);
  assert.equal(await again.page.locator('input[name=type]:checked').count(), 0);
  await again.page.close();
  await change(page, () => page.click('#types-all'));
  assert.match(await page.locator('#status').textContent(), /all crime types/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('place labels are drawn by the map itself (offline) and go into the print image', async () => {
  const { page } = await open('heat=0&cells=0&patrol=0');
  const hosts = new Set();
  page.on('request', (r) => hosts.add(new URL(r.url()).host));
  const labels = () => page.evaluate(() => window.hotspotApp.placedLabels().map((l) => `${l.kind}:${l.name}`));
  await page.waitForFunction(() => window.hotspotApp.placedLabels().length > 0, null, { timeout: 10_000 });
  const county = await labels();
  for (const d of ['Preston', 'Blackpool', 'Lancaster']) assert.ok(county.includes(`district:${d}`), `${d} in ${county}`);
  // On screen: the overlay's text is the placed labels.
  assert.equal(await page.locator('#labels .label').count(), county.length);
  // A town zoom: towns by name; a street zoom: the data's street names.
  const preston = meta.districts.find((d) => d.name === 'Preston');
  await page.evaluate((b) => window.hotspotApp.map.jumpTo({ center: [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], zoom: 11 }), preston.bbox);
  await page.waitForFunction(() => window.hotspotApp.placedLabels().some((l) => l.kind === 'town'), null, { timeout: 10_000 });
  await page.evaluate(() => window.hotspotApp.map.jumpTo({ center: [-2.7035, 53.7589], zoom: 16 }));
  await page.waitForFunction(() => window.hotspotApp.placedLabels().some((l) => l.kind === 'street'), null, { timeout: 10_000 });
  await settled(page);
  const streets = (await labels()).filter((l) => l.startsWith('street:'));
  assert.ok(streets.length >= 3, `street labels: ${streets}`);
  // Labels collide with none: their boxes on screen do not overlap.
  const boxes = await page.evaluate(() => [...document.querySelectorAll('#labels .label')].map((e) => {
    const r = e.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  }));
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const [a, b] = [boxes[i], boxes[j]];
      const overlap = Math.min(a[2], b[2]) - Math.max(a[0], b[0]) > 2 && Math.min(a[3], b[3]) - Math.max(a[1], b[1]) > 2;
      assert.ok(!overlap, `labels ${i} and ${j} overlap`);
    }
  }
  // Print: the still image carries the labels (dark text pixels the WebGL canvas lacks).
  const dark = await page.evaluate(() => {
    const count = (c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 70 && d[i + 1] < 70 && d[i + 2] < 70) n += 1;
      return n;
    };
    const src = window.hotspotApp.map.getCanvas();
    const plain = document.createElement('canvas');
    plain.width = src.width;
    plain.height = src.height;
    plain.getContext('2d').drawImage(src, 0, 0);
    return { plain: count(plain), printed: count(window.hotspotApp.printImage()) };
  });
  assert.ok(dark.printed > dark.plain + 200, `print image dark pixels ${JSON.stringify(dark)}`);
  // Nothing but the server (and the refused OpenStreetMap probe) was asked: no glyph server.
  const own = new URL(server.url).host;
  const others = [...hosts].filter((h) => h !== own && !h.endsWith(OSM_HOST));
  assert.deepEqual(others, []);
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('a local basemap (serve --basemap, an MBTiles file GDAL wrote) is drawn under the map, offline', async () => {
  // A magenta raster over the middle of the county, tiled as a site would tile its own map.
  const dir = mkdtempSync(path.join(tmpdir(), 'hotspot-basemap-'));
  const run = (cmd, args) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe' });
  run('gdal_create', ['-of', 'GTiff', '-outsize', '512', '512', '-bands', '3', '-burn', '255', '-burn', '0', '-burn', '255',
    '-a_srs', 'EPSG:4326', '-a_ullr', '-3.2', '54.3', '-2.0', '53.4', 'in.tif']);
  run('gdal_translate', ['-q', '-of', 'MBTILES', '-co', 'ZOOM_LEVEL_STRATEGY=UPPER', 'in.tif', 'map.mbtiles']);
  run('gdaladdo', ['-q', '-r', 'nearest', 'map.mbtiles', '2', '4', '8']);
  // A second server: the other tests keep the first one's key.
  const own = await startServer({ args: ['--basemap', path.join(dir, 'map.mbtiles')], makeDefault: false });
  try {
    const page = await newPage(browser, { key: own.key });
    const hosts = new Set();
    page.on('request', (r) => hosts.add(new URL(r.url()).host));
    await page.goto(`${own.url}?heat=0&cells=0&patrol=0&view=-2.70000,53.76000,9.00`);
    await settled(page, 120_000);
    assert.ok(await page.locator('#basemap-row').isVisible(), 'the basemap is offered');
    assert.ok(await page.locator('#layer-basemap').isChecked());
    const magenta = async () => {
      const img = await pixels(page, await mapShot(page));
      let n = 0;
      for (let i = 0; i < img.data.length; i += 4) {
        if (img.data[i] > 200 && img.data[i + 1] < 80 && img.data[i + 2] > 200) n += 1;
      }
      return n / (img.width * img.height);
    };
    const on = await magenta();
    assert.ok(on > 0.5, `basemap share of the map ${on}`);
    await change(page, () => page.locator('#layer-basemap').uncheck());
    const off = await magenta();
    assert.ok(off < 0.01, `with the basemap off ${off}`);
    // Its tiles came from our server; nothing else but the refused OpenStreetMap probe.
    const origin = new URL(own.url).host;
    assert.deepEqual([...hosts].filter((h) => h !== origin && !h.endsWith(OSM_HOST)), []);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    own.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('harm weights (serve --harm): analysts colour cells by harm, stated in the legend; the public is not offered it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotspot-harm-'));
  const file = path.join(dir, 'harm.csv');
  // Burglary weighs 100, everything else 1: the burglary cells lead by harm.
  const rows = meta.types.map((t) => `${t.slug},${t.slug === 'burglary' ? 100 : 1},browser test`);
  await writeFile(file, `category,weight,source\n${rows.join('\n')}\n`);
  const own = await startServer({ args: ['--harm', file], makeDefault: false });
  try {
    const pub = await newPage(browser, { key: null });
    await pub.goto(`${own.url}?method=counts&measure=harm`);
    await settled(pub, 120_000);
    assert.ok(!(await pub.locator('#measure-box').isVisible()), 'no harm control for the public');
    assert.doesNotMatch(await pub.locator('#legends').textContent(), /Harm/);
    assert.deepEqual(pub.errors, []);
    await pub.close();

    const page = await newPage(browser, { key: own.key });
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('api/cells')) asked.push(r.url()); });
    await page.goto(`${own.url}?method=counts&heat=0`);
    await settled(page, 120_000);
    assert.ok(await page.locator('#measure-box').isVisible(), 'the harm control for a key');
    assert.match(await page.locator('#legends').textContent(), /Count · H3 res 8/);
    const before = await pixels(page, await mapShot(page));
    await change(page, () => page.locator('#measure').selectOption('harm'));
    assert.ok(asked.at(-1).includes('measure=harm'), asked.at(-1));
    const legendText = await page.locator('#legends').textContent();
    assert.match(legendText, /Harm · H3 res 8/);
    assert.match(legendText, /harm\.csv; source: browser test/);
    assert.match(page.url(), /measure=harm/);
    const cells = await page.evaluate(() => window.hotspotApp.cellsData.features.map((f) => f.properties));
    assert.ok(cells.length > 0 && cells.every((p) => typeof p.harm === 'number' && p.harm >= p.count));
    const diff = differentPixels(before, await pixels(page, await mapShot(page)));
    assert.ok(diff > 1000, `harm redrew the cells (${diff} pixels changed)`);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    own.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The share of the viewport where a point shows the map (not a panel over it). */
async function mapShare(page) {
  return page.evaluate(() => {
    const w = window.innerWidth;
    const h = window.innerHeight;
    let on = 0;
    let n = 0;
    for (let y = 5; y < h; y += 20) {
      for (let x = 5; x < w; x += 20) {
        n += 1;
        const e = document.elementFromPoint(x, y);
        if (e && e.closest('#map') && !e.closest('.maplibregl-ctrl')) on += 1;
      }
    }
    return on / n;
  });
}

test('tablet and phone: the map stays on screen with the drawer, patrol or details open', async () => {
  const shares = {};
  for (const [name, width, height] of [['tablet', 820, 1180], ['phone', 390, 844], ['laptop', 1400, 900]]) {
    const page = await newPage(browser, { width, height });
    await page.goto(server.url);
    await settled(page, 120_000);
    shares[`${name}_closed`] = await mapShare(page);
    if (name !== 'laptop') {
      await page.click('#drawer-toggle');
      assert.equal(await page.locator('#controls').isVisible(), true, `${name}: the drawer opens`);
      assert.equal(await page.locator('#drawer-toggle').getAttribute('aria-expanded'), 'true');
      shares[`${name}_drawer`] = await mapShare(page);
      // A control in the drawer still changes the map, which stays in view.
      await change(page, () => page.selectOption('#method', 'counts'));
      await page.keyboard.press('Escape');
      assert.equal(await page.locator('#controls').isVisible(), false, `${name}: Escape closes the drawer`);
      await page.click('#patrol-toggle');
      assert.ok(await page.locator('#patrol-list li').count() > 0, `${name}: the patrol sheet opens`);
      shares[`${name}_patrol`] = await mapShare(page);
      await page.click('#patrol-toggle');
    }
    const cell = await page.evaluate(() => window.hotspotApp.cellsData.features[0].properties.cell);
    await page.evaluate((c) => window.hotspotApp.openDetails('cell', c), cell);
    await page.locator('#details').waitFor({ state: 'visible' });
    shares[`${name}_details`] = await mapShare(page);
    // The zoom buttons stay uncovered.
    const zoomIn = await page.locator('.maplibregl-ctrl-zoom-in').boundingBox();
    const top = await page.evaluate(([x, y]) => document.elementFromPoint(x, y)?.closest('.maplibregl-ctrl-zoom-in') !== null,
      [zoomIn.x + zoomIn.width / 2, zoomIn.y + zoomIn.height / 2]);
    assert.ok(top, `${name}: details cover the zoom buttons`);
    assert.deepEqual(page.errors, []);
    await page.close();
  }
  console.log(`map share of the screen: ${JSON.stringify(Object.fromEntries(Object.entries(shares).map(([k, v]) => [k, Number(v.toFixed(2))])))}`);
  for (const [k, v] of Object.entries(shares)) {
    // Laptop: side panels beside the map; tablet and phone: the map fills the screen under
    // the header, and any open panel leaves at least 40% of it showing the map.
    const floor = k.startsWith('laptop') ? 0.5 : (k.endsWith('_closed') ? 0.8 : 0.4);
    assert.ok(v >= floor, `${k}: the map is ${Math.round(v * 100)}% of the screen`);
  }
  assert.ok(shares.laptop_details >= shares.laptop_closed - 0.01, 'laptop details do not cover the map');
});

test('patrol targets are numbered on the map and in the print sheet; N is choosable', async () => {
  const { page } = await open();
  const count = () => page.evaluate(() => ({
    markers: window.hotspotApp.patrolMarkers().length,
    items: document.querySelectorAll('#patrol-list li').length,
    numbers: window.hotspotApp.patrolMarkers().map((m) => m.getElement().textContent),
  }));
  let c = await count();
  assert.equal(c.items, 10, 'ten targets by default');
  assert.equal(c.markers, 10);
  assert.deepEqual(c.numbers, Array.from({ length: 10 }, (_, i) => String(i + 1)));
  await change(page, () => page.selectOption('#patrol-n', '5'));
  c = await count();
  assert.equal(c.items, 5);
  assert.equal(c.markers, 5);
  assert.match(page.url(), /[?&]n=5/);
  // The print sheet: what, when, where, printed date; the map image with the numbers.
  await page.evaluate(() => window.hotspotApp.preparePrint());
  const title = await page.locator('#print-title').textContent();
  assert.match(title, /all crime types · .+ to .+ · Lancashire · printed \d+ \w+ \d{4}/);
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.locator('#print-title').isVisible(), true);
  assert.equal(await page.locator('#patrol-list li').count(), 5);
  const pdf = (await page.pdf({ format: 'A4' })).toString('latin1');
  assert.equal((pdf.match(/\/Type\s*\/Page[^s]/g) || []).length, 1, 'one page');
  await page.emulateMedia({ media: 'screen' });
  // The layer switch hides the numbers with the outlines.
  await change(page, () => page.uncheck('#layer-patrol'));
  assert.ok(await page.evaluate(() => window.hotspotApp.patrolMarkers().every((m) => m.getElement().style.display === 'none')));
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('honest states: an empty period says so, latest month, type counts follow the filter', async () => {
  const empty = await open('from=2031-01&to=2031-03');
  assert.match(await empty.page.locator('#status').textContent(), /No data for January 2031 to March 2031: the data run from/);
  await empty.page.close();
  const { page } = await open('method=counts&heat=0&patrol=0');
  await change(page, () => page.click('#latest'));
  const s = await page.evaluate(() => window.hotspotApp.state.month);
  const gaps = new Set(meta.missing || []);
  assert.ok(s <= meta.months.last && !gaps.has(s), s);
  assert.ok(!meta.months.last || s === meta.months.last || gaps.has(meta.months.last), `latest ${s}`);
  // The type counts follow a district: they add up to the cells' incidents (analyst key).
  const preston = meta.districts.find((d) => d.name === 'Preston');
  await change(page, () => page.click('#single'));
  await change(page, () => page.selectOption('#district', preston.code));
  await page.waitForFunction(() => window.hotspotApp.typeCountsKey()?.includes('district='), null, { timeout: 10_000 });
  const sums = await page.evaluate(() => {
    const shown = [...document.querySelectorAll('input[name=type]')].map((cb) => Number(cb.parentElement.querySelector('.count').textContent.replace(/[^\d]/g, '')));
    const cells = window.hotspotApp.cellsData.features.reduce((n, f) => n + (f.properties.count || 0), 0);
    return { shown: shown.reduce((a, b) => a + b, 0), cells };
  });
  assert.equal(sums.shown, sums.cells, JSON.stringify(sums));
  const whole = meta.types.reduce((n, t) => n + t.count, 0);
  assert.ok(sums.shown < whole, 'a district has fewer than the whole data');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('keyboard: Skip to map focuses the map; Enter opens the cell under the crosshair; it is outlined', async () => {
  const { page } = await open('heat=0&patrol=0&res=10&method=counts');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement === window.hotspotApp.map.getCanvas()), true, 'focus on the map');
  const target = await page.evaluate(() => {
    const a = window.hotspotApp;
    const f = a.cellsData.features.reduce((m, x) => (x.properties.count > m.properties.count ? x : m));
    const ring = f.geometry.coordinates[0].slice(0, -1);
    a.map.jumpTo({ center: [ring.reduce((s, p) => s + p[0], 0) / ring.length, ring.reduce((s, p) => s + p[1], 0) / ring.length], zoom: 13 });
    return f.properties.cell;
  });
  await settled(page);
  await page.keyboard.press('Enter');
  await page.locator('#details').waitFor({ state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#details-body h2'));
  assert.equal(await page.locator('#details').getAttribute('data-kind'), 'cell');
  assert.equal(await page.locator('#details').getAttribute('data-id'), target);
  assert.equal(await page.evaluate(() => window.hotspotApp.selected?.id), target, 'the cell is outlined');
  await page.keyboard.press('Escape');
  assert.equal(await page.evaluate(() => window.hotspotApp.selected), null);
  assert.deepEqual(page.errors, []);
  await page.close();
});

/** axe-core's serious and critical violations on the page as it stands. */
async function axe(page) {
  await page.addScriptTag({ path: AXE_PATH });
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}

test('axe-core finds no serious or critical rule in any state', async () => {
  const found = {};
  const { page } = await open();
  found.controls = await axe(page);
  const cell = await page.evaluate(() => window.hotspotApp.cellsData.features[0].properties.cell);
  await page.evaluate((c) => window.hotspotApp.openDetails('cell', c), cell);
  await page.locator('#details').waitFor({ state: 'visible' });
  found.details = await axe(page);
  await page.keyboard.press('Escape');
  await page.evaluate(() => window.hotspotApp.preparePrint());
  await page.emulateMedia({ media: 'print' });
  found.print = await axe(page);
  await page.close();
  const tablet = await newPage(browser, { width: 820, height: 1180 });
  await tablet.goto(server.url);
  await settled(tablet, 120_000);
  await tablet.click('#drawer-toggle');
  found.drawer = await axe(tablet);
  await tablet.keyboard.press('Escape');
  await tablet.click('#patrol-toggle');
  found.patrol = await axe(tablet);
  const pub = await newPage(browser, { key: null });
  await pub.goto(server.url);
  await settled(pub, 120_000);
  found.public = await axe(pub);
  for (const p of [tablet, pub]) await p.close();
  for (const [state, v] of Object.entries(found)) assert.deepEqual(v, [], state);
});

test('the change map compares this period with the one before, tested and stated in the legend', async () => {
  const last = meta.months.last;
  const y = Number(last.slice(0, 4));
  const from = `${y}-01`;
  const { page } = await open(`method=change&against=year&from=${from}&to=${last}&res=7&heat=0&patrol=0`);
  assert.equal(await page.locator('#against-box').isVisible(), true);
  const data = await page.evaluate(() => window.hotspotApp.cellsData);
  assert.equal(data.periods.now.from, from);
  assert.equal(data.periods.before.from, `${y - 1}-01`);
  assert.ok(data.features.every((f) => [-1, 0, 1].includes(f.properties.bin)), 'bins');
  assert.ok(data.features.some((f) => f.properties.bin !== 0), 'some significant change');
  // The two periods' counts are the cells' counts of each period (analyst key: exact).
  const counts = async (a, b) => page.evaluate(async ([f, t]) => {
    const r = await fetch(`api/cells?method=counts&res=7&from=${f}&to=${t}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem('hotspot.key')}` } });
    return Object.fromEntries((await r.json()).features.map((x) => [x.properties.cell, x.properties.count]));
  }, [a, b]);
  const now = await counts(from, last);
  const before = await counts(`${y - 1}-01`, `${y - 1}-${last.slice(5)}`);
  for (const f of data.features) {
    const p = f.properties;
    assert.equal(p.now, now[p.cell] || 0, p.cell);
    assert.equal(p.before, before[p.cell] || 0, p.cell);
    if (p.bin === 1) assert.ok(p.now > p.before);
    if (p.bin === -1) assert.ok(p.now < p.before);
  }
  const text = await page.locator('#legends').textContent();
  assert.match(text, /exact conditional test of two Poisson counts/);
  assert.match(text, new RegExp(`against January ${y - 1}`));
  // A cell's details: the monthly chart spans both periods and the test's answer is given.
  const changed = data.features.find((f) => f.properties.bin !== 0);
  await page.evaluate((c) => window.hotspotApp.openDetails('cell', c), changed.properties.cell);
  await page.locator('#details p.change').waitFor();
  const said = await page.locator('#details p.change').textContent();
  assert.match(said, new RegExp(`${changed.properties.now}.*${changed.properties.before}.*Significant (increase|decrease)`));
  assert.equal((await page.evaluate(() => document.querySelector('#details svg.sparkline title').textContent)).includes(`${y - 1}-01`), true);
  await page.keyboard.press('Escape');
  // Against the period before the data start: said, not a blank map.
  await change(page, async () => {
    await page.fill('#from', meta.months.first);
    await page.fill('#to', meta.months.first);
    await page.dispatchEvent('#to', 'change');
  });
  assert.match(await page.locator('#legends').textContent(), /no data to compare with/);
  assert.deepEqual(page.errors.filter((e) => !/400/.test(e)), []);
  await page.close();
});
