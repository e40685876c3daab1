"""Scaling law of translation data: fit per-language laws, allocate a data budget.

The paper (Eq. 2) says translation quality S of x-LLaMA grows predictably with the amount X
of en->X translation data, with two fitted parameters alpha, beta and a term gamma for the
similarity of English and language X. The exact form and the allocation procedure are NOT
published: both are RECONSTRUCTED here (see "Reconstructed parts" in docs/paper.md). Two forms:

    power:  S(X) = 100 - alpha * (gamma*X)^(-beta)     saturating power law on a 0-100 score
    log:    S(X) = alpha * log(gamma*X) + beta

gamma is given per language (--gamma de=0.8,...) or folded into alpha (gamma = 1).
Fitting is least squares in S with numpy only: the log form is linear (closed form); the
power form is linear in a = alpha*gamma^(-beta) for fixed beta, so a closed form for a sits
inside a one-dimensional search over beta (log grid, then golden section).

Allocation: maximise sum_l w_l S_l(X_l) subject to sum_l X_l = B, min <= X_l <= available_l.
Both forms are concave and increasing when alpha, beta > 0, so the optimum has equal
marginal gains w_l S_l'(X_l) = lambda (clipped at the bounds); lambda is found by bisection.
Integer sizes summing exactly to B come from rounding down and then unit moves between
languages until no move improves the sum (exact for separable concave objectives).

Commands:
    python scaling.py fit --points points.csv --form both --out runs/FITS.json
        points: CSV with header lang,size,score (or a JSON list of such objects)
    python scaling.py allocate --fits runs/FITS.json --budget 20000 --min 500 \
        --available runs/world --out runs/ALLOC.json
        --available: a data folder (counts parallel/en-<lang> pairs) or JSON {lang: n};
        ALLOC.json maps lang -> size, which `python train.py --allocation runs/ALLOC.json` reads
The points come from sweep.py (one x-LLaMA trained and scored per data size), or from anywhere.
The uniform split gives the remainder of B/L to the languages in the order given, as
mixture.translation_counts does, so `train.py --budget` and this file agree pair for pair.
Bad input (fewer than 3 points for a language, a non-positive size or budget, a budget outside
[sum of minimums, sum of available], a file that is not valid JSON, --out a folder, an unknown
--metric) exits with code 2 and one line naming the problem, before any training or writing.
An --out that exists is replaced, and the message says so.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import data
import mixture
from cli import Parser
from files import write_atomic

FORMS = ("power", "log")
METRICS = ("bleu", "chrf++", "spbleu")  # evaluate.py's Flores scores a sweep can fit
EXTRAPOLATION_FACTOR = 4.0  # warn when a size is this far outside the sizes a law was fitted on


@dataclass
class LawFit:
    """One fitted law S(X) for one language."""
    form: str                     # "power" or "log"
    alpha: float
    beta: float
    gamma: float = 1.0            # English-X similarity; 1.0 when folded into alpha
    r2: float | None = None       # coefficient of determination on the fitted points
    n: int = 0                    # number of points
    rmse: float = 0.0
    size_min: float = 0.0         # range of sizes seen, for extrapolation warnings
    size_max: float = 0.0
    residuals: list[float] = field(default_factory=list)

    def predict(self, x):
        x = np.asarray(x, dtype=float) * self.gamma
        if self.form == "power":
            return 100.0 - self.alpha * x ** (-self.beta)
        return self.alpha * np.log(x) + self.beta

    def unit_gain(self, x: float) -> float:
        """S(x+1) - S(x), computed without cancellation."""
        if self.form == "power":  # a*x^-b * (1 - (1+1/x)^-b) with a = alpha*gamma^-b
            a = self.alpha * self.gamma ** (-self.beta)
            return -a * x ** (-self.beta) * math.expm1(-self.beta * math.log1p(1.0 / x))
        return self.alpha * math.log1p(1.0 / x)

    def marginal(self, x):
        """dS/dX."""
        x = np.asarray(x, dtype=float)
        if self.form == "power":
            return self.alpha * self.beta * self.gamma ** (-self.beta) * x ** (-self.beta - 1.0)
        return self.alpha / x

    def inverse_marginal(self, lam: float) -> float:
        """The X where dS/dX = lam (lam > 0)."""
        if self.form == "power":
            return (self.alpha * self.beta * self.gamma ** (-self.beta) / lam) ** (1.0 / (self.beta + 1.0))
        return self.alpha / lam

    def extrapolation(self, x: float) -> str | None:
        if self.size_max and (x > EXTRAPOLATION_FACTOR * self.size_max or x < self.size_min / EXTRAPOLATION_FACTOR):
            return f"size {x:g} is far outside the fitted range [{self.size_min:g}, {self.size_max:g}]"
        return None

    def to_json(self) -> dict:
        d = asdict(self)
        return {"form": d.pop("form"), "params": {k: d.pop(k) for k in ("alpha", "beta", "gamma")}, **d}

    @classmethod
    def from_json(cls, d: dict, where: str = "FITS") -> "LawFit":
        try:
            p = d["params"]
            fit = cls(form=d["form"], alpha=float(p["alpha"]), beta=float(p["beta"]), gamma=float(p.get("gamma", 1.0)),
                      r2=d.get("r2"), n=int(d.get("n", 0)), rmse=float(d.get("rmse", 0.0)),
                      size_min=float(d.get("size_min", 0.0)), size_max=float(d.get("size_max", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: expected {{form, params: {{alpha, beta[, gamma]}}}}, got {d!r} ({e})") from None
        if fit.form not in FORMS:
            raise ValueError(f"{where}: form must be one of {FORMS}, got {fit.form!r}")
        return fit


# ----------------------------------------------------------------------------- fitting

def r_squared(y, yhat) -> float | None:
    """1 - SS_res / SS_tot; None when the scores are all equal (R^2 undefined)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return None if ss_tot == 0.0 else 1.0 - float(((y - yhat) ** 2).sum()) / ss_tot


def _check_points(sizes, scores, what="points"):
    x, y = np.asarray(sizes, float), np.asarray(scores, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{what}: sizes and scores must be 1-D and of equal length")
    if len(x) < 3:
        raise ValueError(f"{what}: {len(x)} points; a fit needs at least 3")
    if (x <= 0).any() or not np.isfinite(x).all():
        raise ValueError(f"{what}: sizes must be positive, got {x[(x <= 0) | ~np.isfinite(x)][0]:g}")
    if not np.isfinite(y).all():
        raise ValueError(f"{what}: scores must be finite numbers")
    if len(np.unique(x)) < 2:
        raise ValueError(f"{what}: need at least 2 distinct sizes")
    return x, y


def _finish(form, alpha, beta, gamma, x, y) -> LawFit:
    fit = LawFit(form, float(alpha), float(beta), float(gamma), n=len(x),
                 size_min=float(x.min()), size_max=float(x.max()))
    yhat = fit.predict(x)
    fit.residuals = [float(v) for v in y - yhat]
    fit.r2 = r_squared(y, yhat)
    fit.rmse = float(np.sqrt(np.mean((y - yhat) ** 2)))
    return fit


def fit_log(sizes, scores, gamma: float = 1.0, what="points") -> LawFit:
    """S = alpha*log(gamma X) + beta: ordinary least squares on log X (closed form)."""
    x, y = _check_points(sizes, scores, what)
    A = np.stack([np.log(x), np.ones_like(x)], axis=1)
    (alpha, c), *_ = np.linalg.lstsq(A, y, rcond=None)
    return _finish("log", alpha, c - alpha * math.log(gamma), gamma, x, y)


def fit_power(sizes, scores, gamma: float = 1.0, what="points", beta_range=(1e-4, 10.0)) -> LawFit:
    """S = 100 - alpha*(gamma X)^-beta. For fixed beta, 100 - S = a * X^-beta is linear in
    a = alpha*gamma^-beta, so a(beta) is closed form; beta minimises the residual sum of squares."""
    x, y = _check_points(sizes, scores, what)
    if y.max() >= 100.0:
        raise ValueError(f"{what}: the power law saturates at 100, so scores must be below 100 (got {y.max():g})")
    if y.max() <= 1.0:
        print(f"warning: {what}: all scores are <= 1; the power law expects a 0-100 scale (BLEU, chrF)", file=sys.stderr)
    gap = 100.0 - y
    lx = np.log(x / x.max())  # scaled so that u = (X/Xmax)^-beta stays >= 1 and finite

    def a_and_sse(beta):
        u = np.exp(-beta * lx)
        a = float(gap @ u / (u @ u))
        return a, float(((gap - a * u) ** 2).sum())

    grid = np.geomspace(*beta_range, 300)
    sse = np.array([a_and_sse(b)[1] for b in grid])
    k = int(sse.argmin())
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    g = (math.sqrt(5) - 1) / 2  # golden section on the bracket around the best grid point
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    fc, fd = a_and_sse(c)[1], a_and_sse(d)[1]
    for _ in range(200):
        if hi - lo <= 1e-14 * hi:
            break
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - g * (hi - lo); fc = a_and_sse(c)[1]
        else:
            lo, c, fc = c, d, fd
            d = lo + g * (hi - lo); fd = a_and_sse(d)[1]
    beta = (lo + hi) / 2
    a_scaled = a_and_sse(beta)[0]
    if k in (0, len(grid) - 1):
        print(f"warning: {what}: beta={beta:.4g} is at the edge of the search range {beta_range}; "
              "the power law does not describe these points well", file=sys.stderr)
    a = a_scaled * x.max() ** beta            # undo the X/Xmax scaling
    return _finish("power", a * gamma ** beta, beta, gamma, x, y)


def fit(sizes, scores, form: str, gamma: float = 1.0, what="points") -> LawFit:
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    return (fit_power if form == "power" else fit_log)(sizes, scores, gamma=gamma, what=what)


def read_points(path, min_points: int = 3) -> dict[str, tuple[list[float], list[float]]]:
    """CSV with header lang,size,score (or a JSON list of {lang,size,score}) -> {lang: (sizes, scores)}."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: points file not found")
    if path.suffix == ".json":
        rows = read_json(path, "--points")
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of {{lang, size, score}} objects")
        numbered = [(f"item {i}", r) for i, r in enumerate(rows)]
    else:
        reader = csv.DictReader(_read_text(path, "--points").splitlines())
        if reader.fieldnames is None or not {"lang", "size", "score"} <= set(reader.fieldnames):
            raise ValueError(f"{path} line 1: expected header lang,size,score, got {reader.fieldnames}")
        numbered = [(f"line {i + 2}", r) for i, r in enumerate(reader)]
    out: dict[str, tuple[list[float], list[float]]] = {}
    for where, r in numbered:
        try:
            lang, size, score = str(r["lang"]).strip(), float(r["size"]), float(r["score"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path} {where}: expected lang, numeric size and score, got {r!r}") from None
        if not size > 0:
            raise ValueError(f"{path} {where}: size must be positive, got {size:g}")
        out.setdefault(lang, ([], []))
        out[lang][0].append(size)
        out[lang][1].append(score)
    for lang, (xs, _) in out.items():
        if len(xs) < min_points:
            raise ValueError(f"{path}: language {lang!r} has {len(xs)} point(s); a fit needs at least 3")
    if not out:
        raise ValueError(f"{path}: no points")
    return out


def fit_forms(lang, sizes, scores, forms=FORMS, gamma=1.0, source="points") -> list[LawFit]:
    """Every form for one language, each printed with its parameters, R^2 and residuals."""
    cands = [fit(sizes, scores, f, gamma, what=f"{source}: {lang}") for f in forms]
    for c in cands:
        print(f"{lang:>4} {c.form:>5}: alpha={c.alpha:.6g} beta={c.beta:.6g} gamma={c.gamma:g} "
              f"R2={'n/a' if c.r2 is None else format(c.r2, '.4f')} rmse={c.rmse:.3f} n={c.n} "
              f"residuals=[{', '.join(f'{r:+.2f}' for r in c.residuals)}]")
        if c.alpha <= 0 or (c.form == "power" and c.beta <= 0):
            print(f"warning: {lang} {c.form}: the law is not increasing in X (alpha={c.alpha:.3g}, "
                  f"beta={c.beta:.3g}); allocation will refuse it", file=sys.stderr)
    return cands


def best_fit(cands: list[LawFit]) -> LawFit:
    return max(cands, key=lambda c: -math.inf if c.r2 is None else c.r2)


def fit_all(points, forms=FORMS, gammas=None, source="points") -> dict[str, LawFit]:
    """Fit every language; with several forms keep the best R^2 (all are printed)."""
    return {lang: best_fit(fit_forms(lang, xs, ys, forms, (gammas or {}).get(lang, 1.0), source))
            for lang, (xs, ys) in sorted(points.items())}


# ----------------------------------------------------------------------------- allocation

def _bounds(langs, budget, minimum, available):
    if budget != int(budget) or budget <= 0:
        raise ValueError(f"--budget must be a positive whole number, got {budget}")
    lo = {l: int(math.ceil(minimum.get(l, 1) if isinstance(minimum, dict) else minimum)) for l in langs}
    hi = {l: (int(available[l]) if available and l in available else None) for l in langs}
    for l in langs:
        if lo[l] <= 0:
            raise ValueError(f"--min: sizes must be positive (the laws are undefined at 0), got {lo[l]} for {l}")
        if hi[l] is not None and hi[l] < lo[l]:
            raise ValueError(f"--available: {l} has {hi[l]} pairs, below the minimum {lo[l]}")
    if budget < sum(lo.values()):
        raise ValueError(f"--budget {budget} is below the sum of minimums {sum(lo.values())} ({len(langs)} langs)")
    if all(h is not None for h in hi.values()) and budget > sum(hi.values()):
        raise ValueError(f"--budget {budget} is above the sum of available data {sum(hi.values())}")
    return lo, hi


def _water_level(f, budget, lo, hi, langs, lo_t, hi_t, decreasing):
    """Bisection on t (log scale) so that sum_l clip(f(l, t), lo_l, hi_l) = budget."""
    def total(t):
        return sum(min(max(f(l, t), lo[l]), math.inf if hi[l] is None else hi[l]) for l in langs)
    for _ in range(300):
        mid = math.sqrt(lo_t * hi_t)
        if (total(mid) > budget) == decreasing:
            lo_t = mid
        else:
            hi_t = mid
    t = math.sqrt(lo_t * hi_t)
    return {l: min(max(f(l, t), lo[l]), math.inf if hi[l] is None else hi[l]) for l in langs}


def _to_integers(x, budget, lo, hi, gain):
    """Round down, hand out the remainder by largest unit gain, then unit moves until none helps."""
    n = {l: min(max(int(math.floor(v)), lo[l]), v if hi[l] is None else hi[l]) for l, v in x.items()}
    n = {l: int(v) for l, v in n.items()}
    cap = lambda l: math.inf if hi[l] is None else hi[l]  # noqa: E731
    while sum(n.values()) < budget:
        l = max((l for l in n if n[l] < cap(l)), key=lambda l: gain(l, n[l]))
        n[l] += 1
    while sum(n.values()) > budget:
        l = min((l for l in n if n[l] > lo[l]), key=lambda l: gain(l, n[l] - 1))
        n[l] -= 1
    for _ in range(10 * len(n) + 1000):  # exchange: concave + separable -> no improving move = optimal
        up = [l for l in n if n[l] < cap(l)]
        down = [l for l in n if n[l] > lo[l]]
        if not up or not down:
            break
        i = max(up, key=lambda l: gain(l, n[l]))
        j = min((l for l in down if l != i), key=lambda l: gain(l, n[l] - 1), default=None)
        if j is None or gain(i, n[i]) <= gain(j, n[j] - 1) * (1 + 1e-12) + 1e-15:
            break
        n[i] += 1
        n[j] -= 1
    assert sum(n.values()) == budget
    return n


def objective(fits, sizes, weights=None) -> float:
    return float(sum((weights or {}).get(l, 1.0) * fits[l].predict(sizes[l]) for l in sizes))


def allocate(fits: dict[str, LawFit], budget: int, minimum=1, available=None, weights=None) -> dict[str, int]:
    """Integer sizes maximising sum_l w_l S_l(X_l) with sum X_l = budget and min <= X_l <= available."""
    langs = sorted(fits)
    w = {l: float((weights or {}).get(l, 1.0)) for l in langs}
    for l in langs:
        f = fits[l]
        if f.alpha <= 0 or (f.form == "power" and f.beta <= 0) or w[l] <= 0:
            raise ValueError(f"{l}: the law must be increasing (alpha, beta > 0) and its weight > 0 to allocate; "
                             f"got alpha={f.alpha:g} beta={f.beta:g} weight={w[l]:g}")
    lo, hi = _bounds(langs, budget, minimum, available)
    # equal marginal gains: X_l(lambda) = inverse of w_l S_l'; sum is decreasing in lambda
    lam_hi = max(w[l] * float(fits[l].marginal(lo[l])) for l in langs) * 2
    lam_lo = min(w[l] * float(fits[l].marginal(max(budget, 1))) for l in langs) / 2
    x = _water_level(lambda l, lam: fits[l].inverse_marginal(lam / w[l]), budget, lo, hi, langs,
                     lam_lo, lam_hi, decreasing=True)
    return _to_integers(x, budget, lo, hi, lambda l, v: w[l] * fits[l].unit_gain(v))


def uniform_split(langs, budget: int, minimum=1, available=None) -> dict[str, int]:
    """mixture.even_split, clipped to the bounds with the rest spread over the others (integers, sum = B)."""
    langs = list(langs)
    lo, hi = _bounds(langs, budget, minimum, available)
    even = mixture.even_split(langs, budget)
    if all(lo[l] <= n and (hi[l] is None or n <= hi[l]) for l, n in even.items()):
        return even
    pos = {l: i for i, l in enumerate(langs)}
    x = _water_level(lambda l, t: t, budget, lo, hi, langs, 1e-9, 2.0 * budget + 1, decreasing=False)
    n = {l: max(lo[l], int(math.floor(v + 1e-9))) for l, v in x.items()}
    while sum(n.values()) < budget:  # the remainder, one unit at a time to the smallest open share
        n[min((l for l in langs if hi[l] is None or n[l] < hi[l]), key=lambda l: (n[l], pos[l]))] += 1
    while sum(n.values()) > budget:
        n[max((l for l in langs if n[l] > lo[l]), key=lambda l: (n[l], pos[l]))] -= 1
    return n


def read_available(spec, langs) -> dict[str, int] | None:
    """--available: a data folder (counts parallel pairs per language) or JSON {lang: n}."""
    if spec is None:
        return None
    p = Path(spec)
    if p.is_dir():
        return {l: len(data.read_parallel(p, l)) for l in langs}
    if not p.is_file():
        raise ValueError(f"--available: {p} is neither a data folder nor a JSON file")
    d = read_json(p, "--available")
    if not isinstance(d, dict) or not all(isinstance(v, (int, float)) and v >= 0 for v in d.values()):
        raise ValueError(f"--available {p}: expected a JSON object {{lang: number of pairs}}")
    missing = [l for l in langs if l not in d]
    if missing:
        raise ValueError(f"--available {p}: no entry for {', '.join(missing)}")
    return {l: int(d[l]) for l in langs}


def allocation_table(fits, opt, uni, weights=None) -> str:
    rows = [f"{'lang':>4} {'form':>5} {'uniform':>9} {'S_uni':>7} {'optimal':>9} {'S_opt':>7} {'dS':>7}"]
    for l in sorted(opt):
        su, so = float(fits[l].predict(uni[l])), float(fits[l].predict(opt[l]))
        rows.append(f"{l:>4} {fits[l].form:>5} {uni[l]:>9d} {su:>7.2f} {opt[l]:>9d} {so:>7.2f} {so - su:>+7.2f}")
    ju, jo = objective(fits, uni, weights), objective(fits, opt, weights)
    rows.append(f"{'sum':>4} {'':>5} {sum(uni.values()):>9d} {ju:>7.2f} {sum(opt.values()):>9d} {jo:>7.2f} {jo - ju:>+7.2f}"
                + ("  (weighted)" if weights else ""))
    rows.append(f"predicted mean score: uniform {ju / len(opt):.3f} -> optimal {jo / len(opt):.3f} "
                f"(gain {(jo - ju) / len(opt):+.3f} per language)")
    return "\n".join(rows)


def write_json(path, obj) -> None:
    """Atomic write: a temp file in the same folder, then rename."""
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def check_out(path, flag: str = "--out") -> bool:
    """Refuse an output path that cannot take a JSON file (before any work); True when it exists
    and will be replaced, so the caller can say so."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; expected the path of a JSON file to write")
    blocker = next((d for d in path.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"{flag} {path}: {blocker} is a file, not a folder")
    return path.exists()


def _read_text(path: Path, flag: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark from a Windows editor is no error
    except UnicodeDecodeError as e:
        raise ValueError(f"{flag} {path}: not UTF-8 (byte {e.start})".lstrip()) from None


def read_json(path, flag: str = ""):
    """The JSON in `path`, or one line naming the flag, the file, and the line and column of what is wrong."""
    path = Path(path)
    try:
        return json.loads(_read_text(path, flag))
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} {path} line {e.lineno} column {e.colno}: not valid JSON ({e.msg})".lstrip()) from None


def read_fits(path) -> dict[str, LawFit]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--fits: {p} not found (make it with `python scaling.py fit ...`)")
    d = read_json(p, "--fits")
    if not isinstance(d, dict) or not d:
        raise ValueError(f"--fits {p}: expected a JSON object {{lang: fit}}")
    return {l: LawFit.from_json(v, where=f"{p}: {l}") for l, v in d.items()}


# ----------------------------------------------------------------------------- charts

def text_chart(sizes, scores, fits: list[LawFit], width: int = 60, height: int = 16) -> str:
    """Points (*) and fitted curves (first letter of the form) on a log-X grid."""
    x, y = np.asarray(sizes, float), np.asarray(scores, float)
    lo, hi = math.log(x.min() / 1.5), math.log(x.max() * 1.5)
    grid = np.exp(np.linspace(lo, hi, width))
    curves = [(f.form[0], f.predict(grid)) for f in fits]
    ys = np.concatenate([y] + [c for _, c in curves])
    ymin, ymax = float(ys.min()), float(ys.max())
    ymax = ymax if ymax > ymin else ymin + 1.0
    rows = [[" "] * width for _ in range(height)]
    put = lambda col, val, ch: rows[height - 1 - int(round((val - ymin) / (ymax - ymin) * (height - 1)))].__setitem__(col, ch)  # noqa: E731
    for ch, c in curves:
        for col, v in enumerate(c):
            put(col, v, ch)
    for xi, yi in zip(x, y):
        put(int(round((math.log(xi) - lo) / (hi - lo) * (width - 1))), yi, "*")
    lines = [f"{ymax:8.2f} |" + "".join(rows[0])] + [" " * 9 + "|" + "".join(r) for r in rows[1:-1]]
    lines += [f"{ymin:8.2f} |" + "".join(rows[-1]), " " * 9 + "+" + "-" * width,
              f"{'':9} {grid[0]:<10.0f}{'size (log scale)':^{width - 20}}{grid[-1]:>10.0f}",
              "  * measured   " + "   ".join(f"{f.form[0]} {f.form} law (R2 {'n/a' if f.r2 is None else round(f.r2, 3)})" for f in fits)]
    return "\n".join(lines)


def save_plot(lang, sizes, scores, fits: list[LawFit], out: Path) -> str:
    """PNG with matplotlib when installed, else the text chart in a .txt file; returns the path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = out.with_suffix(".txt")
        path.write_text(text_chart(sizes, scores, fits) + "\n", encoding="utf-8")
        return str(path)
    grid = np.geomspace(min(sizes) / 1.5, max(sizes) * 1.5, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(sizes, scores, color="k", label="measured", zorder=3)
    for f in fits:
        ax.plot(grid, f.predict(grid), label=f"{f.form} (R² {'n/a' if f.r2 is None else round(f.r2, 3)})")
    ax.set(xscale="log", xlabel="en-" + lang + " translation pairs", ylabel="score", title=f"scaling law, {lang}")
    ax.legend()
    fig.tight_layout()
    path = out.with_suffix(".png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


# ----------------------------------------------------------------------------- command line

def parse_lang_values(spec: str | None, flag: str) -> dict[str, float]:
    """'de=0.8,zh=0.5' -> {'de': 0.8, 'zh': 0.5}."""
    out = {}
    for part in filter(None, (spec or "").split(",")):
        lang, _, val = part.partition("=")
        try:
            out[lang.strip()] = float(val)
        except ValueError:
            raise ValueError(f"{flag}: expected lang=number[,lang=number...], got {part!r}") from None
        if not out[lang.strip()] > 0:
            raise ValueError(f"{flag}: values must be positive, got {part!r}")
    return out


def cmd_fit(args) -> None:
    replacing = check_out(args.out)
    points = read_points(args.points)
    forms = FORMS if args.form == "both" else (args.form,)
    fits = fit_all(points, forms, parse_lang_values(args.gamma, "--gamma"), source=str(args.points))
    write_json(args.out, {l: f.to_json() for l, f in fits.items()})
    print(f"{'replaced' if replacing else 'wrote'} {args.out} ({', '.join(f'{l}: {f.form}' for l, f in fits.items())})")


def cmd_allocate(args) -> None:
    replacing = check_out(args.out)
    fits = read_fits(args.fits)
    if args.langs:
        missing = [l for l in args.langs.split(",") if l not in fits]
        if missing:
            raise ValueError(f"--langs: no fit for {', '.join(missing)} in {args.fits}")
        fits = {l: fits[l] for l in args.langs.split(",")}
    weights = parse_lang_values(args.weights, "--weights") or None
    available = read_available(args.available, sorted(fits))
    opt = allocate(fits, args.budget, args.min, available, weights)
    uni = uniform_split(fits, args.budget, args.min, available)
    print(allocation_table(fits, opt, uni, weights))
    for l, n in opt.items():
        msg = fits[l].extrapolation(n)
        if msg:
            print(f"warning: {l}: {msg}; the predicted score is an extrapolation", file=sys.stderr)
    write_json(args.out, opt)
    print(f"{'replaced' if replacing else 'wrote'} {args.out}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="scaling.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit per-language laws to (lang, size, score) points")
    f.add_argument("--points", required=True, help="CSV with header lang,size,score, or a JSON list of such objects")
    f.add_argument("--form", choices=("power", "log", "both"), default="both",
                   help="law to fit; 'both' keeps the higher R^2 per language")
    f.add_argument("--gamma", default=None, help="English-X similarity per language, e.g. de=0.9,zh=0.5 (default: folded into alpha)")
    f.add_argument("--out", default="runs/FITS.json", help="where to write the fits")
    a = sub.add_parser("allocate", help="split a translation-data budget across languages")
    a.add_argument("--fits", required=True, help="FITS.json written by `scaling.py fit`")
    a.add_argument("--budget", type=int, required=True, help="total number of translation pairs")
    a.add_argument("--min", type=int, default=1, help="minimum pairs per language (> 0)")
    a.add_argument("--available", default=None,
                   help="upper bounds: a data folder (counts parallel/en-<lang>) or JSON {lang: n}")
    a.add_argument("--weights", default=None, help="weight per language in the objective, e.g. zh=2,hi=1")
    a.add_argument("--langs", default=None, help="comma-separated subset of the fitted languages")
    a.add_argument("--out", default="runs/ALLOC.json", help="where to write {lang: size}")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"fit": cmd_fit, "allocate": cmd_allocate}[args.cmd](args)
    except (ValueError, FileNotFoundError) as e:
        print(f"scaling.py {args.cmd}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
