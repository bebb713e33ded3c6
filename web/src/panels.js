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

/** A monthly sparkline as inline SVG, with its numbers in a title for screen readers. */
export function sparkline(months, series, width = 260, height = 48) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...series);
  const n = series.length;
  const x = (i) => (n <= 1 ? width / 2 : 2 + (i * (width - 4)) / (n - 1));
  const y = (v) => height - 2 - (v * (height - 4)) / max;
  const pts = series.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', pts);
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#b2182b');
  line.setAttribute('stroke-width', '1.5');
  const title = document.createElementNS(SVG, 'title');
  title.textContent = `Monthly incidents: ${months.map((m, i) => `${m} ${series[i]}`).join(', ')}`;
  svg.append(title, line);
  return svg;
}

const BIN = {
  3: 'hot spot (99%)', 2: 'hot spot (95%)', 1: 'hot spot (90%)', 0: 'not significant',
  '-1': 'cold spot (90%)', '-2': 'cold spot (95%)', '-3': 'cold spot (99%)',
};

/** A p-value as people read it: "p = 0.042", or "p < 0.001". */
export function pValue(p) {
  if (p === null || p === undefined) return 'p n/a';
  return p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`;
}

export function showDetails(d) {
  const body = $('details-body');
  const rows = d.by_type.map((t) => el('tr', t.selected ? {} : { class: 'unselected' }, el('th', { scope: 'row' }, t.label), el('td', {}, t.count.toLocaleString('en-GB'))));
  const gi = d.gi
    ? `Gi* z = ${d.gi.z.toFixed(2)}, ${pValue(d.gi.p)}: ${BIN[d.gi.bin]}`
    : 'Gi*: not computed for districts (too few neighbours)';
  if (!d.months.length) {
    body.replaceChildren(el('h2', { id: 'details-title' }, d.name), el('p', {}, 'No incidents in the data for this period.'));
    $('details').hidden = false;
    $('details-close').focus();
    return;
  }
  const parts = [
    el('h2', { id: 'details-title' }, d.name),
    el('p', { class: 'total' }, `${d.total.toLocaleString('en-GB')} incidents of the selected types, ${d.months[0]} to ${d.months[d.months.length - 1]}`),
    sparkline(d.months, d.series),
    el('p', { class: 'spark-axis' }, el('span', {}, d.months[0]), el('span', {}, `peak ${Math.max(0, ...d.series)}`), el('span', {}, d.months[d.months.length - 1])),
    el('p', { class: 'gi' }, gi),
    el('p', { class: 'trend' }, `Trend: ${d.trend.direction} (Mann-Kendall z = ${Number(d.trend.z).toFixed(2)}, ${pValue(d.trend.p)})`),
  ];
  if (d.category) parts.push(el('p', { class: 'category' }, `Emerging hot spot category: ${d.category}`));
  parts.push(el('table', {}, el('caption', {}, 'Incidents by type (greyed: not in the filter)'), el('tbody', {}, ...rows)));
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

export function renderPatrol(fc, zoomTo, details) {
  const list = $('patrol-list');
  const items = fc.features.map((f) => {
    const p = f.properties;
    const b = el('button', { type: 'button', class: p.significant ? 'sig' : '' },
      el('strong', {}, p.location || p.lsoa_name || p.cell),
      el('span', {}, ` · ${p.district} · ${p.count} incidents · z ${Number(p.gi_z).toFixed(1)}${p.trend ? ` · ${p.trend}` : ''}`));
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
