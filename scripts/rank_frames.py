"""Score a policy-ranking run's frames again, offline, with other readers of coverage.

`hma policy-eval --rank ... --frames F.npz --json F.json` keeps every episode's 2 Hz frames, real and
imagined. This script reads them back and scores each episode's max coverage three ways:

- `judge`: the PushT judge's pose estimate -> gym-pusht's coverage (what --rank reports);
- `pixels`: the T's slate-grey pixels over the goal region (`tracking.goal_cover`; no learned part);
- `hybrid`: the judge on frames whose T is whole (area within +-40% of the first frame's, the rule of
  `ranking.t_intact`), the pixels on frames where it melted or vanished (the judge, trained on whole
  Ts, reads a pose into an empty table -- near the goal -- where the pixels read nothing);
- `shaped`: the judge on frames whose T is a whole T (`tracking.t_shape` >= `T_SHAPE_MIN`: its pixels
  match a rigid T as well as every real frame's do), nothing on the others;
- and, per model step, the mean of each over the policy's episodes (where the optimism builds), and
  the share of frames whose T is a whole T (real and imagined).

For each reader it prints the per-policy means (real frames, imagined frames) and the agreement of the
imagined means with gym-pusht's own coverage (the JSON's `real_sim`), so a judge bias on imagined frames
can be told apart from what the model drew.

    python scripts/rank_frames.py runs/s19/v7_s0 [runs/s19/v7_s1 ...] --judge models/pusht_judge
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hma_ros.evaluation.pusht_judge import load_judge  # noqa: E402
from hma_ros.evaluation.ranking import agreement, t_whole  # noqa: E402
from hma_ros.evaluation.tracking import T_SHAPE_MIN, goal_cover, t_shape  # noqa: E402


def readers(judge) -> dict:
    def by_judge(frames: np.ndarray) -> np.ndarray:
        e, s = frames.shape[:2]
        return judge.estimate(frames.reshape(-1, *frames.shape[2:]))["coverage"].reshape(e, s)

    def hybrid(frames: np.ndarray) -> np.ndarray:
        # the judge where the frame's T is whole (against the episode's first, real frame: the
        # rule of the ranking's "T intact"), the T's pixels on the goal where it is not
        return np.where(t_whole(frames, frames[:, :1]), by_judge(frames), goal_cover(frames))

    def shaped(frames: np.ndarray) -> np.ndarray:
        # the judge only where the frame's T is a whole T (tracking.t_shape >= T_SHAPE_MIN, a rule
        # fixed on real frames); a bent or melted T is no PushT state and scores nothing
        ok = (t_shape(frames.reshape(-1, *frames.shape[2:])) >= T_SHAPE_MIN).reshape(frames.shape[:2])
        return np.where(ok, by_judge(frames), 0.0)

    return {"judge": by_judge, "pixels": goal_cover, "hybrid": hybrid, "shaped": shaped}


def load_run(stem: str) -> tuple[dict, dict]:
    res = json.loads(Path(stem + ".json").read_text())
    z = np.load(stem + ".npz")
    frames = {}
    for key in z.files:
        policy, world = key.rsplit("/", 1)
        frames.setdefault(policy, {})[world] = z[key]
    return res, frames


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="path stems: STEM.json and STEM.npz from one --rank run each")
    p.add_argument("--judge", default="models/pusht_judge")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    judge = load_judge(args.judge)
    read = readers(judge)
    names, truth = None, None
    scores: dict = {r: {"real": None, "imagined": None, "curve_real": None, "curve_imagined": None} for r in read}
    whole: dict = {}  # (policy, world) -> [(episodes, steps + 1) bool]: is the frame's T a whole T
    for stem in args.runs:
        res, frames = load_run(stem)
        n = list(res["policies"])
        if names is None:
            names = n
        elif n != names:
            raise SystemExit(f"{stem}: policies {n}, the first run's {names}")
        t = np.array([res["episodes_raw"][k]["real_sim"] for k in names])
        truth = t if truth is None else np.concatenate([truth, t], 1)
        for k in names:
            for world in ("real", "imagined"):
                f = frames[k][world]
                ok = t_shape(f.reshape(-1, *f.shape[2:])).reshape(f.shape[:2]) >= T_SHAPE_MIN
                whole.setdefault((k, world), []).append(ok)
        for r, f in read.items():
            for world in ("real", "imagined"):
                cov = np.stack([f(frames[k][world]) for k in names])  # (policies, episodes, steps + 1)
                m = cov.max(-1)
                s = scores[r]
                s[world] = m if s[world] is None else np.concatenate([s[world], m], 1)
                c = cov.mean(1)
                s["curve_" + world] = c if s["curve_" + world] is None else s["curve_" + world] + c
    out = {"runs": args.runs, "policies": names, "real_sim": truth.mean(1).tolist(), "readers": {}}
    out["t_whole_per_step"] = {f"{k}/{w}": np.concatenate(v).mean(0).tolist() for (k, w), v in whole.items()}
    print("share of frames whose T is a whole T (tracking.t_shape >= T_SHAPE_MIN) per model step, real | imagined:")
    for k in names:
        cr, ci = (np.concatenate(whole[(k, w)]).mean(0) for w in ("real", "imagined"))
        print(f"  {k:24s} " + " ".join(f"{x:.2f}" for x in cr[::2]) + " | " + " ".join(f"{x:.2f}" for x in ci[::2]))
    print(f"{truth.shape[1]} episodes per policy; gym-pusht max coverage: "
          + ", ".join(f"{k} {v:.3f}" for k, v in zip(names, truth.mean(1), strict=True)))
    for r, s in scores.items():
        a = agreement(truth, s["imagined"])
        aj = agreement(truth, s["real"])
        out["readers"][r] = {"real": s["real"].mean(1).tolist(), "imagined": s["imagined"].mean(1).tolist(),
                             "learned_vs_real": a, "reader_on_real_vs_real": aj,
                             "curve_real": (s["curve_real"] / len(args.runs)).tolist(),
                             "curve_imagined": (s["curve_imagined"] / len(args.runs)).tolist()}
        print(f"\nreader: {r}")
        print("| policy | on real frames | on imagined frames |")
        print("|---|---|---|")
        for i, k in enumerate(names):
            print(f"| {k} | {s['real'][i].mean():.3f} | {s['imagined'][i].mean():.3f} |")
        print("imagined vs gym-pusht: " + ", ".join(f"{k} {v['value']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
                                                    for k, v in a.items()))
        print("on real frames vs gym-pusht: pearson " + f"{aj['pearson']['value']:.3f}")
        print("mean coverage per model step (real | imagined):")
        for i, k in enumerate(names):
            cr = s["curve_real"][i] / len(args.runs)
            ci = s["curve_imagined"][i] / len(args.runs)
            print(f"  {k:24s} " + " ".join(f"{x:.2f}" for x in cr[::2]) + " | " + " ".join(f"{x:.2f}" for x in ci[::2]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
