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
export const CHANGE_CLASSES = [
  [1, 'Significant increase', DIVERGING[3]], [0, 'No significant change', DIVERGING[0]],
  [-1, 'Significant decrease', DIVERGING[-3]],
];
export const MORAN_CLASSES = [
  [2, 'High-high cluster', DIVERGING[3]], [1, 'High-low outlier', DIVERGING[2]],
  [0, 'Not significant', DIVERGING[0]],
  [-1, 'Low-high outlier', DIVERGING[-2]], [-2, 'Low-low cluster', DIVERGING[-3]],
];

// Emerging hot spot categories: one distinct colour each, hot spots warm (the strongest
// patterns the Gi* reds), cold spots cool. Chosen (web/tests/emerging_palette.py) so every
// pair differs by at least CIE76 dE 15 with normal vision and simulated deuteranopia and
// protanopia (Machado 2009), and from the map's greys; web/tests/palette.test.mjs checks it.
export const EMERGING = [
  ['New Hot Spot', '#f0e442'], ['Consecutive Hot Spot', '#e69f00'],
  ['Intensifying Hot Spot', '#c0182b'], ['Persistent Hot Spot', '#67000d'],
  ['Diminishing Hot Spot', '#772244'], ['Sporadic Hot Spot', '#ddddaa'],
  ['Oscillating Hot Spot', '#ee0011'], ['Historical Hot Spot', '#dddd77'],
  ['New Cold Spot', '#ccbbff'], ['Consecutive Cold Spot', '#0072b2'],
  ['Intensifying Cold Spot', '#08306b'], ['Persistent Cold Spot', '#449966'],
  ['Diminishing Cold Spot', '#6677ff'], ['Sporadic Cold Spot', '#4411aa'],
  ['Oscillating Cold Spot', '#447788'], ['Historical Cold Spot', '#0000ff'],
];

/** Natural breaks (Fisher-Jenks: the classes with the least within-class sum of squared
 * deviations, found exactly by dynamic programming over the distinct values, each weighted
 * by how often it occurs). Returns each class's lowest value above the first class, as
 * `step` breaks. More than `cap` distinct values: an evenly spaced sample of them (as
 * mapclassify's FisherJenksSampled). Zero and negative values are left out (they form the
 * lowest class of the map anyway). */
export function jenks(values, n = VIRIDIS.length, cap = 800) {
  const v = values.filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  if (!v.length) return [];
  let u = [];
  let w = [];
  for (const x of v) {
    if (u.length && u[u.length - 1] === x) w[w.length - 1] += 1;
    else { u.push(x); w.push(1); }
  }
  if (u.length > cap) {
    const iu = [];
    const iw = [];
    const step = u.length / cap;
    for (let i = 0; i < cap; i += 1) {
      const lo = Math.floor(i * step);
      const hi = Math.floor((i + 1) * step);
      let s = 0;
      for (let j = lo; j < hi; j += 1) s += w[j];
      iu.push(u[lo]);
      iw.push(s);
    }
    u = iu;
    w = iw;
  }
  const m = u.length;
  const k = Math.min(n, m);
  if (k <= 1) return [];
  // Prefix sums of weight, weight*x, weight*x^2: the cost of a class u[i..j] in O(1).
  const W = [0];
  const S = [0];
  const Q = [0];
  for (let i = 0; i < m; i += 1) {
    W.push(W[i] + w[i]);
    S.push(S[i] + w[i] * u[i]);
    Q.push(Q[i] + w[i] * u[i] * u[i]);
  }
  const cost = (i, j) => {
    const ww = W[j + 1] - W[i];
    const ss = S[j + 1] - S[i];
    return Math.max(0, Q[j + 1] - Q[i] - (ss * ss) / ww);
  };
  // best[c][j]: least cost of u[0..j] in c+1 classes; from[c][j]: where its last class starts.
  const best = [Array.from({ length: m }, (_, j) => cost(0, j))];
  const from = [new Array(m).fill(0)];
  for (let c = 1; c < k; c += 1) {
    const b = new Array(m).fill(Infinity);
    const f = new Array(m).fill(0);
    for (let j = c; j < m; j += 1) {
      for (let i = c; i <= j; i += 1) {
        const t = best[c - 1][i - 1] + cost(i, j);
        if (t < b[j]) { b[j] = t; f[j] = i; }
      }
    }
    best.push(b);
    from.push(f);
  }
  const starts = [];
  let j = m - 1;
  for (let c = k - 1; c >= 1; c -= 1) {
    const i = from[c][j];
    starts.unshift(u[i]);
    j = i - 1;
  }
  return starts;
}

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
