// The map's state: the filters, the statistic, the layers and the view, kept in the URL's
// query string so a shared link opens the same map. Parsing is forgiving: a value that
// is not understood falls back to its default rather than breaking the page.

export const DEFAULTS = {
  types: [], // slugs; empty means every type (unless `none`)
  none: false, // no crime type chosen ("None"): nothing is drawn
  severity: [], // road collision severities (fatal, serious, slight, unknown); empty: all
  from: '', // YYYY-MM, empty: the first month of the data
  to: '',
  district: '',
  month: '', // YYYY-MM when the time slider shows a single month
  method: 'gistar',
  against: 'previous', // the change map's comparison: 'previous' period or same months a 'year' before
  res: 8,
  colour: 'stat',
  measure: 'count', // 'harm': incidents weighted by category (analysts, serve --harm)
  fdr: true,
  heat: true,
  cells: true,
  emerging: false,
  areas: '',
  areaStat: 'count',
  patrol: true,
  patrolN: 10, // how many patrol targets (5 to 100)
  osm: true,
  basemap: true, // the server's own basemap (serve --basemap), when it has one
  view: null, // [lon, lat, zoom]
};

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
const METHODS = ['counts', 'gistar', 'moran', 'kde', 'change'];
export const PATROL_N = [5, 10, 20, 50, 100];

function flag(v, d) {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return d;
}

/** Reads the state from a query string. */
export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const s = structuredClone(DEFAULTS);
  const get = (k) => q.get(k);
  if (get('types') === 'none') s.none = true;
  else if (get('types')) s.types = get('types').split(',').filter(Boolean);
  if (get('severity')) s.severity = get('severity').split(',').filter(Boolean);
  for (const k of ['from', 'to', 'month']) if (MONTH.test(get(k) || '')) s[k] = get(k);
  if (get('district')) s.district = get('district');
  if (METHODS.includes(get('method'))) s.method = get('method');
  if (['previous', 'year'].includes(get('against'))) s.against = get('against');
  const res = Number(get('res'));
  if (Number.isInteger(res) && res >= 6 && res <= 10) s.res = res;
  if (['stat', 'count', 'rate'].includes(get('colour'))) s.colour = get('colour');
  if (['count', 'harm'].includes(get('measure'))) s.measure = get('measure');
  if (['districts', 'lsoas'].includes(get('areas'))) s.areas = get('areas');
  if (['count', 'rate'].includes(get('areastat'))) s.areaStat = get('areastat');
  for (const k of ['fdr', 'heat', 'cells', 'emerging', 'patrol', 'osm', 'basemap']) s[k] = flag(get(k), s[k]);
  const n = Number(get('n'));
  if (PATROL_N.includes(n)) s.patrolN = n;
  const v = (get('view') || '').split(',').map(Number);
  if (v.length === 3 && v.every(Number.isFinite)) s.view = v;
  return s;
}

/** Writes the state as a query string (defaults left out, so links stay short). */
export function toQuery(s) {
  const q = new URLSearchParams();
  if (s.none) q.set('types', 'none');
  else if (s.types.length) q.set('types', s.types.join(','));
  if (s.severity.length) q.set('severity', s.severity.join(','));
  for (const k of ['from', 'to', 'month', 'district']) if (s[k]) q.set(k, s[k]);
  if (s.method !== DEFAULTS.method) q.set('method', s.method);
  if (s.method === 'change' && s.against !== DEFAULTS.against) q.set('against', s.against);
  if (s.res !== DEFAULTS.res) q.set('res', String(s.res));
  if (s.colour !== DEFAULTS.colour) q.set('colour', s.colour);
  if (s.measure !== DEFAULTS.measure) q.set('measure', s.measure);
  if (s.areas) q.set('areas', s.areas);
  if (s.areaStat !== DEFAULTS.areaStat) q.set('areastat', s.areaStat);
  for (const k of ['fdr', 'heat', 'cells', 'emerging', 'patrol', 'osm', 'basemap']) {
    if (s[k] !== DEFAULTS[k]) q.set(k, s[k] ? '1' : '0');
  }
  if (s.patrolN !== DEFAULTS.patrolN) q.set('n', String(s.patrolN));
  if (s.view) q.set('view', s.view.map((x, i) => x.toFixed(i === 2 ? 2 : 5)).join(','));
  return q.toString();
}

/** The incident filter as the server's parameters (types, severity, from, to, district). */
export function filterParams(s) {
  const q = new URLSearchParams();
  if (s.types.length) q.set('types', s.types.join(','));
  if (s.severity.length) q.set('severity', s.severity.join(','));
  const from = s.month || s.from;
  const to = s.month || s.to;
  if (from) q.set('from', from);
  if (to) q.set('to', to);
  if (s.district) q.set('district', s.district);
  return q;
}

/** The same filter for the OGC collections (`datetime` instead of from and to). */
export function ogcParams(s) {
  const q = filterParams(s);
  const from = q.get('from');
  const to = q.get('to');
  q.delete('from');
  q.delete('to');
  if (from || to) q.set('datetime', `${from || '..'}/${to || '..'}`);
  return q;
}

/** Months from `a` to `b` inclusive, as YYYY-MM. */
export function monthsBetween(a, b) {
  const out = [];
  let [y, m] = a.split('-').map(Number);
  const [y2, m2] = b.split('-').map(Number);
  while (y < y2 || (y === y2 && m <= m2)) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m += 1;
    if (m > 12) { m = 1; y += 1; }
    if (out.length > 1200) break;
  }
  return out;
}
