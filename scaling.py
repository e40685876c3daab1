"""scaling.py — the scaling law of translation data: fit per-language laws, allocate a budget.

The paper (Eq. 2) says translation quality S of x-LLaMA grows predictably with the amount X of
en->X translation data, with fitted alpha, beta and a term gamma for the similarity of English
and language X. Its exact form and the allocation are NOT published: both are RECONSTRUCTED here
(docs/paper.md, "Method"; docs/scaling-and-probe.md). Two forms:

    power:  S(X) = 100 - alpha * (gamma*X)^(-beta)     saturating power law on a 0-100 score
    log:    S(X) = alpha * log(gamma*X) + beta

gamma is given per language (--gamma de=0.8,...) or folded into alpha (gamma = 1). Least squares
in S with numpy only: the log form in closed form; the power form is linear in
a = alpha*gamma^(-beta) for fixed beta, so a closed form for a sits inside a one-dimensional
search over beta (log grid, then golden section).

Allocation (mixture.allocate): maximise sum_l w_l S_l(X_l) subject to sum_l X_l = B and
min <= X_l <= available_l. Both forms are concave and increasing when alpha, beta > 0, so the
optimum has equal marginal gains w_l S_l'(X_l), clipped at the bounds; it is printed beside the
uniform split of `train.py --budget`.

    python scaling.py fit --points points.csv --form both --out runs/FITS.json
    python scaling.py allocate --fits runs/FITS.json --budget 20000 --min 500 \
        --available runs/world --out runs/ALLOC.json
    python train.py --recipe muit --langs ar,hi,zh --allocation runs/ALLOC.json

Points: CSV lang,size,score (or a JSON list of such objects), e.g. from `python -m study.sweep`.
--available: a data folder (counts parallel/en-<lang> pairs) or JSON {lang: n}. Bad input exits 2
with one line naming it, before anything is written; `fit` never replaces its --points, and
`allocate` replaces an --out only when it holds an allocation (else --overwrite).
"""
from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import data
from mixture import allocate, objective, uniform_split
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
import plot
from cli import check_out, write_json

FORMS = ("power", "log")
METRICS = ("bleu", "chrf++", "spbleu")  # evaluate.py's Flores scores a sweep can fit
EXTRAPOLATION_FACTOR = 4.0  # warn when a size is this far outside the sizes a law was fitted on
# plot.py draws a fit (PNG or a text chart); these are the names study/reproduce.py calls
text_chart, save_plot = plot.law_chart, plot.plot_law


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
            a = self.alpha * self.beta * self.gamma ** (-self.beta)
            return a * x ** (-self.beta - 1.0)
        return self.alpha / x

    def inverse_marginal(self, lam: float) -> float:
        """The X where dS/dX = lam (lam > 0)."""
        if self.form == "power":
            a = self.alpha * self.beta * self.gamma ** (-self.beta)
            return (a / lam) ** (1.0 / (self.beta + 1.0))
        return self.alpha / lam

    def extrapolation(self, x: float) -> str | None:
        lo, hi = self.size_min, self.size_max
        if hi and (x > EXTRAPOLATION_FACTOR * hi or x < lo / EXTRAPOLATION_FACTOR):
            return f"size {x:g} is far outside the fitted range [{lo:g}, {hi:g}]"
        return None

    def to_json(self) -> dict:
        d = asdict(self)
        params = {k: d.pop(k) for k in ("alpha", "beta", "gamma")}
        return {"form": d.pop("form"), "params": params, **d}

    @classmethod
    def from_json(cls, d: dict, where: str = "FITS") -> "LawFit":
        try:
            p = d["params"]
            fit = cls(form=d["form"], alpha=float(p["alpha"]), beta=float(p["beta"]),
                      gamma=float(p.get("gamma", 1.0)), r2=d.get("r2"), n=int(d.get("n", 0)),
                      rmse=float(d.get("rmse", 0.0)), size_min=float(d.get("size_min", 0.0)),
                      size_max=float(d.get("size_max", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: expected {{form, params: {{alpha, beta[, gamma]}}}}, "
                             f"got {d!r} ({e})") from None
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
        bad = x[(x <= 0) | ~np.isfinite(x)][0]
        raise ValueError(f"{what}: sizes must be positive, got {bad:g}")
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


def fit_power(sizes, scores, gamma: float = 1.0, what="points",
              beta_range=(1e-4, 10.0)) -> LawFit:
    """S = 100 - alpha*(gamma X)^-beta. For fixed beta, 100 - S = a * X^-beta is linear in
    a = alpha*gamma^-beta, so a(beta) is closed form; beta minimises the residual sum of squares."""
    x, y = _check_points(sizes, scores, what)
    if y.max() >= 100.0:
        raise ValueError(f"{what}: the power law saturates at 100, so scores must be below 100 "
                         f"(got {y.max():g})")
    if y.max() <= 1.0:
        print(f"warning: {what}: all scores are <= 1; the power law expects a 0-100 scale "
              "(BLEU, chrF)", file=sys.stderr)
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
    """CSV with header lang,size,score (or a JSON list of {lang,size,score})
    -> {lang: (sizes, scores)}."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: points file not found")
    if path.suffix == ".json":
        rows = read_json(path, "--points")
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON list of {{lang, size, score}} objects")
        numbered = [(f"item {i}", r) for i, r in enumerate(rows)]
    else:
        text = data.read_text(path).removeprefix("\ufeff")  # a Windows editor's byte-order mark
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or not {"lang", "size", "score"} <= set(reader.fieldnames):
            raise ValueError(f"{path} line 1: expected header lang,size,score, "
                             f"got {reader.fieldnames}")
        numbered = [(f"line {i + 2}", r) for i, r in enumerate(reader)]
    out: dict[str, tuple[list[float], list[float]]] = {}
    for where, r in numbered:
        try:
            lang, size, score = str(r["lang"]).strip(), float(r["size"]), float(r["score"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path} {where}: expected lang, numeric size and score, "
                             f"got {r!r}") from None
        if not size > 0:
            raise ValueError(f"{path} {where}: size must be positive, got {size:g}")
        out.setdefault(lang, ([], []))
        out[lang][0].append(size)
        out[lang][1].append(score)
    for lang, (xs, _) in out.items():
        if len(xs) < min_points:
            raise ValueError(f"{path}: language {lang!r} has {len(xs)} point(s); a fit needs at "
                             "least 3")
    if not out:
        raise ValueError(f"{path}: no points")
    return out


def fit_forms(lang, sizes, scores, forms=FORMS, gamma=1.0, source="points") -> list[LawFit]:
    """Every form for one language, each printed with its parameters, R^2 and residuals."""
    cands = [fit(sizes, scores, f, gamma, what=f"{source}: {lang}") for f in forms]
    for c in cands:
        r2 = "n/a" if c.r2 is None else format(c.r2, ".4f")
        print(f"{lang:>4} {c.form:>5}: alpha={c.alpha:.6g} beta={c.beta:.6g} gamma={c.gamma:g} "
              f"R2={r2} rmse={c.rmse:.3f} n={c.n} "
              f"residuals=[{', '.join(f'{r:+.2f}' for r in c.residuals)}]")
        if c.alpha <= 0 or (c.form == "power" and c.beta <= 0):
            print(f"warning: {lang} {c.form}: the law is not increasing in X "
                  f"(alpha={c.alpha:.3g}, beta={c.beta:.3g}); allocation will refuse it",
                  file=sys.stderr)
    return cands


def best_fit(cands: list[LawFit]) -> LawFit:
    return max(cands, key=lambda c: -math.inf if c.r2 is None else c.r2)


def fit_all(points, forms=FORMS, gammas=None, source="points") -> dict[str, LawFit]:
    """Fit every language; with several forms keep the best R^2 (all are printed)."""
    return {lang: best_fit(fit_forms(lang, xs, ys, forms, (gammas or {}).get(lang, 1.0), source))
            for lang, (xs, ys) in sorted(points.items())}


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
    if not isinstance(d, dict) or not all(isinstance(v, (int, float)) and v >= 0
                                          for v in d.values()):
        raise ValueError(f"--available {p}: expected a JSON object {{lang: number of pairs}}")
    missing = [l for l in langs if l not in d]
    if missing:
        raise ValueError(f"--available {p}: no entry for {', '.join(missing)}")
    return {l: int(d[l]) for l in langs}


def allocation_table(fits, opt, uni, weights=None) -> str:
    """Per language: uniform and optimal sizes, their predicted scores and the gain."""
    def row(l, form, u, su, o, so):
        return f"{l:>4} {form:>5} {u:>9d} {su:>7.2f} {o:>9d} {so:>7.2f} {so - su:>+7.2f}"
    rows = [f"{'lang':>4} {'form':>5} {'uniform':>9} {'S_uni':>7} {'optimal':>9} {'S_opt':>7} "
            f"{'dS':>7}"]
    for l in sorted(opt):
        su, so = float(fits[l].predict(uni[l])), float(fits[l].predict(opt[l]))
        rows.append(row(l, fits[l].form, uni[l], su, opt[l], so))
    ju, jo = objective(fits, uni, weights), objective(fits, opt, weights)
    rows.append(row("sum", "", sum(uni.values()), ju, sum(opt.values()), jo)
                + ("  (weighted)" if weights else ""))
    rows.append(f"predicted mean score: uniform {ju / len(opt):.3f} -> optimal "
                f"{jo / len(opt):.3f} (gain {(jo - ju) / len(opt):+.3f} per language)")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- files

def is_allocation(path) -> bool:
    """Does `path` hold what `allocate` writes, a JSON object {lang: whole number >= 0}?"""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(d, dict) and bool(d) and all(
        l in data.LANGS and isinstance(n, int) and n >= 0 for l, n in d.items())


def read_json(path, flag: str = ""):
    """data.load_json (one line with the line and column of what is wrong), named by `flag`;
    a byte-order mark from a Windows editor is no error."""
    try:
        return data.load_json(Path(path))
    except data.DataError as e:
        raise UsageError(f"{flag} {e}".lstrip()) from None


def read_fits(path) -> dict[str, LawFit]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--fits: {p} not found (make it with `python scaling.py fit ...`)")
    d = read_json(p, "--fits")
    if not isinstance(d, dict) or not d:
        raise ValueError(f"--fits {p}: expected a JSON object {{lang: fit}}")
    return {l: LawFit.from_json(v, where=f"{p}: {l}") for l, v in d.items()}


# ----------------------------------------------------------------------------- command line

def parse_lang_values(spec: str | None, flag: str) -> dict[str, float]:
    """'de=0.8,zh=0.5' -> {'de': 0.8, 'zh': 0.5}."""
    out = {}
    for part in filter(None, (spec or "").split(",")):
        lang, _, val = part.partition("=")
        try:
            out[lang.strip()] = float(val)
        except ValueError:
            raise ValueError(f"{flag}: expected lang=number[,...], got {part!r}") from None
        if not out[lang.strip()] > 0:
            raise ValueError(f"{flag}: values must be positive, got {part!r}")
    return out


@dataclass
class FitConfig:
    points: str | None = opt(None, "CSV with header lang,size,score, or a JSON list of such "
                                   "objects", required=True)
    form: str = opt("both", "law to fit; 'both' keeps the higher R^2 per language",
                    choices=FORMS + ("both",))
    gamma: str | None = opt(None, "English-X similarity per language, e.g. de=0.9,zh=0.5 "
                                  "(default: folded into alpha)")
    out: str = opt("runs/FITS.json", "where to write the fits (never the --points file)")


@dataclass
class AllocateConfig:
    fits: str | None = opt(None, "FITS.json written by `scaling.py fit`", required=True)
    budget: int | None = opt(None, "total number of translation pairs", required=True)
    min: int = opt(1, "minimum pairs per language (> 0)")
    available: str | None = opt(None, "upper bounds: a data folder (counts parallel/en-<lang>) "
                                      "or JSON {lang: n}")
    weights: str | None = opt(None, "weight per language in the objective, e.g. zh=2,hi=1")
    langs: str | None = opt(None, "comma-separated subset of the fitted languages")
    out: str = opt("runs/ALLOC.json", "where to write {lang: size}")
    overwrite: bool = opt(False, "replace an --out that does not hold an allocation")


def cmd_fit(cfg: FitConfig) -> None:
    replacing = check_out(cfg.out, inputs=[("--points", cfg.points)])
    points = read_points(cfg.points)
    forms = FORMS if cfg.form == "both" else (cfg.form,)
    gammas = parse_lang_values(cfg.gamma, "--gamma")
    fits = fit_all(points, forms, gammas, source=str(cfg.points))
    write_json(cfg.out, {l: f.to_json() for l, f in fits.items()})
    chosen = ", ".join(f"{l}: {f.form}" for l, f in fits.items())
    print(f"{'replaced' if replacing else 'wrote'} {cfg.out} ({chosen})")


def cmd_allocate(cfg: AllocateConfig) -> None:
    replacing = check_out(cfg.out, inputs=[("--fits", cfg.fits), ("--available", cfg.available)])
    if replacing and not cfg.overwrite and not is_allocation(cfg.out):
        raise UsageError(f"--out {cfg.out} exists and is not an allocation; pass --overwrite to "
                         "replace it")
    fits = read_fits(cfg.fits)
    if cfg.langs:
        missing = [l for l in cfg.langs.split(",") if l not in fits]
        if missing:
            raise ValueError(f"--langs: no fit for {', '.join(missing)} in {cfg.fits}")
        fits = {l: fits[l] for l in cfg.langs.split(",")}
    weights = parse_lang_values(cfg.weights, "--weights") or None
    available = read_available(cfg.available, sorted(fits))
    best = allocate(fits, cfg.budget, cfg.min, available, weights)
    uni = uniform_split(fits, cfg.budget, cfg.min, available)
    print(allocation_table(fits, best, uni, weights))
    for l, n in best.items():
        msg = fits[l].extrapolation(n)
        if msg:
            print(f"warning: {l}: {msg}; the predicted score is an extrapolation", file=sys.stderr)
    write_json(cfg.out, best)
    print(f"{'replaced' if replacing else 'wrote'} {cfg.out}")


COMMANDS = {"fit": (FitConfig, cmd_fit, "fit per-language laws to (lang, size, score) points"),
            "allocate": (AllocateConfig, cmd_allocate,
                         "split a translation-data budget across languages")}


def build_parser() -> Parser:
    p = Parser(prog="scaling.py", doc=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, (config, _, help) in COMMANDS.items():
        add_config_flags(sub.add_parser(name, help=help, description=help), config)
    return p


def main(argv=None) -> int:
    """Exit 0, or 2 with one line naming the bad flag or input (nothing written)."""
    args = vars(build_parser().parse_args(argv))
    cmd = args.pop("cmd")
    config, run, _ = COMMANDS[cmd]
    cfg = config(**args)

    def body():
        check_config(cfg)
        run(cfg)
    return guard(f"scaling.py {cmd}", body, usage=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
