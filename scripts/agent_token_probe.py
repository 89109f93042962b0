"""Where the PushT agent is lost: teacher-forced, one imagined step, on held-out windows.

For each window: the true past (P frames and their actions), the next frame's tokens all masked,
the true action leading into it. At the tokens under the agent's true next position (and only
there) the model's prediction replaces the true codes; every other token stays true; the frame
is decoded and the agent detector asked whether the agent is drawn within 4 px. Decodings:
greedy (each FSQ factor's argmax, what `hma eval` does; factor after factor with --factor-ar),
samples at temperature 1 (from the factor product, or factor after factor), and the true codes (the tokenizer's own ceiling). Also the per-factor and joint
accuracy at agent tokens vs the rest. This separates "the model does not know where the agent
goes" from "the greedy factor-wise decoding turns an uncertain agent token into background".

    python scripts/agent_token_probe.py --ckpt runs/hma_ap_control --data data/test/pusht --windows 48
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True, help="a PushT dataset with agent_x/agent_y state (hma gen-data)")
    ap.add_argument("--windows", type=int, default=48)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    from hma_ros.data.dataset import Dataset
    from hma_ros.evaluation.heldout import masked_step, pick_windows, window_tokens
    from hma_ros.evaluation.tracking import find_agent, pusht_project
    from hma_ros.runtime.world_model import WorldModel

    wm = WorldModel.load(args.ckpt, "pusht")
    ds = Dataset(args.data)
    keys = list(ds.meta["state_keys"])
    P, g, size = wm.dyn.cfg.prompt, wm.tok.cfg.grid, wm.image_size[0]
    gen = torch.Generator().manual_seed(args.seed)
    res = {k: [] for k in ("greedy", "sampled", "true_codes", "factor_acc_agent", "factor_acc_rest",
                           "joint_acc_agent", "joint_acc_rest")}
    for _ep, start in pick_windows(ds, P + 1, args.windows, args.seed, "all"):
        w = ds.window(start, P + 1)
        st = np.asarray(ds.arrays["state"][start + P])
        xy = pusht_project(st[[keys.index("agent_x"), keys.index("agent_y")]][None], size)[0]
        cell = size // g
        tok_idx = {int(min(g - 1, max(0, (xy[1] + dy) // cell)) * g + min(g - 1, max(0, (xy[0] + dx) // cell)))
                   for dx in (-2, 0, 2) for dy in (-2, 0, 2)}  # the token(s) the agent's disc touches
        agent = torch.zeros(g * g, dtype=torch.bool)
        agent[list(tok_idx)] = True
        with torch.no_grad():
            codes, inp = window_tokens(wm, w)  # codes (P+1, S, K)
            slot = masked_step(wm, codes, inp, P)  # slot P: K x (1, S, L_k)
            every = torch.arange(g * g)[None]
            truth = codes[P]
            # the model's own decoding (factor by factor when it has intra-token autoregression)
            greedy = wm.dyn.tokens.sample(slot, every, 0.0)[0]
            ok = greedy == truth
            res["factor_acc_agent"].append(float(ok[agent].float().mean()))
            res["factor_acc_rest"].append(float(ok[~agent].float().mean()))
            res["joint_acc_agent"].append(float(ok[agent].all(-1).float().mean()))
            res["joint_acc_rest"].append(float(ok[~agent].all(-1).float().mean()))

            def drawn(agent_codes, truth=truth, agent=agent, xy=xy):
                c = truth.clone()
                c[agent] = agent_codes[agent]
                frame = wm.tok.decode(c[None]).numpy()[0]
                present, centre = find_agent(frame[None])
                return bool(present[0]) and float(np.linalg.norm(centre[0] - xy)) <= size / 16

            res["greedy"].append(drawn(greedy))
            res["true_codes"].append(drawn(truth))
            hits = []
            for _ in range(args.samples):
                hits.append(drawn(wm.dyn.tokens.sample(slot, every, 1.0, gen)[0]))
            res["sampled"].append(float(np.mean(hits)))
    summary = {k: round(float(np.mean(v)), 3) for k, v in res.items()}
    summary["windows"] = len(res["greedy"])
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
