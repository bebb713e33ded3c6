// Makes the README's screenshot (docs/map.png) with the same server and browser as the
// browser tests: `npm run screenshot` in web/ (after cargo build).

import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { startServer, startBrowser, newPage, settled, repo } from './harness.mjs';

const server = await startServer();
const browser = await startBrowser();
try {
  const page = await newPage(browser, { width: 1400, height: 860 });
  const query = process.argv[2] || 'method=gistar&res=8';
  await page.goto(`${server.url}?${query}`);
  await settled(page, 120_000);
  // Open the details of the busiest cell so the picture shows the panel too.
  await page.evaluate(() => {
    const a = window.hotspotApp;
    const f = a.cellsData.features.reduce((m, x) => (x.properties.count > m.properties.count ? x : m));
    const ring = f.geometry.coordinates[0];
    const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
    const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
    a.map.jumpTo({ center: [lon, lat], zoom: 10.5 });
  });
  await settled(page);
  const box = await page.locator('#map canvas').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.locator('#details-body h2').waitFor();
  const out = path.join(repo, 'docs', 'map.png');
  mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  if (page.errors.length) throw new Error(page.errors.join('\n'));
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await browser.close();
  server.stop();
}
