"""Steer the PushT agent around a circle for 100 steps, in the real simulator and in the world
model from the same start, and compare where each draws the agent (the model cards' steering
GIF and figures). Actions in, frames out: a learned simulator must move the agent where the
commands take it.

    python scripts/steer_pusht.py --ckpt models/hma_discrete_small --out models/hma_discrete_small/steer.gif

The start: a gym-pusht episode (--seed) held still for `prompt` steps (the agent's own position
as its PD target: a robot at rest), those real frames are the prompt; then 100 steps whose
chunks hold one target each, 16 targets per turn on a circle of radius 150 (of 512) around the
workspace centre. The model sees only the prompt frames and the action chunks; the agent is
found in both videos by its colour (hma_ros.evaluation.tracking, 100% within 1 px on real frames).
Prints JSON: share of imagined frames with the agent within 1/16 of the side of the truth,
median error, the path length of the agent in both.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from hma_ros.runtime import RENDER_MODES


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--radius", type=float, default=150.0)
    ap.add_argument("--per-turn", type=int, default=16)
    ap.add_argument("--render", default="residual", choices=RENDER_MODES)
    ap.add_argument("--mask-steps", type=int, default=2, help="MaskGIT unmasking steps per frame (M)")
    ap.add_argument("--out", default="out/steer.gif")
    args = ap.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from hma_ros.data.images import ImageSpec, write_video
    from hma_ros.data.sims import make_sim
    from hma_ros.evaluation.tracking import find_agent
    from hma_ros.runtime.world_model import WorldModel

    wm = WorldModel.load(args.ckpt, "pusht", render=args.render, mask_steps=args.mask_steps)
    spec = ImageSpec(size=wm.image_size)
    sim = make_sim("pusht")
    sim.reset(args.seed)
    stride, P = wm.stride, wm.dyn.cfg.prompt
    per_frame = int(round(sim.info.control_hz / 2))  # control steps per 2 Hz step
    truth, chunks = [], []

    def run_step(target):  # one 2 Hz step of the real simulator, the frame at its end
        chunk = []
        for _ in range(per_frame):
            a = sim.rest_action() if target is None else sim.clip(np.asarray(target, float))
            chunk.append(a)
            sim.step(a)
        idx = np.linspace(0, per_frame - 1, stride).round().astype(int)
        return spec.prepare(sim.render()), np.asarray(chunk)[idx]

    frame = spec.prepare(sim.render())
    wm.reset(0)
    wm.observe(frame)
    prompt = [frame]
    for _ in range(P - 1):  # at rest: the PD target is where the agent is
        frame, chunk = run_step(None)
        wm.observe(frame, chunk)
        prompt.append(frame)
    centre = np.array([256.0, 256.0])
    for k in range(args.steps):
        ang = 2 * np.pi * k / args.per_turn
        frame, chunk = run_step(centre + args.radius * np.array([np.cos(ang), np.sin(ang)]))
        truth.append(frame)
        chunks.append(chunk)
    sim.close()
    imagined = wm.imagine(np.asarray(chunks, np.float32))
    pt, ct = find_agent(np.stack(truth))
    pi, ci = find_agent(imagined)
    side = wm.image_size[1]
    err = np.where(pt & pi, np.linalg.norm(ci - ct, axis=-1), np.inf)
    path = lambda c, p: float(np.nansum(np.linalg.norm(np.diff(c[p], axis=0), axis=-1)))  # noqa: E731
    res = {"checkpoint": str(args.ckpt), "steps": args.steps, "render": args.render, "mask_steps": args.mask_steps,
           "agent_within_1_16": float(np.mean(err <= side / 16)), "agent_present": float(pi.mean()),
           "median_error_px": float(np.median(err)), "truth_path_px": path(ct, pt), "imagined_path_px": path(ci, pi)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pad = np.full((side, 2, 3), 255, np.uint8)
    tiles = [np.concatenate([a, pad, b], 1).repeat(3, 0).repeat(3, 1) for a, b in zip(truth, imagined, strict=True)]
    write_video(tiles, out, fps=4.0)
    res["gif"] = str(out) + " (left: the real simulator | right: imagined, 4 steps/s)"
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
