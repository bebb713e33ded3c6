"""Reference values for the change map's test (src/stats/change.rs), from scipy.

    tests/reference/.venv/bin/python tests/reference/make_change_reference.py

(the venv of setup.sh, which pins scipy; any scipy >= 1.11 gives the same values). Writes
tests/reference/expected/change_binomtest.json:

- `binomtest`: [k, n, p, pvalue] for scipy.stats.binomtest(k, n, p).pvalue (two-sided):
  small counts, every k of some n, large n (a district over years), p from period
  lengths (12 against 12, 3 against 12, 11 against 12 with a month missing);
- `fdr`: Benjamini-Hochberg on a set of two-period counts: the p-values, and which are
  significant at 0.05 (scipy.stats.false_discovery_control(p) <= 0.05).

Deterministic (a seeded generator), no timestamps: a rerun gives the same file.
"""
import json
import pathlib
import platform

import numpy as np
import scipy
from scipy.stats import binomtest, false_discovery_control

OUT = pathlib.Path(__file__).parent / 'expected' / 'change_binomtest.json'


def main():
    cases = []
    ps = [0.5, 3 / 15, 11 / 23, 12 / 36, 0.9]
    for p in ps:
        for n in (1, 2, 5, 17, 40):
            for k in range(0, n + 1):
                cases.append((k, n, p))
    rng = np.random.default_rng(20261202)
    for _ in range(300):
        n = int(rng.integers(50, 4000))
        p = float(rng.choice(ps))
        k = int(min(n, max(0, rng.normal(n * p, 3 * np.sqrt(n * p * (1 - p))))))
        cases.append((k, n, p))
    binom = [[k, n, p, float(binomtest(k, n, p).pvalue)] for k, n, p in cases]
    # A change map's worth: 400 cells, most unchanged, some doubled or halved.
    now, before = [], []
    for i in range(400):
        lam = float(rng.gamma(2.0, 15))
        factor = 2.5 if i % 17 == 0 else (0.4 if i % 19 == 0 else 1.0)
        now.append(int(rng.poisson(lam * factor)))
        before.append(int(rng.poisson(lam)))
    p0 = 12 / 24
    tested = [i for i in range(400) if now[i] + before[i] > 0]
    pv = [float(binomtest(now[i], now[i] + before[i], p0).pvalue) for i in tested]
    q = false_discovery_control(pv)
    OUT.write_text(json.dumps({
        'provenance': {'python': platform.python_version(), 'scipy': scipy.__version__, 'numpy': np.__version__},
        'call': 'scipy.stats.binomtest(k, n, p).pvalue (alternative two-sided); '
                'scipy.stats.false_discovery_control(p) <= 0.05 over the cells with now + before > 0',
        'binomtest': binom,
        'fdr': {
            'now': now, 'before': before, 't_now': 12, 't_before': 12,
            'p': [1.0 if i not in tested else pv[tested.index(i)] for i in range(400)],
            'significant': [bool(i in tested and q[tested.index(i)] <= 0.05) for i in range(400)],
        },
    }, indent=1) + '\n')
    print(f'wrote {OUT} ({len(binom)} binomtest cases, {sum(q <= 0.05)} significant of {len(tested)})')


if __name__ == '__main__':
    main()
