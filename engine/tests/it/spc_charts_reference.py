"""An independent implementation of the p, p', u, u', c, g, t, mR and run charts as
qicharts2 0.8.1 computes them (written from its description in docs/spc.md: centre lines,
three- and two-sigma lines, clipping, Laney's screened sigma_z, the t chart's transform, the
g chart's median, and Anhoej's run analysis), to check bright's engine against.

Reads a JSON file of cases (each: chart, values, denominators, rebase flags, options, and
bright's results), recomputes every case and exits non-zero at the first disagreement,
naming the case, the row and the field. Numbers must agree to 1e-12 (relative for large
values); counts and flags exactly."""
import json
import math
import sys

SCREEN = 3.267
D2 = 1.128
T_POWER = 3.6


def present(x):
    return x is not None and not math.isnan(x)


def mean(xs):
    xs = [x for x in xs if present(x)]
    return math.fsum(xs) / len(xs) if xs else math.nan


def median(xs):
    xs = sorted(x for x in xs if present(x))
    if not xs:
        return math.nan
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def screened(ranges, no_screen):
    amr = mean(ranges)
    if no_screen:
        return amr
    return mean([r for r in ranges if present(r) and r < SCREEN * amr])


def steps(xs):
    """|x[i] - x[i-1]| for neighbours that are both present."""
    return [abs(b - a) for a, b in zip(xs, xs[1:]) if present(a) and present(b)]


def qbinom_05(n):
    """Smallest k with P(X <= k) >= 0.05 for X ~ Binomial(n, 1/2), in exact integers."""
    total, k, c = 0, 0, 1
    while True:
        total += c
        if 20 * total >= 2 ** n:
            return k
        k += 1
        c = c * (n - k + 1) // k


def runs(y, cl):
    sides = []
    for v in y:
        if present(v) and present(cl) and v != cl:
            sides.append(1 if v > cl else -1)
    n = len(sides)
    if n == 0:
        return {"useful": 0, "longest_run": None, "longest_run_limit": None,
                "crossings": None, "crossings_limit": None, "signal": False}
    lengths = [1]
    for a, b in zip(sides, sides[1:]):
        if a == b:
            lengths[-1] += 1
        else:
            lengths.append(1)
    longest = max(lengths)
    crossings = len(lengths) - 1
    run_limit = round(math.log2(n)) + 3
    cross_limit = qbinom_05(n - 1)
    return {"useful": n, "longest_run": longest, "longest_run_limit": run_limit,
            "crossings": crossings, "crossings_limit": cross_limit,
            "signal": longest > run_limit or crossings < cross_limit}


def lines(cl, sd):
    return [cl, cl - 3 * sd, cl + 3 * sd, cl - 2 * sd, cl + 2 * sd]


def floor0(ls):
    cl, lcl, ucl, lo, up = ls
    return [cl, 0.0 if lcl < 0 else lcl, ucl, 0.0 if lo < 0 else lo, up]


def cap1(ls):
    cl, lcl, ucl, lo, up = ls
    return [cl, lcl, 1.0 if ucl > 1 else ucl, lo, 1.0 if up > 1 else up]


def group(kind, y, den, base, no_screen):
    """(plotted values, per-point [centre, lcl, ucl, lower, upper], run analysis)."""
    n = len(y)
    nan5 = [math.nan] * 5
    if kind in ("p", "pp", "u", "up"):
        stat = [v / d if v is not None and d is not None and d > 0 else None for v, d in zip(y, den)]
        used = [i for i in range(base) if stat[i] is not None]
        cl = math.fsum(y[i] for i in used) / math.fsum(den[i] for i in used) if used else math.nan
        prop = kind in ("p", "pp")
        sd = [math.sqrt((cl * (1 - cl) if prop else cl) / d) if s is not None else math.nan
              for s, d in zip(stat, den)]
        sz = 1.0
        if kind in ("pp", "up"):
            z = []
            for i in range(base):
                if stat[i] is None:
                    z.append(None)
                else:
                    with_sd = sd[i]
                    z.append((stat[i] - cl) / with_sd if with_sd != 0 else math.nan)
            sz = screened(steps(z), no_screen) / D2
        out = []
        for s, d in zip(stat, sd):
            if s is None:
                out.append([cl] + nan5[1:])
                continue
            ls = floor0(lines(cl, d * sz))
            out.append(cap1(ls) if prop else ls)
        return stat, out, runs(stat, cl)
    if kind == "c":
        cl = mean(y[:base])
        return y, [floor0(lines(cl, math.sqrt(cl)))] * n, runs(y, cl)
    if kind == "g":
        m = mean(y[:base])
        ls = floor0(lines(m, math.sqrt(m * (m + 1))))
        ls[0] = median(y[:base])
        return y, [ls] * n, runs(y, ls[0])
    if kind == "t":
        ty = [v ** (1 / T_POWER) if v is not None else None for v in y]
        cl = mean(ty[:base])
        dev = [v - cl if v is not None else None for v in ty[:base]]
        sd = screened(steps(dev), no_screen) / D2

        def back(x):
            return math.nan if math.isnan(x) or x < 0 else x ** T_POWER
        c, lcl, ucl, lo, up = lines(cl, sd)
        lcl_b = back(lcl)
        ls = [back(c), 0.0 if math.isnan(lcl_b) else lcl_b, back(ucl), back(lo), back(up)]
        round_trip = [back(v) if v is not None else None for v in ty]
        return y, [ls] * n, runs(round_trip, ls[0])
    if kind == "mr":
        mr = [None] + [abs(b - a) if a is not None and b is not None else None for a, b in zip(y, y[1:])]
        cl = mean(mr[:base])
        ls = [cl, 0.0, SCREEN * cl, 0.0, (SCREEN / 3) * 2 * cl]
        r = runs(mr, cl)
        r["signal"] = False
        return mr, [ls] * n, r
    if kind == "run":
        cl = median(y[:base])
        return y, [[cl] + nan5[1:]] * n, runs(y, cl)
    raise ValueError(kind)


def chart(case):
    kind, y, rebase = case["chart"], case["values"], case["rebase"]
    den = case.get("denominators") or [None] * len(y)
    fix = case["options"].get("fix_after_n_points")
    no_screen = case["options"].get("no_screen_outliers", False)
    starts = [i for i in range(len(y)) if i == 0 or rebase[i]]
    points, groups = [], []
    for start, end in zip(starts, starts[1:] + [len(y)]):
        rows = end - start
        base = rows if fix is None else min(fix, rows)
        stat, ls, r = group(kind, y[start:end], den[start:end], base, no_screen)
        for v, (cl, lcl, ucl, lo, up) in zip(stat, ls):
            outside = present(v) and ((present(ucl) and v > ucl) or (present(lcl) and v < lcl))
            points.append({"value": v, "mean": cl, "lpl": lcl, "upl": ucl,
                           "lower_two_sigma": lo, "upper_two_sigma": up, "outside_limits": outside})
        groups.append(r)
    return points, groups


def same(a, b):
    a = None if a is None or (isinstance(a, float) and math.isnan(a)) else a
    b = None if b is None or (isinstance(b, float) and math.isnan(b)) else b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def main(path):
    cases = json.load(open(path))
    checked = 0
    for case in cases:
        points, groups = chart(case)
        got = case["bright"]
        name = case["name"]
        if len(got["points"]) != len(points) or len(got["groups"]) != len(groups):
            sys.exit(f"{name}: {len(got['points'])} points in {len(got['groups'])} groups != "
                     f"{len(points)} in {len(groups)}")
        for i, (ours, theirs) in enumerate(zip(points, got["points"])):
            for key, value in ours.items():
                if not same(value, theirs[key]):
                    sys.exit(f"{name} row {i}: {key} bright {theirs[key]} reference {value}")
            checked += 1
        for g, (ours, theirs) in enumerate(zip(groups, got["groups"])):
            for key, value in ours.items():
                if value != theirs[key]:
                    sys.exit(f"{name} group {g}: {key} bright {theirs[key]} reference {value}")
    print(f"{len(cases)} charts, {checked} points agree")


if __name__ == "__main__":
    main(sys.argv[1])
