"""How much of the reacher's next 2 Hz frame can the actions explain at all? (issue #13)

The world model sees the reacher through 2 Hz frames (the arm's two angles, no velocity) and
the 0.5 s torque chunks (25 commands at 50 Hz). This probe asks the question on the true state,
where there is no tokenizer or trunk to blame: it rolls gen-data's reacher policies (the same
mixture, physics only), and fits small MLPs that predict the fingertip's position at the next
2 Hz step from

  passive   the arm's angles in the last `--prompt` frames (what a passive video model sees);
  actions   the same + the torque chunks that led into them and the one leading into the next
            frame (what the action-conditioned model sees);
  state     the true angles and angular velocities now + the next chunk (an upper bound: the
            physics is deterministic, so only the fit limits it).

It prints each predictor's fingertip error in pixels of the 64x64 frame (median and the share
within 4 px, the agent threshold of `hma eval`), beside copying the last frame. If "actions"
is far below "passive", the frames and torques hold what the model needs; if it is close to
"passive" while "state" is far below both, the 2 Hz frames alias the arm's velocity and no
model of frames + torques can draw the arm's next pose: conditioning on the joint state is the
lever. Pure numpy/torch on top of dm_control; no model, no dataset.

    python scripts/reacher_observability.py --episodes 600 --seed 9
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

from hma_ros.data.rollout import policy_schedule
from hma_ros.data.sims import Policy, make_sim

STRIDE = 25  # 50 Hz commands per 2 Hz step (configs/embodiments/reacher.yaml)


def rollouts(episodes: int, seed: int, seconds: float):
    """Per episode: angles (N, 2) and velocities (N, 2) at each 2 Hz step, finger xy (N, 2),
    torque chunks (N-1, STRIDE, 2): chunk i leads from step i to step i + 1."""
    sim = make_sim("reacher")
    kinds = policy_schedule(episodes, seed)  # gen-data's default mixture
    rng = np.random.default_rng(seed)
    phys = sim.env.physics
    out = []
    for ep in range(episodes):
        policy = Policy(sim, kinds[ep], rng)
        sim.reset(seed * 100_003 + ep)
        n = int(round(seconds * 50)) // STRIDE
        q, v, f, a = [], [], [], []
        for _i in range(n + 1):
            q.append(np.array(phys.data.qpos[:2]))
            v.append(np.array(phys.data.qvel[:2]))
            f.append(np.array(phys.named.data.geom_xpos["finger"][:2]))
            if _i == n:
                break
            chunk = []
            for _ in range(STRIDE):
                u = policy()
                chunk.append(u)
                sim.step(u)
            a.append(np.array(chunk))
        out.append((np.array(q), np.array(v), np.array(f), np.array(a), kinds[ep]))
    sim.close()
    return out


def features(eps, prompt: int):
    """Windows: `prompt` frames, then the next one. Returns dict of inputs and the target."""
    P, A, S, Y, last, kind = [], [], [], [], [], []
    for q, v, f, a, k in eps:
        for t in range(prompt - 1, len(q) - 1):
            ang = q[t - prompt + 1: t + 1]  # (prompt, 2)
            P.append(np.concatenate([np.sin(ang).ravel(), np.cos(ang).ravel()]))
            # chunks leading into prompt frames 2..prompt and the one into the next frame
            A.append(a[t - prompt + 1: t + 1].ravel())
            S.append(np.concatenate([np.sin(q[t]), np.cos(q[t]), v[t], a[t].ravel()]))
            Y.append(f[t + 1])
            last.append(f[t])
            kind.append(k)
    P, A, S = (np.asarray(x, np.float32) for x in (P, A, S))
    return {"passive": P, "actions": np.concatenate([P, A], 1), "state": S}, np.asarray(Y, np.float32), \
        np.asarray(last, np.float32), np.asarray(kind)


def fit(x_tr, y_tr, x_te, epochs: int, seed: int) -> np.ndarray:
    """A 3-layer MLP (256 wide), Adam, MSE on standardized inputs; returns test predictions."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    xt = torch.from_numpy((x_tr - mu) / sd)
    xe = torch.from_numpy((x_te - mu) / sd)
    ym, ys = y_tr.mean(0), y_tr.std(0)
    yt = torch.from_numpy((y_tr - ym) / ys)
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, 256),
                              torch.nn.GELU(), torch.nn.Linear(256, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    steps = epochs * math.ceil(len(xt) / 256)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(256):
            loss = torch.nn.functional.mse_loss(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        return net(xe).numpy() * ys + ym


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--test-episodes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--prompt", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    tr = rollouts(args.episodes, args.seed, args.seconds)
    te = rollouts(args.test_episodes, args.seed + 1000, args.seconds)
    xtr, ytr, ltr, _ = features(tr, args.prompt)
    xte, yte, last, kind = features(te, args.prompt)
    # pixels per world unit: reacher.xml's camera "fixed" looks straight down from z = 0.75 with
    # MuJoCo's default 45-degree field of view; the arm moves in the plane z = 0.01
    px = 64 / (2 * (0.75 - 0.01) * math.tan(math.radians(22.5)))
    res = {"train_windows": len(ytr), "test_windows": len(yte), "px_per_unit": px}

    def report(name, pred):
        err = np.linalg.norm(pred - yte, axis=1) * px
        row = {"median_px": float(np.median(err)), "within4": float((err <= 4).mean()),
               "rmse_px": float(np.sqrt((err ** 2).mean()))}
        for k in sorted(set(kind)):
            row[f"within4_{k}"] = float((err[kind == k] <= 4).mean())
        res[name] = row
        print(f"{name:>10}: median {row['median_px']:5.2f} px, within 4 px {row['within4']:.3f}, RMSE "
              f"{row['rmse_px']:5.2f} px  " + "  ".join(f"{k} {row[f'within4_{k}']:.3f}" for k in sorted(set(kind))),
              flush=True)

    report("copy-last", last)
    for name in ("passive", "actions", "state"):
        # each predicts the fingertip's displacement from the newest frame (copy-last + a residual)
        report(name, last + fit(xtr[name], ytr - ltr, xte[name], args.epochs, args.seed))
    speed = np.concatenate([np.abs(v).ravel() for _, v, _, _, _ in te])
    res["median_abs_joint_speed_rad_s"] = float(np.median(speed))
    res["median_abs_angle_change_per_step_deg"] = float(np.degrees(np.median(np.abs(np.diff(
        np.concatenate([q for q, _, _, _, _ in te]), axis=0)))))
    print(f"median |joint speed| {res['median_abs_joint_speed_rad_s']:.2f} rad/s "
          f"({np.degrees(res['median_abs_joint_speed_rad_s']) * 0.5:.0f} deg per 2 Hz step at that speed)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
