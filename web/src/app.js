// The web map: controls -> state (kept in the URL) -> server requests -> MapLibre layers.
// Everything statistical is computed by the server; this file only asks and draws.

import { fromQuery, toQuery, filterParams, ogcParams, monthsBetween } from './state.js';
import {
  GI_CLASSES, MORAN_CLASSES, CHANGE_CLASSES, DIVERGING, EMERGING, VIRIDIS, WITHHELD_ROW, HATCH,
  jenks, stepColour, binColour, emergingColour, legend, stepRows, fmt, hatchImage,
} from './layers.js';
import { showDetails, hideDetails as closeDetails, renderPatrol, download } from './panels.js';

const { maplibregl } = window;
const $ = (id) => document.getElementById(id);
const ORIGIN = window.location.origin;
const OSM_TILES = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';

// Crime types grouped as a neighbourhood team thinks of them.
// Road collisions get one box per STATS19 severity (value `road-collision:fatal`, ...).
const ROAD = 'road-collision';
const GROUPS = [
  ['Violence', ['violent-crime', 'sexual-offences', 'robbery', 'public-order', 'domestic-abuse', 'exploitation']],
  ['Burglary', ['burglary']],
  ['Weapons', ['possession-of-weapons']],
  ['Drugs', ['drugs']],
  ['Anti-social behaviour', ['anti-social-behaviour']],
  ['Road collisions by severity', ['road-collision']],
  ['Theft and damage', ['shoplifting', 'other-theft', 'theft-from-the-person', 'vehicle-crime', 'bicycle-theft', 'criminal-damage-arson']],
  ['Other', ['other-crime']],
];

const app = {
  state: fromQuery(window.location.search),
  meta: null,
  map: null,
  seq: { cells: 0, areas: 0, patrol: 0, legend: 0, types: 0 },
  cellsData: null,
  patrolData: null,
  osmReachable: false,
  playing: null,
  pending: 0,
  patrolAllowed: false,
  // How long the last change took to reach the screen (ms): from the control's event to
  // the map's next idle (every tile drawn) after each layer has its new data.
  changeStart: null,
  refreshes: 0,
  lastUpdateMs: null,
};
window.hotspotApp = app; // for the browser tests and the curious

// ---- the access key ----
// Optional: without one the server answers as role public (small numbers withheld, no
// patrol list). The key lives in sessionStorage only (never in the URL, so a shared link
// never carries it) and goes to our own origin only, as `Authorization: Bearer`.

const KEY_STORE = 'hotspot.key';

function accessKey() {
  try {
    return window.sessionStorage.getItem(KEY_STORE) || '';
  } catch {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key) window.sessionStorage.setItem(KEY_STORE, key);
    else window.sessionStorage.removeItem(KEY_STORE);
  } catch {
    // Storage refused (a locked-down browser): the key lasts until the page closes.
  }
}

function ownOrigin(url) {
  try {
    return new URL(url, window.location.href).origin === ORIGIN;
  } catch {
    return false;
  }
}

/** The key's request options for a URL: headers for our own origin, nothing elsewhere.
 * `no-cache` because public responses are cacheable without `Vary: Authorization`: a
 * keyed request must not be answered from a public copy in the browser's cache. */
function keyed(url) {
  const key = accessKey();
  if (!key || !ownOrigin(url)) return null;
  return { headers: { Authorization: `Bearer ${key}` }, cache: 'no-cache' };
}

/** `fetch` with the access key (our own origin only). */
function apiFetch(url, init = {}) {
  const k = keyed(url);
  if (!k) return fetch(url, init);
  return fetch(url, { cache: k.cache, ...init, headers: { ...(init.headers || {}), ...k.headers } });
}

/** MapLibre's `transformRequest`: tiles and TileJSON from our origin carry the key. */
function transformRequest(url) {
  const k = keyed(url);
  return k ? { url, ...k } : undefined;
}

function busy(delta) {
  app.pending += delta;
  document.body.dataset.loading = app.pending > 0 ? '1' : '0';
}

async function getJson(url) {
  busy(1);
  try {
    const r = await apiFetch(url);
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      const e = new Error(body.description || `${r.status} ${r.statusText}`);
      e.status = r.status;
      throw e;
    }
    return await r.json();
  } finally {
    busy(-1);
  }
}

function status(text) {
  $('status').textContent = text;
}

// ---- controls ----

function buildControls() {
  // The server's own basemap (serve --basemap): offered only when it has one.
  if (app.meta.basemap) {
    $('basemap-row').hidden = false;
    $('basemap-name').textContent = `(${app.meta.basemap.name})`;
  }
  // Harm weights (serve --harm): the measure control, for a key (the server refuses the
  // public, whose counts are disclosure-controlled).
  syncMeasure();
  const present = new Map(app.meta.types.map((t) => [t.slug, t]));
  const box = $('types');
  const groups = GROUPS.map(([name, slugs]) => [name, slugs.filter((s) => present.has(s))]);
  const rest = [...present.keys()].filter((s) => !GROUPS.some(([, ss]) => ss.includes(s)));
  if (rest.length) groups.push(['More', rest]);
  const severities = app.meta.severities || [];
  for (const [name, slugs] of groups) {
    if (!slugs.length) continue;
    // One box per type; road collisions one per severity when the data has them.
    const boxes = slugs.flatMap((s) => {
      const t = present.get(s);
      if (s === ROAD && severities.length) {
        return severities.map((v) => [`${ROAD}:${v.slug}`, v.label, v.count, t]);
      }
      return [[s, t.label, t.count, t]];
    });
    const g = document.createElement('div');
    g.className = 'group';
    const head = document.createElement('label');
    head.className = 'group-head';
    const all = document.createElement('input');
    all.type = 'checkbox';
    all.dataset.group = boxes.map((b) => b[0]).join(',');
    head.append(all, document.createTextNode(` ${name}`));
    g.append(head);
    for (const [value, label, count, t] of boxes) {
      const l = document.createElement('label');
      l.className = 'type';
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.value = value;
      cb.name = 'type';
      const n = document.createElement('span');
      n.className = 'count';
      n.textContent = `(${count.toLocaleString('en-GB')})`;
      l.append(cb, document.createTextNode(` ${label} `), n);
      // What the map cannot show for this type: records with no location, and records
      // located outside the study area (per type, not per severity).
      const missing = value.includes(':') ? null : notMapped(t);
      if (missing) {
        const note = document.createElement('span');
        note.className = 'unmapped';
        note.textContent = ` · ${missing.short}`;
        l.title = missing.long;
        l.append(note);
      }
      g.append(l);
    }
    box.append(g);
  }
  // The whole data's records no layer maps, said once under the types.
  const un = app.meta.unlocated || 0;
  const out = app.meta.outside || 0;
  if (un || out) {
    const p = document.createElement('p');
    p.id = 'unmapped-note';
    p.className = 'note';
    p.textContent = `Not on the map: ${un.toLocaleString('en-GB')} records without a location`
      + (out ? ` and ${out.toLocaleString('en-GB')} outside the study area` : '')
      + ' (per type: "not mapped").';
    box.after(p);
  }
  for (const d of app.meta.districts) {
    const o = document.createElement('option');
    o.value = d.code;
    o.textContent = d.name;
    $('district').append(o);
  }
  const m = app.meta.months;
  for (const id of ['from', 'to']) {
    $(id).min = m.first;
    $(id).max = m.last;
  }
  // Data currency: what the data cover, and the months no force published (never zero).
  const gaps = app.meta.missing || [];
  $('currency').textContent = `Data from ${monthName(m.first)} to ${monthName(m.last)}.`
    + (gaps.length ? ` No data published for ${gaps.map(monthName).join(', ')}.` : '');
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
/** "2024-12" as "December 2024". */
function monthName(ym) {
  const [y, mo] = String(ym).split('-').map(Number);
  return MONTHS[mo - 1] ? `${MONTHS[mo - 1]} ${y}` : String(ym);
}

/** The period's months that have data: inside the data's span and published. */
function monthsWithData() {
  const m = app.meta.months;
  const gaps = new Set(app.meta.missing || []);
  const s = app.state;
  const months = s.month ? [s.month] : periodMonths();
  return months.filter((x) => x >= m.first && x <= m.last && !gaps.has(x));
}

/** The latest month with data, on its own (the slider at its end). */
function showLatest() {
  const m = app.meta.months;
  const gaps = new Set(app.meta.missing || []);
  let last = m.last;
  const all = monthsBetween(m.first, m.last);
  for (let i = all.length - 1; i >= 0; i -= 1) {
    if (!gaps.has(all[i])) { last = all[i]; break; }
  }
  stopPlay();
  const s = app.state;
  s.to = '';
  if (s.from && s.from > last) s.from = '';
  $('from').value = s.from || m.first;
  $('to').value = m.last;
  $('single').checked = true;
  s.month = last;
  writeSlider();
  refresh();
}

/** The records of a type no layer maps, as short and long text, or null. */
function notMapped(t) {
  const un = t.unlocated || 0;
  const out = t.outside || 0;
  if (!un && !out) return null;
  const all = t.count + un + out;
  const pct = (n) => `${((100 * n) / all).toFixed(1)}%`;
  const parts = [];
  if (un) parts.push(`${un.toLocaleString('en-GB')} (${pct(un)}) have no location`);
  if (out) parts.push(`${out.toLocaleString('en-GB')} are outside the study area`);
  return {
    short: `${pct(un + out)} not mapped`,
    long: `Not on the map: ${parts.join('; ')}.`,
  };
}

function typeBoxes() {
  return [...document.querySelectorAll('input[name=type]')];
}

/** State -> controls. */
function writeControls() {
  const s = app.state;
  const all = s.types.length === 0 && !s.none;
  for (const cb of typeBoxes()) {
    const [type, severity] = cb.value.split(':');
    cb.checked = (all || s.types.includes(type))
      && (!severity || !s.severity.length || s.severity.includes(severity));
  }
  syncGroups();
  $('from').value = s.from || app.meta.months.first;
  $('to').value = s.to || app.meta.months.last;
  $('district').value = s.district;
  $('method').value = s.method;
  $('against').value = s.against;
  $('against-box').hidden = s.method !== 'change';
  $('res').value = String(s.res);
  $('colour').value = s.colour;
  $('measure').value = s.measure;
  $('fdr').checked = s.fdr;
  $('layer-heat').checked = s.heat;
  $('layer-cells').checked = s.cells;
  $('layer-emerging').checked = s.emerging;
  $('areas').value = s.areas;
  $('area-stat').value = s.areaStat;
  $('layer-patrol').checked = s.patrol;
  $('patrol-n').value = String(s.patrolN);
  $('layer-osm').checked = s.osm;
  $('layer-basemap').checked = s.basemap;
  $('single').checked = Boolean(s.month);
  writeSlider();
}

function syncGroups() {
  for (const g of document.querySelectorAll('input[data-group]')) {
    const boxes = g.dataset.group.split(',').map((v) => document.querySelector(`input[name=type][value="${v}"]`));
    const on = boxes.filter((b) => b && b.checked).length;
    g.checked = on === boxes.length;
    g.indeterminate = on > 0 && on < boxes.length;
  }
}

function periodMonths() {
  const s = app.state;
  return monthsBetween(s.from || app.meta.months.first, s.to || app.meta.months.last);
}

function writeSlider() {
  const months = periodMonths();
  const s = app.state;
  const slider = $('month');
  slider.max = String(Math.max(0, months.length - 1));
  const i = months.indexOf(s.month);
  slider.value = String(i >= 0 ? i : 0);
  slider.disabled = !s.month;
  $('play').disabled = !s.month;
  // A month no force published is said so, not shown as a quiet month.
  const gap = s.month && (app.meta.missing || []).includes(s.month);
  const label = s.month ? (gap ? `${s.month} (no data published)` : s.month) : 'all months';
  $('month-label').textContent = label;
  slider.setAttribute('aria-valuetext', label);
}

/** Controls -> state. */
function readControls() {
  const s = app.state;
  const boxes = typeBoxes();
  const on = boxes.filter((b) => b.checked).map((b) => b.value);
  const roads = boxes.filter((b) => b.value.startsWith(`${ROAD}:`));
  const roadsOn = roads.filter((b) => b.checked).map((b) => b.value.slice(ROAD.length + 1));
  s.types = on.length === boxes.length ? [] : [...new Set(on.map((v) => v.split(':')[0]))];
  // No box ticked is no crime type, not every type (an empty list means all).
  s.none = on.length === 0;
  // Severities only when some but not all are chosen (none chosen: no road collisions).
  s.severity = roadsOn.length && roadsOn.length < roads.length ? roadsOn : [];
  const clampMonth = (v, d) => (/^\d{4}-\d{2}$/.test(v) ? v : d);
  s.from = clampMonth($('from').value, '');
  s.to = clampMonth($('to').value, '');
  if (s.from === app.meta.months.first) s.from = '';
  if (s.to === app.meta.months.last) s.to = '';
  if (s.from && s.to && s.from > s.to) [s.from, s.to] = [s.to, s.from];
  s.district = $('district').value;
  s.method = $('method').value;
  s.against = $('against').value;
  $('against-box').hidden = s.method !== 'change';
  s.res = Number($('res').value);
  s.colour = $('colour').value;
  s.measure = $('measure-box').hidden ? 'count' : $('measure').value;
  s.fdr = $('fdr').checked;
  s.heat = $('layer-heat').checked;
  s.cells = $('layer-cells').checked;
  s.emerging = $('layer-emerging').checked;
  s.areas = $('areas').value;
  s.areaStat = $('area-stat').value;
  s.patrol = $('layer-patrol').checked;
  s.osm = $('layer-osm').checked;
  s.basemap = $('layer-basemap').checked;
  const months = periodMonths();
  if ($('single').checked) {
    s.month = months[Number($('month').value)] || months[0] || '';
  } else {
    s.month = '';
  }
}

function wireControls() {
  $('controls').addEventListener('change', (e) => {
    const t = e.target;
    if (t.id === 'access-key') return; // its own handler (wireKey)
    if (t.dataset.group) {
      for (const v of t.dataset.group.split(',')) {
        const b = document.querySelector(`input[name=type][value="${v}"]`);
        if (b) b.checked = t.checked;
      }
    }
    if (t.id === 'single' && !t.checked) stopPlay();
    if (t.id === 'district') zoomToDistrict(t.value);
    syncGroups();
    readControls();
    writeSlider();
    refresh();
  });
  $('month').addEventListener('input', () => {
    readControls();
    writeSlider();
    refresh();
  });
  $('latest').addEventListener('click', showLatest);
  $('patrol-n').addEventListener('change', () => {
    app.state.patrolN = Number($('patrol-n').value) || 10;
    refresh();
  });
  wireSheets();
  // "Skip to map" puts the keyboard on the map itself (its canvas), not on the page.
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    app.map?.getCanvas().focus();
  });
  $('types-all').addEventListener('click', () => setAllTypes(true));
  $('types-none').addEventListener('click', () => setAllTypes(false));
  $('play').addEventListener('click', () => (app.playing ? stopPlay() : startPlay()));
  $('details-close').addEventListener('click', hideDetails);
  $('export-geojson').addEventListener('click', () => exportPatrol('json'));
  $('export-csv').addEventListener('click', () => exportPatrol('csv'));
  $('print').addEventListener('click', () => { preparePrint(); window.print(); });
  window.addEventListener('beforeprint', preparePrint);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') hideDetails();
  });
}

/** Tablet and phone: the Filters drawer and the folding patrol sheet (laptop shows both). */
function wireSheets() {
  const toggle = (button, cls, on) => {
    document.body.classList.toggle(cls, on);
    button.setAttribute('aria-expanded', String(on));
    if (button.id === 'patrol-toggle') button.textContent = on ? 'Hide' : 'Show';
  };
  const drawer = $('drawer-toggle');
  drawer.addEventListener('click', () => {
    const on = !document.body.classList.contains('drawer-open');
    toggle(drawer, 'drawer-open', on);
    if (on) $('controls').querySelector('input, select, button')?.focus();
  });
  const patrol = $('patrol-toggle');
  patrol.addEventListener('click', () => toggle(patrol, 'patrol-open', !document.body.classList.contains('patrol-open')));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && document.body.classList.contains('drawer-open') && window.matchMedia('(max-width: 1100px)').matches) {
      toggle(drawer, 'drawer-open', false);
      drawer.focus();
    }
  });
  app.toggleSheet = (name, on) => toggle(name === 'patrol' ? patrol : drawer, name === 'patrol' ? 'patrol-open' : 'drawer-open', on);
}

/** The access key control: works before the map exists too (a refused key stops main). */
function wireKey() {
  const input = $('access-key');
  input.value = accessKey();
  showKeyState();
  const apply = () => {
    const v = input.value.trim();
    if (v === accessKey()) return;
    storeKey(v);
    showKeyState();
    reloadForKey();
  };
  input.addEventListener('change', apply);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); apply(); }
  });
  $('access-forget').addEventListener('click', () => {
    input.value = '';
    apply();
    input.focus();
  });
}

function showKeyState() {
  const key = accessKey();
  $('access-state').textContent = key
    ? 'Key in use for this tab (not in links).'
    : 'Public map: small numbers are withheld. A partner or analyst key shows more.';
  $('access-forget').disabled = !key;
}

/** The harm measure is offered when the server has weights and a key is in use. */
function syncMeasure() {
  if (!app.meta) return;
  const offered = Boolean(app.meta.harm) && Boolean(accessKey());
  $('measure-box').hidden = !offered;
  if (!offered) app.state.measure = 'count';
  $('measure').value = app.state.measure;
}

/** Harm selected (and offered): cells are asked and coloured by harm. */
function byHarm() {
  return app.state.measure === 'harm' && Boolean(app.meta?.harm) && app.state.method !== 'change';
}

/** The legend's words on the harm weights. */
function harmNote() {
  const h = app.meta.harm;
  const src = h.sources.length ? `; source: ${h.sources.join('; ')}` : '';
  return ` Harm: each incident weighted by its category (${h.file}${src}).`;
}

/** A new key (or none): the same map, every layer asked again as the new role. */
function reloadForKey() {
  syncMeasure();
  if (!app.map) {
    if (!app.meta) main();
    return;
  }
  app.cellsData = null;
  app.patrolData = null;
  for (const id of ['heat', 'boundaries']) {
    if (app.map.getSource(id)) app.map.refreshTiles(id);
  }
  hideDetails();
  refresh();
}

function setAllTypes(on) {
  for (const b of typeBoxes()) b.checked = on;
  syncGroups();
  readControls();
  refresh();
}

function startPlay() {
  app.playing = setInterval(() => {
    const slider = $('month');
    const next = (Number(slider.value) + 1) % (Number(slider.max) + 1);
    slider.value = String(next);
    readControls();
    writeSlider();
    refresh();
  }, 1500);
  $('play').textContent = '⏸ Pause';
  $('play').setAttribute('aria-pressed', 'true');
}

function stopPlay() {
  clearInterval(app.playing);
  app.playing = null;
  $('play').textContent = '▶ Play';
  $('play').setAttribute('aria-pressed', 'false');
}

/** The print view: a still image of the map (a live WebGL canvas does not print
 * reliably) and the legends, beside the patrol list. */
function preparePrint() {
  $('print-map').src = printImage().toDataURL('image/png');
  $('print-legends').replaceChildren(...[...$('legends').children].map((n) => n.cloneNode(true)));
  $('print-title').textContent = printTitle();
}

/** The print sheet's title: what, when, where, and when it was printed. */
function printTitle() {
  const s = app.state;
  const label = new Map(app.meta.types.map((t) => [t.slug, t.label]));
  const types = s.none ? 'no crime types' : (s.types.length ? s.types.map((t) => label.get(t) || t).join(', ') : 'all crime types');
  const sev = s.severity.length ? ` (road collisions: ${s.severity.join(', ')})` : '';
  const from = s.month || s.from || app.meta.months.first;
  const to = s.month || s.to || app.meta.months.last;
  const d = app.meta.districts.find((x) => x.code === s.district);
  const printed = new Date().toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric' });
  return `${types}${sev} · ${from === to ? monthName(from) : `${monthName(from)} to ${monthName(to)}`} · ${d ? d.name : 'Lancashire'} · printed ${printed}`;
}

/** The map as a still image for print, with what the WebGL canvas does not hold drawn on
 * it: the place labels, the patrol targets' numbers and a scale bar. */
function printImage() {
  const map = app.map;
  const src = map.getCanvas();
  const ratio = src.width / src.clientWidth;
  const c = document.createElement('canvas');
  c.width = src.width;
  c.height = src.height;
  const g = c.getContext('2d');
  g.drawImage(src, 0, 0);
  g.scale(ratio, ratio);
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.lineJoin = 'round';
  for (const l of placedLabels) {
    const p = map.project([l.lon, l.lat]);
    g.font = LABEL_FONT[l.kind] || LABEL_FONT.town;
    g.lineWidth = 3;
    g.strokeStyle = 'rgba(255,255,255,0.9)';
    g.strokeText(l.name, p.x, p.y);
    g.fillStyle = '#1d2126';
    g.fillText(l.name, p.x, p.y);
  }
  if (app.state.patrol && app.patrolData) {
    app.patrolData.features.forEach((f, i) => {
      if (patrolMarkers[i]?.getElement().style.visibility === 'hidden') return; // as on screen
      const p = map.project(centreOf(f));
      g.beginPath();
      g.arc(p.x, p.y, 9, 0, 2 * Math.PI);
      g.fillStyle = '#000';
      g.fill();
      g.lineWidth = 2;
      g.strokeStyle = '#fff';
      g.stroke();
      g.font = 'bold 11px "DejaVu Sans", sans-serif';
      g.fillStyle = '#fff';
      g.fillText(String(i + 1), p.x, p.y + 0.5);
    });
  }
  drawScaleBar(g, map, src.clientHeight);
  return c;
}

/** A metric scale bar at the bottom left: a round length about 100 px long. */
function drawScaleBar(g, map, height) {
  const y = height - 20;
  const a = map.unproject([20, y]);
  const b = map.unproject([120, y]);
  const rad = Math.PI / 180;
  const lat = ((a.lat + b.lat) / 2) * rad;
  const metres = 6371008.8 * Math.hypot((b.lng - a.lng) * rad * Math.cos(lat), (b.lat - a.lat) * rad);
  if (!(metres > 0)) return;
  const nice = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10000, 100000].map((e) => m * e)).sort((x, z) => x - z)
    .filter((v) => v <= metres).pop() || metres;
  const px = (100 * nice) / metres;
  g.fillStyle = 'rgba(255,255,255,0.85)';
  g.fillRect(14, y - 16, px + 12, 24);
  g.strokeStyle = '#1d2126';
  g.lineWidth = 2;
  g.beginPath();
  g.moveTo(20, y - 4);
  g.lineTo(20, y + 2);
  g.lineTo(20 + px, y + 2);
  g.lineTo(20 + px, y - 4);
  g.stroke();
  g.font = '11px "DejaVu Sans", sans-serif';
  g.fillStyle = '#1d2126';
  g.textAlign = 'left';
  g.fillText(nice >= 1000 ? `${nice / 1000} km` : `${nice} m`, 22, y - 9);
}
app.printImage = printImage;
app.preparePrint = preparePrint;

// ---- the map ----

function baseStyle() {
  return {
    version: 8,
    // A changed filter or statistic shows at once: no cross-fade of colours (analysts
    // compare before and after; a 300 ms fade only delays the answer).
    transition: { duration: 0, delay: 0 },
    sources: {
      osm: {
        type: 'raster', tiles: [OSM_TILES], tileSize: 256, maxzoom: 19,
        attribution: '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
      },
      // The server's own raster basemap, when started with --basemap (its TileJSON
      // carries the zoom range, bounds and attribution).
      ...(app.meta.basemap ? { basemap: { type: 'raster', url: `${ORIGIN}${app.meta.basemap.tilejson}`, tileSize: 256 } } : {}),
      boundaries: { type: 'vector', url: `${ORIGIN}/tiles/boundaries.json` },
      heat: { type: 'raster', tiles: [heatUrl()], tileSize: 256, minzoom: 6, maxzoom: 18 },
      cells: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
      areas: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
      patrol: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
      selected: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#eef0f2' } },
      ...(app.meta.basemap ? [{ id: 'basemap', type: 'raster', source: 'basemap', paint: { 'raster-fade-duration': 0 } }] : []),
      { id: 'osm', type: 'raster', source: 'osm', layout: { visibility: 'none' }, paint: { 'raster-saturation': -0.6 } },
      {
        id: 'land', type: 'fill', source: 'boundaries', 'source-layer': 'districts',
        paint: { 'fill-color': '#ffffff', 'fill-opacity': 0.9 },
      },
      { id: 'areas-fill', type: 'fill', source: 'areas', layout: { visibility: 'none' }, paint: { 'fill-color': VIRIDIS[0], 'fill-opacity': 0.6 } },
      { id: 'heat', type: 'raster', source: 'heat', paint: { 'raster-opacity': 0.8, 'raster-fade-duration': 0 } },
      {
        id: 'cells-fill', type: 'fill', source: 'cells',
        paint: { 'fill-color': DIVERGING[0], 'fill-opacity': 0.7 },
      },
      { id: 'cells-line', type: 'line', source: 'cells', minzoom: 10, paint: { 'line-color': '#ffffff', 'line-width': 0.5, 'line-opacity': 0.6 } },
      {
        id: 'emerging-fill', type: 'fill', source: 'cells', layout: { visibility: 'none' },
        filter: ['all', ['has', 'category'], ['!=', ['get', 'category'], 'No Pattern Detected']],
        paint: { 'fill-color': emergingColour(), 'fill-opacity': 0.8 },
      },
      { id: 'lsoa-line', type: 'line', source: 'boundaries', 'source-layer': 'lsoas', paint: { 'line-color': '#8a8f98', 'line-width': 0.4 } },
      { id: 'district-line', type: 'line', source: 'boundaries', 'source-layer': 'districts', paint: { 'line-color': '#30343b', 'line-width': 1.4 } },
      { id: 'patrol-casing', type: 'line', source: 'patrol', paint: { 'line-color': '#ffffff', 'line-width': 5 } },
      { id: 'patrol-line', type: 'line', source: 'patrol', paint: { 'line-color': '#000000', 'line-width': 2.5 } },
      // The unit whose details are open.
      {
        id: 'selected-district', type: 'line', source: 'boundaries', 'source-layer': 'districts',
        filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#e08b00', 'line-width': 3.5 },
      },
      {
        id: 'selected-lsoa', type: 'line', source: 'boundaries', 'source-layer': 'lsoas',
        filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#e08b00', 'line-width': 3 },
      },
      { id: 'selected-casing', type: 'line', source: 'selected', paint: { 'line-color': '#ffffff', 'line-width': 6 } },
      { id: 'selected-line', type: 'line', source: 'selected', paint: { 'line-color': '#e08b00', 'line-width': 3.5 } },
    ],
  };
}

/** The heatmap is drawn for kernel density, or when asked, but not under cells coloured
 * by Gi* or Moran classes: its low densities are blue, the cold-spot colour, so hot cells
 * under it would look cold. */
function heatShown(s) {
  if (s.method === 'kde') return true;
  const statCells = s.cells && (s.method === 'change' || (s.colour === 'stat' && (s.method === 'gistar' || s.method === 'moran')));
  return s.heat && !statCells;
}

function heatUrl() {
  const q = filterParams(app.state).toString();
  return `${ORIGIN}/tiles/heatmap/{z}/{x}/{y}.png${q ? `?${q}` : ''}`;
}

function setVisible(id, on) {
  if (app.map.getLayer(id)) app.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
}

function initMap() {
  const s = app.state;
  const b = app.meta.bounds;
  const opts = {
    container: 'map',
    style: baseStyle(),
    // The search's places are bundled data with attribution duties (boundaries/SOURCES.md).
    attributionControl: {
      compact: true,
      customAttribution: 'Places: GeoNames (CC BY 4.0); postcodes: Contains OS data © Crown copyright and database right 2025, Royal Mail data © Royal Mail copyright and database right 2025; boundaries: ONS (OGL v3.0)',
    },
    canvasContextAttributes: { preserveDrawingBuffer: true },
    maxZoom: 18,
    transformRequest,
  };
  if (s.view) {
    opts.center = [s.view[0], s.view[1]];
    opts.zoom = s.view[2];
  } else if (b) {
    // A link with a district opens on that district.
    const d = app.meta.districts.find((x) => x.code === s.district);
    const e = d?.bbox || b;
    opts.bounds = [[e[0], e[1]], [e[2], e[3]]];
    opts.fitBoundsOptions = { padding: 10 };
  }
  const map = new maplibregl.Map(opts);
  app.map = map;
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  // Compact attribution starts open; fold it so it does not cover the map on a tablet.
  map.once('load', () => document.querySelector('.maplibregl-ctrl-attrib')?.classList.remove('maplibregl-compact-show'));
  map.on('moveend', () => {
    const c = map.getCenter();
    app.state.view = [c.lng, c.lat, map.getZoom()];
    writeUrl();
  });
  map.on('click', (e) => openDetailsAt(e.point));
  map.getCanvas().setAttribute('aria-label', $('map').getAttribute('aria-label'));
  $('map').removeAttribute('tabindex');
  map.getCanvas().addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      const c = map.getCanvas();
      openDetailsAt({ x: c.clientWidth / 2, y: c.clientHeight / 2 }, true);
    }
  });
  for (const id of ['cells-fill', 'areas-fill', 'patrol-line', 'land']) {
    map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
  }
  return new Promise((resolve) => map.on('load', () => {
    // Withheld (suppressed) units: a grey hatch over their neutral grey fill.
    map.addImage(HATCH, hatchImage());
    const withheld = ['==', ['get', 'suppressed'], true];
    map.addLayer({
      id: 'areas-withheld', type: 'fill', source: 'areas', filter: withheld, layout: { visibility: 'none' },
      paint: { 'fill-pattern': HATCH, 'fill-opacity': 0.8 },
    }, 'heat');
    map.addLayer({
      id: 'cells-withheld', type: 'fill', source: 'cells', filter: withheld, layout: { visibility: 'none' },
      paint: { 'fill-pattern': HATCH, 'fill-opacity': 0.8 },
    }, 'cells-line');
    resolve();
  }));
}

function writeUrl() {
  const q = toQuery(app.state);
  window.history.replaceState(null, '', `${window.location.pathname}${q ? `?${q}` : ''}`);
}

// ---- refresh: one function that brings every layer to the state ----

let refreshTimer = null;
function refresh() {
  if (app.changeStart === null) app.changeStart = performance.now();
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(doRefresh, 60);
}

function doRefresh() {
  const s = app.state;
  writeUrl();
  const map = app.map;
  const osmOn = s.osm && app.osmReachable;
  setVisible('osm', osmOn);
  const baseOn = Boolean(app.meta.basemap) && s.basemap;
  setVisible('basemap', baseOn);
  map.setPaintProperty('land', 'fill-opacity', osmOn || baseOn ? 0.1 : 0.9);
  $('osm-state').textContent = app.osmReachable ? '' : '(offline)';
  // Heatmap raster tiles carry the filter in their URL: new filter, new tiles.
  const heatOn = heatShown(s);
  $('heat-state').textContent = s.heat && !heatOn ? '(hidden: the cells show hot spots; its blue would read as cold)' : '';
  const src = map.getSource('heat');
  if (src.tiles?.[0] !== heatUrl()) src.setTiles([heatUrl()]);
  setVisible('heat', heatOn);
  setVisible('cells-fill', s.cells);
  setVisible('cells-line', s.cells);
  if (!s.cells) setVisible('cells-withheld', false); // on again with its statistic (styleCells)
  setVisible('emerging-fill', s.emerging);
  setVisible('areas-fill', Boolean(s.areas));
  setVisible('areas-withheld', Boolean(s.areas));
  setVisible('patrol-casing', s.patrol);
  setVisible('patrol-line', s.patrol);
  for (const m of patrolMarkers) m.getElement().style.display = s.patrol ? '' : 'none';
  describe();
  if (s.none) return showNothing();
  const jobs = [loadCells(), loadPatrol(), loadAreas(), loadHeatLegend(), loadTypeCounts()];
  const n = ++app.refreshes;
  return Promise.all(jobs).then(() => {
    document.body.dataset.ready = String(Date.now());
    map.once('idle', () => {
      if (n !== app.refreshes || app.changeStart === null) return;
      app.lastUpdateMs = Math.round(performance.now() - app.changeStart);
      app.changeStart = null;
    });
    map.triggerRepaint();
  });
}

/** No crime type chosen: no layer asks the server, every layer and legend is empty. */
function showNothing() {
  for (const id of ['heat', 'cells-fill', 'cells-line', 'cells-withheld', 'emerging-fill', 'areas-fill', 'areas-withheld', 'patrol-casing', 'patrol-line']) {
    setVisible(id, false);
  }
  for (const k of Object.keys(legends)) legends[k] = null;
  drawLegends();
  renderPatrol(null);
  numberPatrol(null);
  $('patrol-note').textContent = 'No crime type chosen.';
  app.seq.cells += 1;
  app.seq.patrol += 1;
  app.seq.areas += 1;
  app.seq.legend += 1;
  document.body.dataset.ready = String(Date.now());
  app.changeStart = null;
  return Promise.resolve();
}

function describe() {
  const s = app.state;
  if (s.none) {
    status('No crime types chosen: tick one or more under Crime types (or All).');
    return;
  }
  let types = s.types.length ? `${s.types.length} crime type${s.types.length > 1 ? 's' : ''}` : 'all crime types';
  if (s.severity.length && (!s.types.length || s.types.includes(ROAD))) {
    types += ` (road collisions: ${s.severity.join(', ')})`;
  }
  const from = s.month || s.from || app.meta.months.first;
  const to = s.month || s.to || app.meta.months.last;
  const d = app.meta.districts.find((x) => x.code === s.district);
  const when = from === to ? monthName(from) : `${monthName(from)} to ${monthName(to)}`;
  const m = app.meta.months;
  if (!monthsWithData().length) {
    // An empty map must say why: a period outside the data, or months never published.
    status(`No data for ${when}: the data run from ${monthName(m.first)} to ${monthName(m.last)}`
      + `${(app.meta.missing || []).length ? ' with some months unpublished' : ''}. Choose another period.`);
    return;
  }
  status(`${types} · ${when} · ${d ? d.name : 'Lancashire'}`);
}

async function loadCells() {
  const s = app.state;
  if (!s.cells && !s.emerging) return;
  const q = filterParams(s);
  q.set('res', String(s.res));
  q.set('fdr', String(s.fdr));
  let url;
  if (s.method === 'change') {
    q.set('against', s.against);
    url = `api/change?${q}`;
  } else {
    q.set('method', s.method === 'kde' ? 'counts' : s.method);
    if (byHarm()) q.set('measure', 'harm');
    url = `api/cells?${q}`;
  }
  const n = ++app.seq.cells;
  try {
    const data = await getJson(url);
    if (s.method === 'change') {
      // The current period's count is the cell's count (details, withheld hatch).
      for (const f of data.features) {
        f.properties.count = f.properties.now;
        if (f.properties.bin === null) f.properties.suppressed = true;
      }
    }
    if (n !== app.seq.cells) return;
    app.cellsData = data;
    app.map.getSource('cells').setData(data);
    styleCells();
  } catch (e) {
    if (n !== app.seq.cells) return;
    status(`Cells: ${e.message}`);
    if (s.method === 'change') {
      app.cellsData = null;
      app.map.getSource('cells').setData(EMPTY);
      legends.cells = legend('Change', e.message, [['transparent', 'nothing to compare']]);
      drawLegends();
    }
  }
}

function cellStatistic() {
  const s = app.state;
  if (s.method === 'change') return 'change';
  if (s.colour === 'count') return 'count';
  if (s.colour === 'rate') return 'rate';
  if (s.method === 'gistar') return 'gistar';
  if (s.method === 'moran') return 'moran';
  return 'count';
}

function styleCells() {
  const map = app.map;
  const feats = app.cellsData?.features || [];
  const stat = cellStatistic();
  let colour;
  let opacity = 0.7;
  const res = app.state.res;
  // Below analyst the server withholds small counts (null, `suppressed: true`) and
  // publishes each statistic as its bin only, which every cell has.
  const anyWithheld = feats.some((f) => f.properties.suppressed || f.properties.count === null);
  const publicNote = accessKey() ? '' : ' Public map: significance bins only, exact z and p withheld.';
  // The server warns when too few cells have incidents for Gi*'s and Moran's normal approximation.
  const sparseNote = app.cellsData?.warning ? ` Caution: ${app.cellsData.warning}.` : '';
  const harm = byHarm() && feats.every((f) => f.properties.harm !== undefined);
  const ofHarm = harm ? ` Of harm, not counts.${harmNote()}` : '';
  legends.cells = null;
  if (stat === 'change') {
    colour = binColour(CHANGE_CLASSES);
    opacity = ['case', ['==', ['to-number', ['get', 'bin'], 0], 0], 0.25, 0.75];
    const per = app.cellsData?.periods;
    const span = (p) => (p.from === p.to ? monthName(p.from) : `${monthName(p.from)} to ${monthName(p.to)}`);
    const when = per ? `${span(per.now)} against ${span(per.before)}` : '';
    const gaps = per ? [...per.now.missing, ...per.before.missing] : [];
    legends.cells = legend(
      `Change · H3 res ${res}`,
      `${when}: exact conditional test of two Poisson counts (monthly rates over months with data), two-sided, 5%${app.state.fdr ? ' with false discovery rate control' : ''}.${gaps.length ? ` Unpublished months left out: ${gaps.map(monthName).join(', ')}.` : ''}${publicNote}`,
      withheldRows(CHANGE_CLASSES.map(([, label, c]) => [c, label]), anyWithheld),
    );
  } else if (stat === 'gistar') {
    colour = binColour(GI_CLASSES);
    opacity = ['case', ['==', ['to-number', ['get', 'bin'], 0], 0], 0.25, 0.75];
    legends.cells = legend(
      `Hot spots · Getis-Ord Gi* · H3 res ${res}`,
      `Confidence that incidents cluster in a cell and its ring of neighbours (z-score bins${app.state.fdr ? ', false discovery rate controlled' : ''}).${ofHarm}${publicNote}${sparseNote}`,
      GI_CLASSES.map(([b, label]) => [DIVERGING[b], label]),
    );
  } else if (stat === 'moran') {
    colour = binColour(MORAN_CLASSES);
    opacity = ['case', ['==', ['to-number', ['get', 'bin'], 0], 0], 0.25, 0.75];
    legends.cells = legend(
      `Clusters · local Moran's I · H3 res ${res}`,
      `Cells whose count is like (cluster) or unlike (outlier) their neighbours', p < 0.05 by 999 permutations${app.state.fdr ? ', FDR controlled' : ''}. Empty cells among empty neighbours are never called low-low.${ofHarm}${publicNote}${sparseNote}`,
      MORAN_CLASSES.map(([, label, c]) => [c, label]),
    );
  } else {
    const prop = stat === 'rate' ? 'per_km2' : harm ? 'harm' : 'count';
    const br = jenks(feats.map((f) => f.properties[prop]));
    colour = stepColour(prop, br);
    let title = stat === 'rate' ? 'Rate' : 'Count';
    let note = stat === 'rate' ? 'Incidents per km² in each cell (natural breaks, Jenks).' : 'Incidents in each cell (natural breaks, Jenks).';
    if (prop === 'harm') {
      title = 'Harm';
      note = `Harm in each cell (natural breaks, Jenks).${harmNote()}`;
    } else if (harm) {
      note += ' The rate is of incidents, not harm.';
    }
    legends.cells = legend(`${title} · H3 res ${res}`, note, withheldRows(stepRows(br), anyWithheld));
  }
  map.setPaintProperty('cells-fill', 'fill-color', colour);
  map.setPaintProperty('cells-fill', 'fill-opacity', opacity);
  setVisible('cells-withheld', app.state.cells && (stat === 'count' || stat === 'rate' || stat === 'change'));
  const cats = new Set(feats.map((f) => f.properties.category).filter(Boolean));
  const rows = EMERGING.filter(([label]) => cats.has(label)).map(([label, c]) => [c, label]);
  legends.emerging = legend(
    'Emerging hot spots',
    res >= 7 && res <= 9
      ? 'Trend of monthly space-time Gi* (Mann-Kendall) per cell, Esri categories.'
      : 'Computed at H3 resolutions 7 to 9 only: choose one of those.',
    rows.length ? rows : [['transparent', 'no pattern detected']],
  );
  drawLegends();
}

/** Legend rows, with the withheld swatch for the public (or whenever something is withheld). */
function withheldRows(rows, anyWithheld) {
  return anyWithheld || !accessKey() ? [...rows, WITHHELD_ROW] : rows;
}

async function loadAreas() {
  const s = app.state;
  if (!s.areas) return drawLegends();
  const q = ogcParams(s);
  q.set('limit', '10000');
  const n = ++app.seq.areas;
  try {
    const data = await getJson(`${ORIGIN}/collections/${s.areas}/items?${q}`);
    if (n !== app.seq.areas) return;
    app.map.getSource('areas').setData(data);
    const prop = s.areaStat === 'rate' ? 'per_km2' : 'count';
    const br = jenks(data.features.map((f) => f.properties[prop]));
    app.map.setPaintProperty('areas-fill', 'fill-color', stepColour(prop, br));
    legends.areas = legend(
      `${s.areas === 'lsoas' ? 'LSOAs' : 'Districts'} · ${prop === 'count' ? 'count' : 'rate'}`,
      prop === 'count' ? 'Incidents in each area (natural breaks, Jenks).' : 'Incidents per km² of each area (natural breaks, Jenks).',
      withheldRows(stepRows(br), data.features.some((f) => f.properties.suppressed || f.properties[prop] === null)),
    );
  } catch (e) {
    if (n === app.seq.areas) status(`Areas: ${e.message}`);
  }
  return drawLegends();
}

async function loadHeatLegend() {
  const s = app.state;
  if (!heatShown(s)) return drawLegends();
  const n = ++app.seq.legend;
  try {
    const l = await getJson(`${ORIGIN}/tiles/heatmap/legend?${filterParams(s)}`);
    if (n !== app.seq.legend) return;
    const stops = l.stops.filter((_, i) => i % Math.ceil(l.stops.length / 6) === 0 || i === l.stops.length - 1);
    legends.heat = legend(
      'Heatmap · kernel density',
      `Incidents per km² (quartic kernel, ${Math.round(l.bandwidth_m)} m bandwidth: same colour, same density at every zoom).`,
      stops.map((st) => [st.colour, fmt(st.per_km2)]),
    );
  } catch (e) {
    if (n === app.seq.legend) status(`Heatmap: ${e.message}`);
  }
  return drawLegends();
}

/** The counts beside the type boxes follow the period and district (every type is listed
 * whatever is ticked). Below analyst the server perturbs them and withholds small ones. */
let typeCountsKey = null;
async function loadTypeCounts() {
  const q = filterParams(app.state);
  q.delete('types');
  q.delete('severity');
  const key = q.toString();
  if (key === typeCountsKey) return;
  const n = ++app.seq.types;
  try {
    const d = await getJson(`api/types?${q}`);
    if (n !== app.seq.types) return;
    typeCountsKey = key;
    const counts = new Map();
    for (const t of d.types || []) counts.set(t.slug, t.count);
    for (const v of d.severities || []) counts.set(`${ROAD}:${v.slug}`, v.count);
    for (const cb of typeBoxes()) {
      const span = cb.parentElement.querySelector('.count');
      if (!span) continue;
      const c = counts.has(cb.value) ? counts.get(cb.value) : 0;
      span.textContent = typeof c === 'number' ? `(${c.toLocaleString('en-GB')})` : '(withheld)';
    }
  } catch {
    // The counts stay as they were; the map itself does not depend on them.
  }
}
app.typeCountsKey = () => typeCountsKey;

const EMPTY = { type: 'FeatureCollection', features: [] };

/** The patrol list's ranking methods (`ranking` property), in words. */
const RANKING_LABELS = {
  naive: 'incident count',
  recent: 'recent incidents (weighted to the latest months)',
  'naive-last': "last month's incidents",
  gistar: 'Gi* hot spot z-score',
  prospective: 'prospective hotspotting (recent, nearby incidents)',
  kde: 'kernel density',
  etas: 'self-exciting point process (background plus repeat risk, fitted)',
};

/** No patrol list for this caller (the collection needs role partner). */
function patrolRefused(message) {
  app.patrolData = null;
  app.patrolAllowed = false;
  app.map.getSource('patrol').setData(EMPTY);
  numberPatrol(null);
  renderPatrol(null);
  $('patrol-note').textContent = message;
  legends.patrol = null;
  for (const id of ['export-geojson', 'export-csv']) $(id).disabled = true;
}

async function loadPatrol() {
  const s = app.state;
  const q = ogcParams(s);
  q.set('limit', String(s.patrolN));
  const n = ++app.seq.patrol;
  // Without a key the answer is 401: do not ask (a refused request is a console error).
  if (!accessKey()) {
    patrolRefused('Patrol list needs a partner key: enter one under Access key.');
    return drawLegends();
  }
  try {
    const data = await getJson(`${ORIGIN}/collections/patrol/items?${q}`);
    if (n !== app.seq.patrol) return;
    app.patrolData = data;
    app.patrolAllowed = true;
    for (const id of ['export-geojson', 'export-csv']) $(id).disabled = false;
    app.map.getSource('patrol').setData(data);
    numberPatrol(data);
    renderPatrol(data, zoomTo, (f) => openDetails('cell', f.properties.cell, f));
    const ranking = data.features[0]?.properties.ranking;
    const how = RANKING_LABELS[ranking] || ranking || 'count';
    $('patrol-note').textContent = `The ${data.features.length} H3 resolution 9 cells to patrol first for this filter, ranked by ${how}: the method that would have predicted next month best here (backtest). Places with incidents come first.`;
    legends.patrol = legend('Patrol targets', 'Outlined cells: the ranked patrol list (H3 resolution 9).', [['#000000', 'patrol target']]);
  } catch (e) {
    if (n !== app.seq.patrol) return;
    if (e.status === 401) patrolRefused('Patrol list needs a partner key.');
    else if (e.status === 403) patrolRefused(`Patrol list needs a partner key: ${e.message}`);
    else status(`Patrol: ${e.message}`);
  }
  return drawLegends();
}

/** A patrol target's centre: the mean of its ring's vertices (an H3 cell is convex). */
function centreOf(f) {
  const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0] : f.geometry.coordinates[0][0];
  const pts = ring.slice(0, -1);
  return [pts.reduce((a, p) => a + p[0], 0) / pts.length, pts.reduce((a, p) => a + p[1], 0) / pts.length];
}

let patrolMarkers = [];
/** Numbered markers on the patrol targets, the numbers of the list (and of the print). */
function numberPatrol(fc) {
  for (const m of patrolMarkers) m.remove();
  patrolMarkers = [];
  if (!fc || !app.state.patrol) return;
  fc.features.forEach((f, i) => {
    const el = document.createElement('div');
    el.className = 'patrol-num';
    el.textContent = String(i + 1);
    const p = f.properties;
    el.title = `${i + 1}. ${p.location || p.lsoa_name || p.cell}`;
    el.setAttribute('aria-hidden', 'true');
    patrolMarkers.push(new maplibregl.Marker({ element: el }).setLngLat(centreOf(f)).addTo(app.map));
  });
  declutterPatrol();
}

/** At low zooms neighbouring targets' numbers would pile up: a number is shown only clear
 * of the higher-ranked ones shown (its outline stays; zooming in shows every number). */
function declutterPatrol() {
  const shown = [];
  for (const m of patrolMarkers) {
    const p = app.map.project(m.getLngLat());
    const clear = shown.every((q) => Math.hypot(p.x - q.x, p.y - q.y) >= 22);
    m.getElement().style.visibility = clear ? 'visible' : 'hidden';
    if (clear) shown.push(p);
  }
}
app.patrolMarkers = () => patrolMarkers;

const legends = { heat: null, cells: null, emerging: null, areas: null, patrol: null };
function drawLegends() {
  const s = app.state;
  const on = {
    heat: heatShown(s), cells: s.cells, emerging: s.emerging, areas: Boolean(s.areas), patrol: s.patrol,
  };
  const box = $('legends');
  box.replaceChildren(...Object.entries(legends).filter(([k, v]) => v && on[k]).map(([, v]) => v));
}

function zoomTo(feature) {
  const pts = feature.geometry.coordinates.flat(3);
  const xs = [];
  const ys = [];
  for (let i = 0; i < pts.length; i += 2) { xs.push(pts[i]); ys.push(pts[i + 1]); }
  // Zoom 14 keeps the streets around the target in view; a short flight.
  app.map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]], { padding: 80, maxZoom: 14, duration: 800 });
}

function zoomToDistrict(code) {
  const d = app.meta.districts.find((x) => x.code === code);
  const b = d ? d.bbox : app.meta.bounds;
  if (b) app.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 800 });
}

// ---- place labels, drawn by the app itself: no glyph or tile server, so they show
// offline and go into the print image (printImage) ----

const LABEL_FONT = {
  district: '600 14px "DejaVu Sans", system-ui, sans-serif',
  town: '12px "DejaVu Sans", system-ui, sans-serif',
  street: 'italic 11px "DejaVu Sans", system-ui, sans-serif',
};
let labelData = [];
let placedLabels = [];
let labelSeq = 0;
let labelTimer = null;
const measure = document.createElement('canvas').getContext('2d');

/** Which labels a zoom shows: district names until the streets, towns by size, then all,
 * streets from zoom 15 (the server sends them only there). */
function labelWanted(l, z) {
  if (l.kind === 'district') return z < 12.5;
  if (l.kind === 'street') return z >= 15;
  const pop = Number(l.population) || 0;
  if (z >= 11) return true;
  if (z >= 10) return pop >= 2000;
  if (z >= 9) return pop >= 10000;
  return pop >= 40000;
}

const LABEL_ORDER = { district: 0, town: 1, street: 2 };
/** Places the wanted labels greedily (districts, then larger towns, then streets), each only
 * where it overlaps none placed before, and draws them in the overlay. */
function placeLabels() {
  const map = app.map;
  const box = $('labels');
  if (!map || !box) return;
  const z = map.getZoom();
  const w = map.getCanvas().clientWidth;
  const h = map.getCanvas().clientHeight;
  const want = labelData.filter((l) => labelWanted(l, z)).sort((a, b) => (LABEL_ORDER[a.kind] - LABEL_ORDER[b.kind])
    || ((Number(b.population) || 0) - (Number(a.population) || 0)) || (Number(b.rank) || 0) - (Number(a.rank) || 0));
  const boxes = [];
  placedLabels = [];
  for (const l of want) {
    const p = map.project([l.lon, l.lat]);
    measure.font = LABEL_FONT[l.kind] || LABEL_FONT.town;
    const lw = measure.measureText(l.name).width + 6;
    const lh = l.kind === 'district' ? 18 : 15;
    const r = [p.x - lw / 2, p.y - lh / 2, p.x + lw / 2, p.y + lh / 2];
    if (r[2] < 0 || r[0] > w || r[3] < 0 || r[1] > h) continue;
    if (boxes.some((o) => r[0] < o[2] && r[2] > o[0] && r[1] < o[3] && r[3] > o[1])) continue;
    boxes.push(r);
    placedLabels.push(l);
  }
  box.replaceChildren(...placedLabels.map((l) => {
    const e = document.createElement('span');
    e.className = `label label-${l.kind}`;
    e.textContent = l.name;
    return e;
  }));
  moveLabels();
}

/** Keeps the placed labels on their places while the map moves. */
function moveLabels() {
  const box = $('labels');
  if (!box) return;
  const map = app.map;
  [...box.children].forEach((e, i) => {
    const l = placedLabels[i];
    const p = map.project([l.lon, l.lat]);
    e.style.transform = `translate(${p.x.toFixed(1)}px, ${p.y.toFixed(1)}px) translate(-50%, -50%)`;
  });
}

async function loadLabels() {
  const map = app.map;
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const bbox = [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -85, 85), clamp(b.getEast(), -180, 180), clamp(b.getNorth(), -85, 85)];
  const q = new URLSearchParams({ bbox: bbox.map((x) => x.toFixed(5)).join(','), zoom: String(Math.floor(map.getZoom())) });
  const n = ++labelSeq;
  try {
    const d = await getJson(`api/labels?${q}`);
    if (n !== labelSeq) return;
    labelData = d.labels || [];
  } catch {
    return; // labels are an aid: the map works without them
  }
  placeLabels();
}

function wireLabels() {
  const map = app.map;
  const overlay = document.createElement('div');
  overlay.id = 'labels';
  overlay.setAttribute('aria-hidden', 'true');
  map.getCanvasContainer().after(overlay);
  map.on('move', moveLabels);
  map.on('moveend', () => {
    placeLabels();
    declutterPatrol();
    clearTimeout(labelTimer);
    labelTimer = setTimeout(loadLabels, 120);
  });
  map.on('resize', placeLabels);
  return loadLabels();
}
app.placedLabels = () => placedLabels;

// ---- place search (the server's gazetteer: districts, LSOAs, towns, postcodes, streets) ----

const KIND_LABEL = { district: 'district', town: 'town', postcode: 'postcode', lsoa: 'LSOA', street: 'street' };
const KIND_ZOOM = { town: 13, postcode: 16, street: 16 };
let searchSeq = 0;
let searchMarker = null;

function placeLabel(p) {
  return `${p.name}${p.district && p.district !== p.name ? `, ${p.district}` : ''}`;
}

/** Flies to a place: areas (and short streets) to their extent, points to a zoom by kind. */
function goToPlace(p) {
  const map = app.map;
  const b = p.bbox;
  const small = b && (b[2] - b[0]) < 0.02 && (b[3] - b[1]) < 0.012;
  if (b && (p.kind === 'district' || p.kind === 'lsoa' || (p.kind === 'street' && small && b[2] > b[0]))) {
    map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 17, duration: 800 });
  } else {
    map.flyTo({ center: [p.lon, p.lat], zoom: KIND_ZOOM[p.kind] || 14, duration: 800 });
  }
  if (!searchMarker) searchMarker = new maplibregl.Marker({ color: '#1d2126' });
  searchMarker.setLngLat([p.lon, p.lat]).addTo(map);
  searchMarker.getElement().setAttribute('aria-label', placeLabel(p));
  searchMarker.getElement().title = placeLabel(p);
  $('search-q').value = placeLabel(p);
  $('search-results').hidden = true;
  $('search-state').textContent = `Showing ${placeLabel(p)}`;
  app.lastPlace = p;
}

async function searchPlaces(q) {
  const n = ++searchSeq;
  if (q.trim().length < 2) {
    $('search-results').hidden = true;
    return [];
  }
  let places = [];
  try {
    places = (await getJson(`api/places?q=${encodeURIComponent(q)}&limit=8`)).places;
  } catch (e) {
    $('search-state').textContent = `Search: ${e.message}`;
    return [];
  }
  if (n !== searchSeq) return null;
  const list = $('search-results');
  list.replaceChildren(...places.map((p) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'place';
    b.dataset.kind = p.kind;
    b.append(placeLabel(p), ' ');
    const k = document.createElement('span');
    k.className = 'kind';
    k.textContent = KIND_LABEL[p.kind] || p.kind;
    b.append(k);
    b.addEventListener('click', () => goToPlace(p));
    li.append(b);
    return li;
  }));
  list.hidden = places.length === 0;
  $('search-state').textContent = places.length ? `${places.length} places found` : 'No place found';
  return places;
}

function wireSearch() {
  const input = $('search-q');
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => searchPlaces(input.value), 150);
  });
  input.addEventListener('keydown', async (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      clearTimeout(timer);
      const places = await searchPlaces(input.value);
      if (places && places.length) goToPlace(places[0]);
    } else if (e.key === 'ArrowDown') {
      const first = $('search-results').querySelector('button');
      if (first) { e.preventDefault(); first.focus(); }
    } else if (e.key === 'Escape') {
      $('search-results').hidden = true;
    }
  });
  $('search-results').addEventListener('keydown', (e) => {
    const buttons = [...$('search-results').querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' && i < buttons.length - 1) { e.preventDefault(); buttons[i + 1].focus(); }
    if (e.key === 'ArrowUp') { e.preventDefault(); (i > 0 ? buttons[i - 1] : input).focus(); }
    if (e.key === 'Escape') { $('search-results').hidden = true; input.focus(); }
  });
}

// ---- details ----

/** Details of what is under a point: a cell or patrol target before an area, an area before
 * the district. From the keyboard (`near`) the crosshair's few pixels around the centre
 * count, so a small cell under it is found rather than the district behind it. */
function openDetailsAt(point, near = false) {
  const map = app.map;
  const order = ['patrol-line', 'cells-fill', 'emerging-fill', 'areas-fill', 'land'];
  const layers = order.filter((id) => map.getLayoutProperty(id, 'visibility') !== 'none');
  const r = near ? 6 : 0;
  const box = [[point.x - r, point.y - r], [point.x + r, point.y + r]];
  const hits = map.queryRenderedFeatures(r ? box : [point.x, point.y], { layers });
  hits.sort((a, b) => order.indexOf(a.layer.id) - order.indexOf(b.layer.id));
  const f = hits[0];
  if (!f) return;
  if (f.layer.id === 'areas-fill') openDetails(app.state.areas === 'lsoas' ? 'lsoa' : 'district', f.properties.code);
  else if (f.layer.id === 'land') openDetails('district', f.properties.code);
  else openDetails('cell', f.properties.cell, f);
}

/** Outlines the unit whose details are open: a cell from its polygon, an LSOA or a
 * district by its code in the boundary tiles. */
function highlight(kind, id, feature) {
  const map = app.map;
  const none = ['==', ['get', 'code'], ''];
  map.setFilter('selected-district', kind === 'district' ? ['==', ['get', 'code'], id] : none);
  map.setFilter('selected-lsoa', kind === 'lsoa' ? ['==', ['get', 'code'], id] : none);
  let geom = null;
  if (kind === 'cell') {
    const f = (app.cellsData?.features || []).find((x) => x.properties.cell === id)
      || (app.patrolData?.features || []).find((x) => x.properties.cell === id) || feature;
    geom = f?.geometry || null;
  }
  map.getSource('selected').setData(geom ? { type: 'Feature', properties: {}, geometry: geom } : EMPTY);
  app.selected = kind && id ? { kind, id } : null;
}

function hideDetails() {
  closeDetails();
  if (app.map) highlight(null, null, null);
}

app.openDetails = (kind, id) => openDetails(kind, id);
async function openDetails(kind, id, feature = null) {
  highlight(kind, id, feature);
  const q = filterParams(app.state);
  q.set('kind', kind);
  q.set('id', id);
  q.set('fdr', String(app.state.fdr));
  // The change map: the monthly chart spans both periods, and the panel says the test's
  // answer for this cell.
  const per = app.state.method === 'change' ? app.cellsData?.periods : null;
  if (per) {
    q.set('from', per.before.from);
    q.set('to', per.now.to);
  }
  try {
    const d = await getJson(`api/details?${q}`);
    showDetails(d);
    if (per && kind === 'cell') showChange(id, per);
  } catch (e) {
    status(`Details: ${e.message}`);
  }
}

/** The change map's answer for one cell, under the details' title. */
function showChange(id, per) {
  const f = (app.cellsData?.features || []).find((x) => x.properties.cell === id);
  const p = f ? f.properties : { now: 0, before: 0, class: 'no significant change', p: null };
  const span = (x) => (x.from === x.to ? monthName(x.from) : `${monthName(x.from)} to ${monthName(x.to)}`);
  const n = (v) => (typeof v === 'number' ? v.toLocaleString('en-GB') : 'withheld');
  const el = document.createElement('p');
  el.className = 'change';
  el.textContent = `${span(per.now)}: ${n(p.now)}; ${span(per.before)}: ${n(p.before)}. ${p.class[0].toUpperCase()}${p.class.slice(1)}`
    + `${typeof p.p === 'number' ? ` (exact test, p ${p.p < 0.001 ? '< 0.001' : `= ${p.p.toFixed(3)}`})` : ''}.`;
  $('details-body').querySelector('h2')?.after(el);
}

// ---- export ----

async function exportPatrol(format) {
  const q = ogcParams(app.state);
  q.set('limit', String(app.state.patrolN));
  q.set('f', format);
  busy(1);
  try {
    const r = await apiFetch(`${ORIGIN}/collections/patrol/items?${q}`);
    if (r.status === 401 || r.status === 403) throw new Error('the patrol list needs a partner key');
    if (!r.ok) throw new Error(`${r.status}`);
    const blob = await r.blob();
    const s = app.state;
    const from = s.month || s.from || app.meta.months.first;
    const to = s.month || s.to || app.meta.months.last;
    download(blob, `patrol-${from}-to-${to}.${format === 'json' ? 'geojson' : 'csv'}`);
  } catch (e) {
    status(`Export: ${e.message}`);
  } finally {
    busy(-1);
  }
}

// ---- OpenStreetMap: only when reachable ----

async function probeOsm() {
  try {
    await fetch(OSM_TILES.replace('{z}/{x}/{y}', '0/0/0'), { mode: 'no-cors', signal: AbortSignal.timeout(4000) });
    app.osmReachable = true;
  } catch {
    app.osmReachable = false;
  }
  refresh();
}

let started = false;
async function main() {
  if (!started) {
    started = true;
    wireKey();
  }
  try {
    app.meta = await getJson('api/meta');
  } catch (e) {
    app.meta = null;
    status(e.status === 401 || e.status === 403
      ? `Access key not accepted (${e.message}): change or forget it under Access key.`
      : `Cannot reach the server: ${e.message}`);
    return;
  }
  if (!app.meta.months) {
    status('No incidents in the store yet: ingest some data.');
    return;
  }
  buildControls();
  writeControls();
  wireControls();
  wireSearch();
  await initMap();
  await Promise.all([doRefresh(), wireLabels()]);
  probeOsm();
}

main();
