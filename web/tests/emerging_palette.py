"""Regenerates the emerging hot spot palette in web/src/layers.js (EMERGING).

Six colours are pinned for meaning (the strongest hot patterns the Gi* reds, New and
Consecutive the Okabe-Ito yellow and orange, the strongest cold patterns dark blues); the
other ten are chosen, one at a time, from a 16-level sRGB grid to maximise the smallest
CIE76 colour difference to every other category and to the map's greys, with normal
vision and simulated deuteranopia and protanopia (Machado, Oliveira and Fernandes 2009,
severity 1). Hot spots stay warm (red above green and blue), cold spots cool.

    python3 web/tests/emerging_palette.py

prints the palette and its smallest difference; web/tests/palette.test.mjs checks the
palette in layers.js against the same criterion with its own implementation.
"""
import itertools
import math

DEU = [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
PRO = [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]


def lin(c):
    c /= 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def lab(r, g, b):
    x = 0.4124 * r + 0.3576 * g + 0.1805 * b
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = 0.0193 * r + 0.1192 * g + 0.9505 * b

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x / 0.95047), f(y), f(z / 1.08883)
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def simulate(m, rgb):
    return [max(0.0, min(1.0, sum(m[i][j] * rgb[j] for j in range(3)))) for i in range(3)]


def views(hexc):
    rgb = [lin(int(hexc[i:i + 2], 16)) for i in (1, 3, 5)]
    return [lab(*rgb), lab(*simulate(DEU, rgb)), lab(*simulate(PRO, rgb))]


def diff(a, b):
    return min(math.dist(x, y) for x, y in zip(a, b))


GREYS = [views(c) for c in ('#d9d9d9', '#bdbdbd', '#ffffff', '#eef0f2')]
NAMES = [f'{w} {s} Spot' for s in ('Hot', 'Cold') for w in
         ('New', 'Consecutive', 'Intensifying', 'Persistent', 'Diminishing', 'Sporadic', 'Oscillating', 'Historical')]
PINNED = {
    'New Hot Spot': '#f0e442', 'Consecutive Hot Spot': '#e69f00',
    'Intensifying Hot Spot': '#c0182b', 'Persistent Hot Spot': '#67000d',
    'Consecutive Cold Spot': '#0072b2', 'Intensifying Cold Spot': '#08306b',
}
START = {
    'Diminishing Hot Spot': '#cc79a7', 'Sporadic Hot Spot': '#ffb3a7', 'Oscillating Hot Spot': '#8c510a',
    'Historical Hot Spot': '#dfc27d', 'New Cold Spot': '#56b4e9', 'Persistent Cold Spot': '#009e73',
    'Diminishing Cold Spot': '#b8a9e0', 'Sporadic Cold Spot': '#6a3d9a', 'Oscillating Cold Spot': '#01665e',
    'Historical Cold Spot': '#c7eae5',
}


def family_ok(name, r, g, b):
    if 'Hot' in name:
        return r >= g and r > b + 40
    return b > r + 30 or (g > r + 40 and b > r + 20)


def main():
    grid = []
    for r, g, b in itertools.product(range(0, 256, 17), repeat=3):
        h = '#%02x%02x%02x' % (r, g, b)
        v = views(h)
        if 25 <= v[0][0] <= 88:
            grid.append((h, v, r, g, b))
    pal = {**PINNED, **START}
    v = {k: views(c) for k, c in pal.items()}

    def worst_of(k, vk):
        return min([diff(vk, v[o]) for o in NAMES if o != k] + [diff(vk, g) for g in GREYS])

    for it in range(60):
        pairs = sorted([(diff(v[a], v[b]), a, b) for a, b in itertools.combinations(NAMES, 2)]
                       + [(diff(v[a], g), a, a) for a in NAMES for g in GREYS])
        changed = False
        for _, a, b in pairs:
            for k in ((a, b) if it % 2 == 0 else (b, a)):
                if k in PINNED:
                    continue
                best = max((c for c in grid if family_ok(k, *c[2:])), key=lambda c: worst_of(k, c[1]))
                if worst_of(k, best[1]) > worst_of(k, v[k]) + 0.01:
                    pal[k], v[k] = best[0], best[1]
                    changed = True
                break
            if changed:
                break
        if not changed:
            break
    low = min([diff(v[a], v[b]) for a, b in itertools.combinations(NAMES, 2)] + [diff(v[a], g) for a in NAMES for g in GREYS])
    for k in NAMES:
        print(f"  ['{k}', '{pal[k]}'],")
    print(f'smallest difference: {low:.1f}')


if __name__ == '__main__':
    main()
