// The API definition (`/api`) checked with real validators, not by reading it: the
// document against the OpenAPI 3.0 schema (@apidevtools/swagger-parser), and every answer
// the real server gives to a request of each path in it (as analyst, as the public, and
// the errors) against the schema it declares for that status and media type (Ajv, with
// the document's references resolved). Each check first shows it can fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { startServer } from './harness.mjs';

let server;
let doc;

before(async () => {
  server = await startServer({ makeDefault: false });
  doc = await (await fetch(`${server.origin}/api`)).json();
});
after(() => server?.stop());

test('the API definition is a valid OpenAPI 3.0 document', async () => {
  await SwaggerParser.validate(structuredClone(doc));
  // The validator rejects a broken copy: a dangling reference, a response without its
  // required description.
  const dangling = structuredClone(doc);
  dangling.paths['/'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/nothing' };
  await assert.rejects(SwaggerParser.validate(dangling));
  const undescribed = structuredClone(doc);
  delete undescribed.paths['/conformance'].get.responses['200'].description;
  await assert.rejects(SwaggerParser.validate(undescribed));
});

/** The paths of the definition that `pathname` answers to (a collection's own items path
 * and the templated one, say): the answer must match the schema of each. */
function templates(paths, pathname) {
  const found = Object.keys(paths).filter((p) => {
    const re = new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`);
    return re.test(pathname);
  });
  return found.sort((a, b) => (a === pathname ? -1 : b === pathname ? 1 : 0));
}

const bare = (t) => t.split(';')[0].trim().toLowerCase();

test('every answer matches the schema the definition declares for it', async () => {
  const api = await SwaggerParser.dereference(structuredClone(doc));
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const analyst = { Authorization: `Bearer ${server.key}` };
  const used = new Set();

  async function check(target, { headers = {}, status = 200 } = {}) {
    const r = await fetch(`${server.origin}${target}`, { headers });
    assert.equal(r.status, status, `${target}: ${r.status} ${await r.clone().text()}`);
    const pathname = decodeURIComponent(new URL(target, server.origin).pathname);
    const ts = templates(api.paths, pathname);
    assert.ok(ts.length > 0, `${pathname} is in no path of the definition`);
    const got = r.headers.get('content-type') || '';
    const body = Buffer.from(await r.arrayBuffer());
    let value = null;
    for (const t of ts) {
      used.add(t);
      const response = api.paths[t].get.responses[String(status)];
      assert.ok(response, `${t}: status ${status} is not declared`);
      const declared = Object.keys(response.content || {});
      const media = declared.find((m) => m.toLowerCase() === got.toLowerCase())
        || declared.find((m) => bare(m) === bare(got));
      assert.ok(media, `${target} (${t}): ${got} is not among the declared ${declared.join(', ')}`);
      const schema = response.content[media].schema;
      if (schema.type === 'string') continue;
      value = JSON.parse(body.toString('utf8'));
      const validate = ajv.compile(schema);
      assert.ok(validate(value), `${target} (${t}): ${ajv.errorsText(validate.errors)}`);
    }
    return value;
  }

  // The schemas can fail: a feature collection without its features, a feature with a
  // geometry of no known type, an exception without its code.
  const fc = api.paths['/collections/{collectionId}/items'].get.responses['200'].content['application/geo+json'].schema;
  assert.equal(ajv.validate(fc, { type: 'FeatureCollection' }), false);
  assert.equal(ajv.validate(fc, { type: 'FeatureCollection', features: [{ type: 'Feature', properties: {}, geometry: { type: 'Circle', coordinates: [1] } }] }), false);
  const exc = api.paths['/'].get.responses['404'].content['application/json'].schema;
  assert.equal(ajv.validate(exc, { description: 'no code' }), false);

  await check('/');
  await check('/conformance');
  await check('/api');
  await check('/collections');
  await check('/collections?f=html');
  await check('/collections/lsoas?f=html');
  const collections = await check('/collections', { headers: analyst });
  for (const c of collections.collections) {
    const partnerOnly = ['patrol', 'emerging', 'incidents'].includes(c.id);
    await check(`/collections/${c.id}`, { headers: analyst });
    await check(`/collections/${c.id}/queryables`, { headers: analyst });
    const page = await check(`/collections/${c.id}/items?limit=5`, { headers: analyst });
    await check(`/collections/${c.id}/items?limit=5&f=csv`, { headers: analyst });
    await check(`/collections/${c.id}/items?limit=5&f=html`, { headers: analyst });
    // OGC API - Features Part 2: a box and the output in British National Grid, the CRS
    // said in a Content-Crs header that the definition declares.
    const bng = 'http://www.opengis.net/def/crs/EPSG/0/27700';
    const inBng = `/collections/${c.id}/items?limit=5&crs=${encodeURIComponent(bng)}`
      + `&bbox-crs=${encodeURIComponent(bng)}&bbox=330000,400000,400000,480000`;
    await check(inBng, { headers: analyst });
    const sent = await fetch(`${server.origin}${inBng}`, { headers: analyst });
    assert.equal(sent.headers.get('content-crs'), `<${bng}>`, inBng);
    for (const t of templates(api.paths, `/collections/${c.id}/items`)) {
      assert.ok(api.paths[t].get.responses['200'].headers?.['Content-Crs'], `${t}: Content-Crs not declared`);
      const crs = api.paths[t].get.parameters.find((p) => p.name === 'crs');
      assert.ok(crs?.schema?.enum?.includes(bng), `${t}: crs does not list ${bng}`);
    }
    if (page.features.length > 0) {
      const id = encodeURIComponent(String(page.features[0].id));
      await check(`/collections/${c.id}/items/${id}`, { headers: analyst });
      await check(`/collections/${c.id}/items/${id}?f=html`, { headers: analyst });
    }
    if (!partnerOnly) {
      // The public's answers: withheld counts are null, a disclosure member says why.
      const pub = await check(`/collections/${c.id}/items?limit=50`);
      assert.ok(pub.disclosure, `${c.id}: no disclosure member below analyst`);
    } else {
      await check(`/collections/${c.id}/items?limit=5`, { status: 401 });
    }
  }
  // The errors, each an exception.
  await check('/collections/nothing', { status: 404 });
  await check('/collections/districts/items/nothing', { status: 404 });
  await check('/collections/h3-8/items?limit=abc', { status: 400 });
  await check('/collections/h3-8/items?colour=red', { status: 400 });
  await check('/collections/h3-8/items?crs=EPSG:3857', { status: 400 });
  await check('/collections/incidents/items', { headers: { Authorization: 'Bearer wrong-key' }, status: 403 });
  // The tiles and their documents.
  await check('/tiles/heatmap.json');
  await check('/tiles/heatmap/legend');
  await check('/tiles/cells.json');
  await check('/tiles/boundaries.json');
  await check('/tiles/heatmap/8/126/83.png');
  await check('/tiles/cells/9/252/166.mvt');
  await check('/tiles/boundaries/9/252/166.mvt');
  await check('/tiles/boundaries/10/504/332.mvt?layer=lsoas');
  await check('/tiles/cells/11/1008/664.mvt?res=10');
  await check('/tiles/cells.json?res=9');
  // OGC API - Tiles: the tiling scheme and every collection's tilesets.
  await check('/tileMatrixSets');
  await check('/tileMatrixSets/WebMercatorQuad');
  await check('/tileMatrixSets/WorldCRS84Quad', { status: 404 });
  for (const id of ['districts', 'lsoas', 'h3-7', 'h3-8', 'h3-9', 'h3-10']) {
    await check(`/collections/${id}/tiles`);
    await check(`/collections/${id}/tiles/WebMercatorQuad`);
  }
  await check('/collections/h3-9/tiles/WebMercatorQuad?types=burglary&from=2024-01');
  await check('/collections/hotspots/map/tiles');
  await check('/collections/hotspots/map/tiles/WebMercatorQuad?bandwidth=1500');
  await check('/collections/hotspots/tiles', { status: 404 });
  await check('/collections/h3-8/tiles/WebMercatorQuad?res=9', { status: 400 });

  // Every path of the definition was asked.
  const missed = Object.keys(api.paths).filter((p) => !used.has(p));
  assert.deepEqual(missed, [], `paths never checked: ${missed.join(', ')}`);
});
