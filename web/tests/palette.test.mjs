// Colours and classes of the map's legends, without a browser: the emerging hot spot
// palette stays distinguishable under colour-vision deficiency, and the natural breaks are
// the optimal classes (checked against brute force over every partition).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMERGING, jenks } from '../src/layers.js';

// sRGB -> CIELAB (D65), and Machado et al. (2009) severity-1 simulations in linear RGB.
const DEU = [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]];
const PRO = [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]];
const lin = (c) => { const x = c / 255; return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
function lab([r, g, b]) {
  const X = 0.4124 * r + 0.3576 * g + 0.1805 * b;
  const Y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const Z = 0.0193 * r + 0.1192 * g + 0.9505 * b;
  const f = (t) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 16 / 116);
  const [fx, fy, fz] = [f(X / 0.95047), f(Y), f(Z / 1.08883)];
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}
const sim = (m, v) => m.map((row) => Math.min(1, Math.max(0, row[0] * v[0] + row[1] * v[1] + row[2] * v[2])));
function views(hex) {
  const v = [1, 3, 5].map((i) => lin(parseInt(hex.slice(i, i + 2), 16)));
  return [lab(v), lab(sim(DEU, v)), lab(sim(PRO, v))];
}
const dE = (a, b) => Math.min(...a.map((x, i) => Math.hypot(x[0] - b[i][0], x[1] - b[i][1], x[2] - b[i][2])));

test('emerging categories: 16 colours, each pair distinct with normal vision, deuteranopia and protanopia', () => {
  const names = EMERGING.map(([n]) => n);
  assert.equal(new Set(names).size, 16);
  for (const w of ['New', 'Consecutive', 'Intensifying', 'Persistent', 'Diminishing', 'Sporadic', 'Oscillating', 'Historical']) {
    assert.ok(names.includes(`${w} Hot Spot`) && names.includes(`${w} Cold Spot`), w);
  }
  const v = EMERGING.map(([n, c]) => [n, views(c)]);
  const greys = ['#d9d9d9', '#bdbdbd', '#ffffff', '#eef0f2'].map(views);
  let worst = [Infinity];
  for (let i = 0; i < v.length; i += 1) {
    for (let j = i + 1; j < v.length; j += 1) {
      const d = dE(v[i][1], v[j][1]);
      if (d < worst[0]) worst = [d, v[i][0], v[j][0]];
    }
    for (const g of greys) {
      const d = dE(v[i][1], g);
      if (d < worst[0]) worst = [d, v[i][0], 'a map grey'];
    }
  }
  assert.ok(worst[0] >= 15, `${worst[1]} and ${worst[2]} differ by dE ${worst[0].toFixed(1)} under some vision`);
  // Hot spots warm, cold spots cool (red against blue), as ArcGIS draws them.
  for (const [n, c] of EMERGING) {
    const [r, , b] = [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
    assert.ok(n.includes('Hot') ? r > b : b > r, `${n} ${c}`);
  }
});

/** Within-class sum of squared deviations of sorted values cut at `starts`. */
function ssd(sorted, starts) {
  const classes = [[]];
  for (const x of sorted) {
    if (classes.length <= starts.length && x >= starts[classes.length - 1]) classes.push([]);
    classes[classes.length - 1].push(x);
  }
  return classes.reduce((t, c) => {
    const m = c.reduce((a, b) => a + b, 0) / (c.length || 1);
    return t + c.reduce((a, b) => a + (b - m) ** 2, 0);
  }, 0);
}

/** The least SSD over every way to cut the distinct values into k contiguous classes. */
function bruteForce(values, k) {
  const sorted = [...values].sort((a, b) => a - b);
  const u = [...new Set(sorted)];
  let best = Infinity;
  const choose = (from, left, starts) => {
    if (left === 0) { best = Math.min(best, ssd(sorted, starts)); return; }
    for (let i = from; i <= u.length - left; i += 1) choose(i + 1, left - 1, [...starts, u[i]]);
  };
  choose(1, Math.min(k, u.length) - 1, []);
  return best;
}

test('natural breaks are the least-squares classes (brute force over every partition)', () => {
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  for (let trial = 0; trial < 300; trial += 1) {
    const n = 2 + Math.floor(rand() * 10);
    const k = 2 + Math.floor(rand() * 4);
    const values = Array.from({ length: n }, () => 1 + Math.floor(rand() ** 3 * 200));
    const starts = jenks(values, k);
    const sorted = [...values].sort((a, b) => a - b);
    assert.ok(starts.length <= k - 1);
    for (let i = 1; i < starts.length; i += 1) assert.ok(starts[i] > starts[i - 1]);
    const got = ssd(sorted, starts);
    const want = bruteForce(values, k);
    assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, want), `values ${values} k ${k}: ${got} vs ${want}`);
  }
});

test('natural breaks keep a county\'s largest district apart from its smallest', () => {
  // Burglary by district (the case: 168 and 7 shared a class).
  const counts = [168, 7, 9, 12, 15, 19, 23, 27, 31, 36, 44, 52, 61, 75];
  const starts = jenks(counts, 6);
  const classOf = (x) => starts.filter((b) => x >= b).length;
  assert.notEqual(classOf(168), classOf(7));
  assert.equal(classOf(168), starts.length, 'the largest is in the top class');
  // Many distinct values (sampled): still ascending breaks inside the data's range.
  const many = Array.from({ length: 20000 }, (_, i) => 1 + ((i * 7919) % 5000) / 7);
  const b = jenks(many, 6);
  assert.equal(b.length, 5);
  for (let i = 1; i < b.length; i += 1) assert.ok(b[i] > b[i - 1]);
  assert.ok(b[0] > Math.min(...many) && b[4] <= Math.max(...many));
});
