"""Pool `hma policy-eval --rank` runs of one checkpoint over different episode seeds into one
agreement figure: each policy's episodes concatenated (the starts differ between seeds, and each
is paired with itself in both worlds), then Pearson / Spearman / MMRV with bootstrap intervals,
as `hma policy-eval` computes them for one run (`evaluation.ranking.agreement`).

50 episodes per policy leave the ranking figures noisy: the same checkpoint on two sets of 50
starts (`--seed 0`, `--seed 1`) gave Pearson 0.939 and 0.741 (session 18). Pooling gives the
figure over 100+ starts.

    python scripts/pool_rank.py runs/rank/moves8_s0.json runs/rank/moves8_s1.json [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def pool(runs: list[dict]) -> dict:
    """The runs' per-policy episodes concatenated -> agreement and per-policy means."""
    from hma_ros.evaluation.ranking import agreement, mean_ci

    names = list(runs[0]["episodes_raw"])
    for r in runs[1:]:
        if list(r["episodes_raw"]) != names:
            raise SystemExit(f"the runs rank different policies: {names} vs {list(r['episodes_raw'])}")
    ckpts = sorted({r["checkpoint"] for r in runs})
    if len(ckpts) > 1:
        raise SystemExit(f"the runs rank different checkpoints ({', '.join(ckpts)}): pool runs of one model")
    seeds = [s for r in runs for s in r["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit("the runs share episode starts (the same --seed twice?): pooling would count them twice")
    raw = {n: {k: np.concatenate([r["episodes_raw"][n][k] for r in runs]) for k in ("real_sim", "learned_judge")}
           for n in names}
    real = np.stack([raw[n]["real_sim"] for n in names])
    sim = np.stack([raw[n]["learned_judge"] for n in names])
    return {"runs": len(runs), "episodes": int(real.shape[1]), "checkpoints": ckpts,
            "policies": {n: {k: mean_ci(v) for k, v in raw[n].items()} for n in names},
            "learned_vs_real": agreement(real, sim)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="rank JSON files (hma policy-eval --rank --json)")
    ap.add_argument("--json", help="write the pooled figures here")
    args = ap.parse_args(argv)
    out = pool([json.loads(open(p).read()) for p in args.runs])
    print(f"{out['episodes']} episodes per policy from {out['runs']} runs of {', '.join(out['checkpoints'])}")
    for n, p in out["policies"].items():
        r, s = p["real_sim"], p["learned_judge"]
        print(f"  {n:<24} gym-pusht {r['mean']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]   "
              f"learned {s['mean']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
    for k, v in out["learned_vs_real"].items():
        print(f"  {k}: {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
