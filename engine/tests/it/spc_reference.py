"""An independent implementation of the Making Data Count XmR chart, written from the written
description of NHSRplotthedots 0.2.2 (docs/mdc-spc.md), to check bright's engine against.

Reads a JSON file of cases (each: values, rebase flags, options, and bright's results),
recomputes every case and exits non-zero at the first disagreement, naming the case, the row
and the field. Numbers must agree to 1e-12 (relative for large values); labels exactly."""
import json
import math
import sys

LIMIT = 2.66
CLOSE = 2 * (LIMIT / 3)
SCREEN = 3.267


def mean(xs):
    xs = [x for x in xs if x is not None]
    return math.fsum(xs) / len(xs) if xs else math.nan


def sign(x):
    return 1 if x > 0 else (-1 if x < 0 else 0)


def group_chart(y, opts):
    n = len(y)
    fix = opts.get("fix_after_n_points")
    base = [v if (fix is None or i < fix) else None for i, v in enumerate(y)]
    m = mean(base)
    mr = [None] + [abs(b - a) if a is not None and b is not None else None for a, b in zip(base, base[1:])]
    amr = mean(mr)
    if not opts.get("no_screen_outliers", False):
        mr = [r if r is not None and r < SCREEN * amr else None for r in mr]
        amr = mean(mr)
    lpl, upl = m - LIMIT * amr, m + LIMIT * amr
    nlpl, nupl = m - CLOSE * amr, m + CLOSE * amr
    known = not (math.isnan(lpl) or math.isnan(upl))
    outside = [None if v is None or not known else (v > upl or v < lpl) for v in y]
    rtm = [None if v is None or math.isnan(m) else sign(v - m) for v in y]
    close = [None if v is None or o is None else ((not o) and (v < nlpl or v > nupl)) for v, o in zip(y, outside)]

    trend_len = opts.get("trend_points", 7)
    shift_len = opts.get("shift_points", 7)

    def ends_trend(i):
        if i < trend_len - 1:
            return False
        w = y[i - trend_len + 1:i + 1]
        if any(v is None for v in w):
            return False  # a missing value breaks the trend (bright's choice where R errors)
        d = [b - a for a, b in zip(w, w[1:])]
        return all(s > 0 for s in d) or all(s < 0 for s in d)

    def ends_shift(i):
        if i < shift_len - 1:
            return False
        w = rtm[i - shift_len + 1:i + 1]
        return w[0] is not None and w[0] != 0 and all(r == w[0] for r in w)

    t_end = [ends_trend(i) for i in range(n)]
    s_end = [ends_shift(i) for i in range(n)]
    in_trend = [any(t_end[i:i + trend_len]) for i in range(n)]
    in_shift = [any(s_end[i:i + shift_len]) for i in range(n)]
    fired = [False] * n
    for j in range(n - 2):
        c = close[j:j + 3]
        r = rtm[j:j + 3]
        if None in c or None in r:
            continue
        if sum(1 for x in c if x) >= 2 and abs(sum(r)) == 3:
            for k in range(j, j + 3):
                fired[k] = True
    two = [fired[i] and close[i] is True for i in range(n)]

    labels = []
    for i in range(n):
        if outside[i] is True:
            labels.append("above_ucl" if rtm[i] == 1 else "below_lcl")
        elif in_trend[i]:
            if i + 1 < n and in_trend[i + 1]:
                s = sign(y[i + 1] - y[i])
            else:
                s = sign(y[i] - y[i - 1])
            labels.append("trend_increasing" if s == 1 else "trend_decreasing")
        elif two[i]:
            labels.append("two_in_three_above" if rtm[i] > 0 else "two_in_three_below")
        elif in_shift[i]:
            labels.append("shift_above" if rtm[i] == 1 else "shift_below")
        else:
            labels.append("common_cause")
    return m, lpl, upl, labels, n < 13


def point_type(label, direction):
    raw = 0 if label == "common_cause" else (1 if label.endswith(("above", "ucl", "increasing")) else -1)
    if raw == 0:
        return "common_cause"
    if direction == "neutral":
        return "special_cause_neutral_high" if raw == 1 else "special_cause_neutral_low"
    d = 1 if direction == "increase" else -1
    return "special_cause_improvement" if raw * d == 1 else "special_cause_concern"


def chart(case):
    y, rebase, opts = case["values"], case["rebase"], case["options"]
    direction = opts.get("improvement", "increase")
    points = []
    groups = []
    group = 0
    start = 0
    while start < len(y):
        group += 1 if rebase[start] else 0
        end = start + 1
        while end < len(y) and not rebase[end]:
            end += 1
        groups.append((group, start, end))
        start = end
    for g, s, e in groups:
        m, lpl, upl, labels, short = group_chart(y[s:e], opts)
        for k, label in enumerate(labels):
            points.append({
                "rebase_group": g, "mean": m, "lpl": lpl, "upl": upl,
                "special_cause_type": label, "point_type": point_type(label, direction),
                "short_group_warning": short,
            })
    variation = None
    assurance = None
    if points:
        pt = points[-1]["point_type"]
        variation = {
            "common_cause": "common_cause",
            "special_cause_improvement": "improvement_high" if direction != "decrease" else "improvement_low",
            "special_cause_concern": "concern_low" if direction != "decrease" else "concern_high",
            "special_cause_neutral_high": "neutral_high",
            "special_cause_neutral_low": "neutral_low",
        }[pt]
        target = opts.get("target")
        if target is not None and direction != "neutral":
            lpl, upl = points[-1]["lpl"], points[-1]["upl"]
            if target > upl:
                assurance = "fail" if direction == "increase" else "pass"
            elif target < lpl:
                assurance = "pass" if direction == "increase" else "fail"
            else:
                assurance = "inconsistent"
    return points, variation, assurance


def same(a, b):
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or math.isnan(a)) and (b is None or (isinstance(b, float) and math.isnan(b)))
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def main(path):
    cases = json.load(open(path))
    checked = 0
    for case in cases:
        points, variation, assurance = chart(case)
        got = case["bright"]
        name = case["name"]
        if got["variation_icon"] != variation or got["assurance_icon"] != assurance:
            sys.exit(f"{name}: icons {got['variation_icon']}/{got['assurance_icon']} != {variation}/{assurance}")
        if len(got["points"]) != len(points):
            sys.exit(f"{name}: {len(got['points'])} points != {len(points)}")
        for i, (ours, theirs) in enumerate(zip(points, got["points"])):
            for key in ("mean", "lpl", "upl"):
                if not same(ours[key], theirs[key]):
                    sys.exit(f"{name} row {i}: {key} bright {theirs[key]} reference {ours[key]}")
            for key in ("rebase_group", "special_cause_type", "point_type", "short_group_warning"):
                if ours[key] != theirs[key]:
                    sys.exit(f"{name} row {i}: {key} bright {theirs[key]} reference {ours[key]}")
            checked += 1
    print(f"{len(cases)} series, {checked} points agree")


if __name__ == "__main__":
    main(sys.argv[1])
