// Makes the README's screenshots with the same server and browser as the browser tests:
// `npm run screenshot` in web/ (after cargo build). docs/map.png at laptop size (Gi* cells,
// the busiest cell's details open), docs/map-phone.png at phone size (details as a bottom
// sheet over the map).

import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { startServer, startBrowser, newPage, settled, repo } from './harness.mjs';

const server = await startServer();
const browser = await startBrowser();

/** Centres the map on the busiest cell and opens its details. */
async function busiestCell(page, zoom) {
  await page.evaluate((z) => {
    const a = window.hotspotApp;
    const f = a.cellsData.features.reduce((m, x) => (x.properties.count > m.properties.count ? x : m));
    const ring = f.geometry.coordinates[0].slice(0, -1);
    const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
    const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
    a.map.jumpTo({ center: [lon, lat], zoom: z });
  }, zoom);
  await settled(page);
  const box = await page.locator('#map canvas').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.locator('#details-body h2').waitFor();
  await settled(page);
}

try {
  const query = process.argv[2] || 'method=gistar&res=8';
  for (const [name, width, height, zoom] of [['map.png', 1400, 860, 10.5], ['map-phone.png', 390, 844, 11.5]]) {
    const page = await newPage(browser, { width, height });
    await page.goto(`${server.url}?${query}`);
    await settled(page, 120_000);
    await busiestCell(page, zoom);
    const out = path.join(repo, 'docs', name);
    mkdirSync(path.dirname(out), { recursive: true });
    await page.screenshot({ path: out });
    if (page.errors.length) throw new Error(page.errors.join('\n'));
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    await page.close();
  }
} finally {
  await browser.close();
  server.stop();
}
