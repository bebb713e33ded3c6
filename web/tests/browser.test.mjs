// Browser tests of the web map in real headless Chromium against the real server
// (`node --test tests/` in web/; scripts/test runs them after cargo test).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  startServer, startBrowser, newPage, settled, pixels, colouredPixels, differentPixels, mapShot,
} from './harness.mjs';

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
  assert.match(await page.locator('#legends').textContent(), /per km²/);
  await page.close();
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
