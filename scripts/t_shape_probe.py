"""Is the imagined PushT T still a T? First imagined steps of recorded episodes, per sampler.

Each episode's first P frames (the model's prompt) are real; its recorded chunks are replayed
through the checkpoint for `--horizon` more steps (`hma synth`'s rollout). Per imagined step:
the share of frames whose T is a whole T (`tracking.t_shape` >= `T_SHAPE_MIN`, a rule every real
frame of data/bc passes), the mean T shape, and the T's mask IoU with the true frame's, beside
copying the newest real frame (a T held still) and the true frames themselves. One row per
sampler (`--mask-steps` x `--mask-order`): if only MaskGIT's parallel decoding bent the T,
drawing one token at a time (64 steps at 8x8 tokens) would straighten it. Then, per how far the
true T moved in the step (the IoU of its mask with the newest real frame's: >= 0.9 it stayed,
< 0.4 it moved about its own width or more): the share of whole Ts drawn and whether a whole T is
drawn where the T went or where it was.

    python scripts/t_shape_probe.py --ckpt models/hma_discrete_moves --data data/bc/pusht --skip 10 \\
        --episodes 90 --horizon 4 --mask-steps 2,16,64 --mask-order random,confidence
    python scripts/t_shape_probe.py --starts 0,8,16 --horizon 1      # more windows, mid-push too
    python scripts/t_shape_probe.py --synth data/bc_synthA/pusht     # an hma synth dataset, per step
    python scripts/t_shape_probe.py --compare A.json B.json          # B - A on the same windows, paired

Each JSON row keeps every window's first-step numbers (`first_step`: the true T's still-IoU, the
imagined T shape), so `--compare` can give the difference of two checkpoints' whole-T shares per
band of true motion with a paired bootstrap interval over windows (runs at the same --starts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hma_ros.evaluation.tracking import T_SHAPE_MIN, block_mask, mask_iou, t_shape  # noqa: E402


def synth_rows(path: str) -> dict:
    """An hma synth dataset: share of whole Ts and mean T shape per episode step."""
    from hma_ros.data.dataset import Dataset

    ds = Dataset(path)
    P = ds.meta.get("synthetic_from_step")
    if P is None:
        raise SystemExit(f"{path}: not written by hma synth (no synthetic_from_step)")
    n = min(length for _, length in ds.episodes)
    frames = np.stack([np.asarray(ds.arrays["frames"][a:a + n]) for a, _ in ds.episodes])  # (E, n, ...)
    shape = t_shape(frames.reshape(-1, *frames.shape[2:])).reshape(frames.shape[:2])
    return {"synth": path, "prompt_steps": P, "episodes": len(ds.episodes),
            "whole_per_step": (shape >= T_SHAPE_MIN).mean(0).round(3).tolist(),
            "shape_per_step": shape.mean(0).round(3).tolist(),
            "whole_imagined": float((shape[:, P:] >= T_SHAPE_MIN).mean())}


BANDS = ((0.9, 1.01), (0.7, 0.9), (0.4, 0.7), (0.0, 0.4))


def band_name(lo: float, hi: float) -> str:
    return f"true T still-IoU [{lo}, {min(hi, 1.0)}]"


def compare(a_path: str, b_path: str) -> dict:
    """B - A: the share of whole imagined Ts at the first step, per band of how far the true T moved,
    paired over the same windows (both probes' first rows), with a bootstrap interval."""
    from hma_ros.evaluation.ranking import mean_ci

    rows = []
    for path in (a_path, b_path):
        data = json.loads(Path(path).read_text())
        row = data[0] if isinstance(data, list) else data
        if "first_step" not in row:
            raise SystemExit(f"{path}: no per-window numbers (written before --compare existed); run the probe again")
        rows.append(row)
    still = [np.array(r["first_step"]["still_iou"]) for r in rows]
    if still[0].shape != still[1].shape or not np.allclose(still[0], still[1], atol=1e-3):
        raise SystemExit(f"{a_path} and {b_path} scored different windows (same --data, --skip, --episodes, --starts?)")
    whole = [np.array(r["first_step"]["shape"]) >= T_SHAPE_MIN for r in rows]
    out = {"a": rows[0]["ckpt"], "b": rows[1]["ckpt"], "windows": int(len(still[0])), "bands": {}}
    for lo, hi in BANDS:
        m = (still[0] >= lo) & (still[0] < hi)
        if not m.any():
            continue
        d = mean_ci(whole[1][m].astype(float) - whole[0][m].astype(float))
        out["bands"][band_name(lo, hi)] = {"windows": int(m.sum()), "a_whole": int(whole[0][m].sum()),
                                           "b_whole": int(whole[1][m].sum()), "b_minus_a": round(d["mean"], 4),
                                           "ci95": [round(v, 4) for v in d["ci95"]]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="models/hma_discrete_moves")
    ap.add_argument("--data", default="data/bc/pusht", help="a PushT dataset with recorded episodes")
    ap.add_argument("--skip", type=int, default=10, help="start at this episode (data/bc: 10, the synthetic ones')")
    ap.add_argument("--episodes", type=int, default=90)
    ap.add_argument("--horizon", type=int, default=4)
    ap.add_argument("--starts", default="0", help="window starts within each episode (steps), e.g. 0,8,16")
    ap.add_argument("--mask-steps", default="2")
    ap.add_argument("--mask-order", default="random")
    ap.add_argument("--synth", help="instead: score an hma synth dataset's frames per step")
    ap.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"),
                    help="instead: B - A from two --json files of this probe, paired over their windows")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.compare:
        print(json.dumps(compare(*args.compare), indent=1))
        return 0
    if args.synth:
        rows = [synth_rows(args.synth)]
        print(json.dumps(rows[0]))
    else:
        from hma_ros.data.dataset import Dataset
        from hma_ros.runtime.synth import rollout_episode
        from hma_ros.runtime.world_model import WorldModel

        ds = Dataset(args.data)
        eps = list(range(args.skip, len(ds.episodes)))[:args.episodes]
        rows = []
        for order in args.mask_order.split(","):
            for steps in (int(s) for s in args.mask_steps.split(",")):
                wm = WorldModel.load(args.ckpt, "pusht", mask_steps=steps, mask_order=order)
                P, H = wm.prompt, args.horizon
                shape, iou, copy_iou, true_shape, held = [], [], [], [], []
                t0 = time.time()
                for e in eps:
                    a, n = ds.episodes[e]
                    for start in (int(x) for x in args.starts.split(",")):
                        if start + P + H > n:
                            continue
                        w = ds.window(a + start, P + H)
                        real = np.asarray(w.frames)
                        imagined = rollout_episode(wm, real, w.actions, P, e)[P:]
                        shape.append(t_shape(imagined))
                        iou.append(mask_iou(block_mask(imagined), block_mask(real[P:])))
                        copy_iou.append(mask_iou(block_mask(real[P - 1])[None], block_mask(real[P:])))
                        held.append(mask_iou(block_mask(imagined), block_mask(real[P - 1])[None]))
                        true_shape.append(t_shape(real[P:]))
                shape, true_shape = np.array(shape), np.array(true_shape)
                still, whole = np.array(copy_iou)[:, 0], shape[:, 0] >= T_SHAPE_MIN  # the first imagined step
                at, where = np.array(iou)[:, 0], np.array(held)[:, 0]
                by_motion = {}
                for lo, hi in BANDS:
                    m = (still >= lo) & (still < hi)
                    by_motion[band_name(lo, hi)] = {
                        "windows": int(m.sum()), "whole": float(whole[m].mean()) if m.any() else None,
                        "whole_iou_with_truth": float(at[m & whole].mean()) if (m & whole).any() else None,
                        "whole_iou_with_newest": float(where[m & whole].mean()) if (m & whole).any() else None}
                row = {"ckpt": args.ckpt, "mask_steps": steps, "mask_order": order, "episodes": len(shape),
                       "whole_per_step": (shape >= T_SHAPE_MIN).mean(0).round(3).tolist(),
                       "shape_per_step": shape.mean(0).round(3).tolist(),
                       "t_iou_per_step": np.mean(iou, 0).round(3).tolist(),
                       "copy_last_t_iou_per_step": np.mean(copy_iou, 0).round(3).tolist(),
                       "true_whole_per_step": (true_shape >= T_SHAPE_MIN).mean(0).round(3).tolist(),
                       "first_step_by_true_motion": by_motion,
                       "first_step": {"still_iou": still.round(4).tolist(), "shape": shape[:, 0].round(4).tolist()},
                       "seconds": round(time.time() - t0, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
