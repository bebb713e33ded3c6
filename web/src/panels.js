// The details panel (counts by type, sparkline, Gi* and trend) and the patrol list.

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';

/** A count, or "withheld" where disclosure control left it out (null). */
export function count(v) {
  return typeof v === 'number' ? v.toLocaleString('en-GB') : 'withheld';
}

/** A monthly sparkline as inline SVG, with its numbers in a title for screen readers.
 * Withheld months (null) are gaps: one polyline per run of published months, a dot for a
 * run of one. */
export function sparkline(months, series, width = 260, height = 48, missing = new Set()) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('role', 'img');
  const shown = series.filter((v) => typeof v === 'number');
  const max = Math.max(1, ...shown);
  const n = series.length;
  const x = (i) => (n <= 1 ? width / 2 : 2 + (i * (width - 4)) / (n - 1));
  const y = (v) => height - 2 - (v * (height - 4)) / max;
  const runs = [];
  let run = [];
  series.forEach((v, i) => {
    if (typeof v === 'number') run.push(i);
    else if (run.length) { runs.push(run); run = []; }
  });
  if (run.length) runs.push(run);
  const title = document.createElementNS(SVG, 'title');
  const withheld = shown.length + missing.size < n ? ' (withheld months: small numbers)' : '';
  const value = (m, i) => (missing.has(m) ? 'no data published' : count(series[i]));
  title.textContent = `Monthly incidents${withheld}: ${months.map((m, i) => `${m} ${value(m, i)}`).join(', ')}`;
  svg.append(title);
  for (const r of runs) {
    if (r.length === 1) {
      const dot = document.createElementNS(SVG, 'circle');
      dot.setAttribute('cx', x(r[0]).toFixed(1));
      dot.setAttribute('cy', y(series[r[0]]).toFixed(1));
      dot.setAttribute('r', '1.5');
      dot.setAttribute('fill', '#b2182b');
      svg.append(dot);
      continue;
    }
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', r.map((i) => `${x(i).toFixed(1)},${y(series[i]).toFixed(1)}`).join(' '));
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', '#b2182b');
    line.setAttribute('stroke-width', '1.5');
    svg.append(line);
  }
  return svg;
}

const BIN = {
  3: 'hot spot (99%)', 2: 'hot spot (95%)', 1: 'hot spot (90%)', 0: 'not significant',
  '-1': 'cold spot (90%)', '-2': 'cold spot (95%)', '-3': 'cold spot (99%)',
};

/** A p-value as people read it: "p = 0.042", or "p < 0.001". */
export function pValue(p) {
  if (typeof p !== 'number' || !Number.isFinite(p)) return 'p n/a';
  return p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`;
}

export function showDetails(d) {
  const body = $('details-body');
  const byType = d.by_type || [];
  const series = d.series || [];
  const rows = byType.map((t) => el('tr', t.selected ? {} : { class: 'unselected' }, el('th', { scope: 'row' }, t.label), el('td', {}, count(t.count))));
  const bin = d.gi ? (BIN[d.gi.bin] || 'not significant') : '';
  let gi = 'Gi*: not computed for districts (too few neighbours)';
  if (d.gi && typeof d.gi.z === 'number') gi = `Gi* z = ${d.gi.z.toFixed(2)}, ${pValue(d.gi.p)}: ${bin}`;
  else if (d.gi) gi = `Gi*: ${bin} (exact z and p withheld)`;
  const trend = d.trend || { direction: 'no data' };
  const trendText = typeof trend.z === 'number'
    ? `Trend: ${trend.direction} (Mann-Kendall z = ${trend.z.toFixed(2)}, ${pValue(trend.p)})`
    : `Trend: ${trend.direction} (Mann-Kendall; exact z and p withheld)`;
  if (!d.months || !d.months.length) {
    body.replaceChildren(el('h2', { id: 'details-title' }, d.name), el('p', {}, 'No incidents in the data for this period.'));
    const aside = $('details');
    aside.hidden = false;
    aside.dataset.kind = d.kind;
    aside.dataset.id = d.id;
    $('details-close').focus();
    return;
  }
  const period = `${d.months[0]} to ${d.months[d.months.length - 1]}`;
  const shown = series.filter((v) => typeof v === 'number');
  // Months no force published (a gap in the data, never zero) and months withheld.
  const missing = new Set(d.missing || []);
  const gaps = shown.length + missing.size < series.length;
  const total = typeof d.total === 'number'
    ? `${count(d.total)} incidents of the selected types, ${period}`
    : `Incidents of the selected types, ${period}: withheld (small numbers, not published)`;
  const parts = [
    el('h2', { id: 'details-title' }, d.name),
    ...(d.cell ? [el('p', { class: 'hint unit-id' }, d.cell)] : []),
    el('p', { class: d.suppressed || d.total === null ? 'total withheld' : 'total' }, total),
    sparkline(d.months, series, 260, 48, missing),
    el('p', { class: 'spark-axis' }, el('span', {}, d.months[0]),
      el('span', {}, shown.length ? `peak ${Math.max(0, ...shown)}${gaps ? ' (gaps: withheld)' : ''}` : 'monthly counts withheld'),
      el('span', {}, d.months[d.months.length - 1])),
    ...(missing.size
      ? [el('p', { class: 'missing' }, `No data published for ${[...missing].join(', ')}: a gap in the data, not zero crime (left out of the trend).`)]
      : []),
    el('p', { class: 'gi' }, gi),
    el('p', { class: 'trend' }, trendText),
  ];
  if (d.category) parts.push(el('p', { class: 'category' }, `Emerging hot spot category: ${d.category}`));
  const caption = byType.some((t) => t.count === null)
    ? 'Incidents by type (greyed: not in the filter; withheld: small numbers)'
    : 'Incidents by type (greyed: not in the filter)';
  parts.push(el('table', {}, el('caption', {}, caption), el('tbody', {}, ...rows)));
  body.replaceChildren(...parts);
  const aside = $('details');
  aside.hidden = false;
  aside.dataset.kind = d.kind;
  aside.dataset.id = d.id;
  $('details-close').focus();
}

export function hideDetails() {
  $('details').hidden = true;
}

/** The ranked patrol list; `fc` null when this caller may not have it. */
export function renderPatrol(fc, zoomTo, details) {
  const list = $('patrol-list');
  if (!fc) {
    list.replaceChildren();
    return;
  }
  const items = fc.features.map((f) => {
    const p = f.properties;
    const z = typeof p.gi_z === 'number' ? ` · z ${p.gi_z.toFixed(1)}` : '';
    const n = typeof p.count === 'number' ? `${count(p.count)} incident${p.count === 1 ? '' : 's'}` : 'count withheld';
    const b = el('button', { type: 'button', class: p.significant ? 'sig' : '' },
      el('strong', {}, p.location || p.lsoa_name || p.cell),
      el('span', {}, ` · ${p.district} · ${n}${z}${p.trend ? ` · ${p.trend}` : ''}`));
    b.addEventListener('click', () => { zoomTo(f); details(f); });
    return el('li', {}, b);
  });
  list.replaceChildren(...items);
  if (!items.length) list.append(el('li', {}, 'No patrol targets for this filter.'));
}

/** Saves a blob under `name` (an anchor with `download`: no server round trip). */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
