"""Summarise the synthetic-data experiment (scripts/recipe.sh STAGE=synth_exp; docs/synthetic_data.md):
each BC arm's gym-pusht max coverage with its interval, the gap closed by synthetic episodes, the
bootstrap interval of each arm's difference to 100 real episodes, and a bar chart (Pillow).

    python scripts/synth_experiment.py runs/synth_exp --plot docs/synthetic_data.png
    python scripts/synth_experiment.py runs/synth_exp6 --seeds 0,1,2,3 --arms real10,syn90,real100

With --seeds, each arm's files are ARM_sSEED.json (one BC training seed each) and the arm pools
their episodes: per-seed means, then the pooled mean, difference and gap closed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ARMS = (("real10", "10 real"), ("syn10", "10 real + 10 synthetic"), ("syn50", "10 real + 50 synthetic"),
        ("syn90", "10 real + 90 synthetic"), ("real100", "100 real"))
# the 90 synthetic episodes in parts (hma train-bc --synthetic-frames; session 21): only with --arms
PART_ARMS = (("prompt", "10 real + syn. prompts"), ("first12", "10 real + syn. first 12"),
             ("imagined", "10 real + syn. imagined"))


def mean_ci(a, n_boot: int = 4000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of mean(a), episodes resampled."""
    rng = np.random.default_rng(seed)
    a = np.asarray(a)
    m = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1)
    return [float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))]


def diff_ci(a, b, n_boot: int = 4000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of mean(a) - mean(b), episodes resampled independently per arm."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a), np.asarray(b)
    d = a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1) - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1)
    return [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))]


def bars_png(rows: list[tuple[str, float, list[float]]], path: Path, w: int = 560, h: int = 320,
             title: str = "gym-pusht mean max coverage, 50 episodes (95% CI)") -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    top = max(hi for _, _, (lo, hi) in rows) * 1.15
    x0, y0, y1 = 50, 30, h - 70
    d.line([(x0, y0), (x0, y1), (w - 10, y1)], fill="black")
    d.text((5, 5), title, fill="black")
    for k in range(5):
        v = top * k / 4
        y = y1 - (y1 - y0) * v / top
        d.text((5, y - 6), f"{v:.3f}", fill="black")
    bw = (w - x0 - 20) / len(rows)
    for i, (label, m, (lo, hi)) in enumerate(rows):
        cx = x0 + bw * (i + 0.5)
        ym = y1 - (y1 - y0) * m / top
        d.rectangle([cx - bw * 0.3, ym, cx + bw * 0.3, y1], fill=(90, 130, 200) if "synthetic" in label else (120, 120, 120))
        yl, yh = (y1 - (y1 - y0) * v / top for v in (lo, hi))
        d.line([(cx, yl), (cx, yh)], fill="black", width=2)
        for j, part in enumerate(label.replace(" + ", " +\n").split("\n")):
            d.text((cx - bw * 0.45, y1 + 6 + 12 * j), part, fill="black")
    im.save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--plot")
    ap.add_argument("--seeds", help="comma-separated BC seeds: pool ARM_sSEED.json per arm")
    ap.add_argument("--arms", help="comma-separated arm keys, in the table's order (default: the five of Tab. 6; "
                    "also prompt, first12, imagined)")
    args = ap.parse_args()
    labels = dict(ARMS + PART_ARMS)
    keys = args.arms.split(",") if args.arms else [k for k, _ in ARMS]
    if unknown := [k for k in keys if k not in labels]:
        raise SystemExit(f"--arms {','.join(unknown)}: unknown; one of {', '.join(labels)}")
    arms = [(k, labels[k]) for k in keys]
    if args.seeds:
        return pooled(Path(args.folder), arms, args.seeds.split(","), args.plot)
    res = {k: json.loads((Path(args.folder) / f"{k}.json").read_text()) for k, _ in arms}
    raw = {k: r["max_coverage_raw"] for k, r in res.items()}
    gap = np.mean(raw["real100"]) - np.mean(raw["real10"])
    print("| training data | examples | gym-pusht max coverage [95% CI] | minus 100 real [95% CI] | gap closed |")
    print("|---|---|---|---|---|")
    rows = []
    for k, label in arms:
        m = res[k]["max_coverage"]
        closed = (np.mean(raw[k]) - np.mean(raw["real10"])) / gap if gap else float("nan")
        dci = diff_ci(raw[k], raw["real100"])
        print(f"| {label} | {res[k]['examples']} | {m['mean']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] | "
              f"{np.mean(raw[k]) - np.mean(raw['real100']):+.3f} [{dci[0]:+.3f}, {dci[1]:+.3f}] | {closed:.0%} |")
        rows.append((label, m["mean"], m["ci95"]))
    if args.plot:
        bars_png(rows, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def pooled(folder: Path, arms, seeds: list[str], plot: str | None) -> int:
    """Each arm's episodes pooled over BC training seeds (ARM_sSEED.json)."""
    raw, per_seed = {}, {}
    for k, _ in arms:
        runs = [json.loads((folder / f"{k}_s{s}.json").read_text())["max_coverage_raw"] for s in seeds]
        per_seed[k] = [float(np.mean(r)) for r in runs]
        raw[k] = [v for r in runs for v in r]
    gap = np.mean(raw["real100"]) - np.mean(raw["real10"])
    print(f"| training data | seeds {' / '.join(seeds)} | pooled, {len(raw['real10'])} episodes [95% CI] | "
          "minus 100 real [95% CI] | gap closed |")
    print("|---|---|---|---|---|")
    rows = []
    for k, label in arms:
        ci, dci = mean_ci(raw[k]), diff_ci(raw[k], raw["real100"])
        closed = (np.mean(raw[k]) - np.mean(raw["real10"])) / gap if gap else float("nan")
        print(f"| {label} | {' / '.join(f'{v:.3f}' for v in per_seed[k])} | {np.mean(raw[k]):.3f} "
              f"[{ci[0]:.3f}, {ci[1]:.3f}] | {np.mean(raw[k]) - np.mean(raw['real100']):+.3f} "
              f"[{dci[0]:+.3f}, {dci[1]:+.3f}] | {closed:.0%} |")
        rows.append((label, float(np.mean(raw[k])), ci))
    for k, label in arms:
        if k != "real10":
            d = diff_ci(raw[k], raw["real10"])
            print(f"{label} minus 10 real: {np.mean(raw[k]) - np.mean(raw['real10']):+.3f} [{d[0]:+.3f}, {d[1]:+.3f}]")
    if plot:
        bars_png(rows, Path(plot), title=f"gym-pusht mean max coverage, {len(seeds)} BC seeds x 50 episodes (95% CI)")
        print(f"wrote {plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
