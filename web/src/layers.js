// Colour ramps, MapLibre paint expressions and legends. Every ramp is colour-blind safe:
// ColorBrewer RdBu for diverging statistics (hot red, cold blue, "not significant" a
// neutral grey) and viridis for counts and rates.

export const DIVERGING = {
  '-3': '#2166ac', '-2': '#67a9cf', '-1': '#d1e5f0', 0: '#d9d9d9',
  1: '#fddbc7', 2: '#ef8a62', 3: '#b2182b',
};
export const VIRIDIS = ['#440154', '#414487', '#2a788e', '#22a884', '#7ad151', '#fde725'];

export const GI_CLASSES = [
  [3, 'Hot spot, 99% confidence'], [2, 'Hot spot, 95%'], [1, 'Hot spot, 90%'],
  [0, 'Not significant'],
  [-1, 'Cold spot, 90%'], [-2, 'Cold spot, 95%'], [-3, 'Cold spot, 99% confidence'],
];
export const MORAN_CLASSES = [
  [2, 'High-high cluster', DIVERGING[3]], [1, 'High-low outlier', DIVERGING[2]],
  [0, 'Not significant', DIVERGING[0]],
  [-1, 'Low-high outlier', DIVERGING[-2]], [-2, 'Low-low cluster', DIVERGING[-3]],
];

const HOT = ['#67000d', '#a50f15', '#cb181d', '#ef3b2c', '#fb6a4a', '#fc9272', '#fcbba1', '#fee0d2'];
const COLD = ['#08306b', '#08519c', '#2171b5', '#4292c6', '#6baed6', '#9ecae1', '#c6dbef', '#deebf7'];
export const EMERGING = [
  'New', 'Consecutive', 'Intensifying', 'Persistent', 'Diminishing', 'Sporadic', 'Oscillating', 'Historical',
].flatMap((w, i) => [[`${w} Hot Spot`, HOT[i]], [`${w} Cold Spot`, COLD[i]]]);

/** Quantile class breaks (up to n-1 distinct ascending values above the minimum). */
export function breaks(values, n = VIRIDIS.length) {
  const v = values.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (!v.length) return [];
  const out = [];
  for (let k = 1; k < n; k += 1) {
    const b = v[Math.min(v.length - 1, Math.floor((k * v.length) / n))];
    if (!out.length || b > out[out.length - 1]) out.push(b);
  }
  return out;
}

// Units whose count is withheld (disclosure control below the analyst role: `count`
// null, `suppressed: true`): a neutral grey, hatched on the map by a pattern layer.
export const WITHHELD = '#bdbdbd';
export const HATCH = 'withheld-hatch';
export const WITHHELD_ROW = [
  `repeating-linear-gradient(135deg, ${WITHHELD} 0 3px, #7a7a7a 3px 4px)`,
  'grey: withheld (small numbers)',
];

/** The hatch pattern for withheld units: dark grey diagonals on transparent, 8 px. */
export function hatchImage(size = 8) {
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      if ((x + y) % size === 0 || (x + y) % size === size - 1) {
        const i = (y * size + x) * 4;
        data.set([110, 110, 110, 255], i);
      }
    }
  }
  return { width: size, height: size, data };
}

/** A `step` expression over `prop` with viridis colours at `br`; a feature whose `prop`
 * is not a number (withheld: null) is painted grey instead of as the lowest class. */
export function stepColour(prop, br) {
  let e = VIRIDIS[0];
  if (br.length) {
    e = ['step', ['to-number', ['coalesce', ['get', prop], -1], -1], VIRIDIS[0]];
    br.forEach((b, i) => e.push(b, VIRIDIS[Math.min(VIRIDIS.length - 1, i + 1)]));
  }
  return ['case', ['==', ['typeof', ['get', prop]], 'number'], e, WITHHELD];
}

export function binColour(classes) {
  const e = ['match', ['to-number', ['coalesce', ['get', 'bin'], 0], 0]];
  for (const [b, , c] of classes) e.push(b, c || DIVERGING[b]);
  e.push(DIVERGING[0]);
  return e;
}

export function emergingColour() {
  const e = ['match', ['get', 'category']];
  for (const [label, c] of EMERGING) e.push(label, c);
  e.push('rgba(0,0,0,0)');
  return e;
}

/** A number for a legend; null (withheld) as the word. */
const fmt = (x) => {
  if (typeof x !== 'number' || !Number.isFinite(x)) return 'withheld';
  return x >= 100 ? Math.round(x).toLocaleString('en-GB') : Number(x.toPrecision(2)).toString();
};

/** A legend block: a title, what it measures, and its swatches. */
export function legend(title, unit, rows) {
  const el = document.createElement('div');
  el.className = 'legend';
  const h = document.createElement('h3');
  h.textContent = title;
  const p = document.createElement('p');
  p.className = 'unit';
  p.textContent = unit;
  const ul = document.createElement('ul');
  for (const [colour, label] of rows) {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = colour;
    li.append(sw, document.createTextNode(label));
    ul.append(li);
  }
  el.append(h, p, ul);
  return el;
}

/** Legend rows for step classes. */
export function stepRows(br) {
  if (!br.length) return [[VIRIDIS[0], 'no incidents']];
  const rows = [[VIRIDIS[0], `< ${fmt(br[0])}`]];
  br.forEach((b, i) => {
    const next = br[i + 1];
    rows.push([VIRIDIS[Math.min(VIRIDIS.length - 1, i + 1)], next ? `${fmt(b)} – < ${fmt(next)}` : `≥ ${fmt(b)}`]);
  });
  return rows;
}

export { fmt };
