"""Why the PushT T melts where the agent touches it: one imagined step from true frames, at the T.

For each held-out window: the true past (P frames and their actions), the next frame's tokens all
masked, the true action leading into it -- the first step of `hma eval`, where the imagined T is
already worse than copying the last frame. The T tokens are those whose 8x8 patch holds T pixels
(hma_ros.evaluation.tracking.block_mask) in the newest or the next true frame. Per T token the
model's greedy code (what `hma eval` draws) is compared with the true next code and with the newest
frame's code; and the model's log-probability (sum over FSQ factors) of the true next code against
the newest frame's. Then the T alone is decoded three ways into the true frame (every other token
true): the model's greedy T tokens, the newest frame's T tokens (the T held still), the true ones
(the tokenizer's ceiling), each scored by T-mask IoU with the true next frame. Windows are split by
whether the agent touches the T in the next true frame (tracking.agent_contact).

With `--reveal F` a random share F of the T tokens whose code really changes is given (true codes)
and the rest are scored: if the model had learned what a moved T looks like, a few of its tokens
would pin the pose and the rest would follow (what drawing one token at a time relies on).

A model trained with `hma train --state-weight` also has a state head: its prediction of the T's
move in that step (block_x/y in PushT's 512-px units, block_angle in radians) is compared with the
true move (`head_xy_err` against `block_move`, the error of predicting no move; `head_angle_err`
against `still_angle_err`).

This separates "the model does not know the T moves" (greedy = the newest code where the truth
changed, and the true code less likely than the still one) from "it knows but draws something
else" (greedy = neither: a code that mixes factors of the two or of several outcomes). How far
the greedy code is from the true one in FSQ levels (`level_err`, mean over the changed tokens'
factors) stands beside how far the still code is (`level_still`), and beside how far a 2-pixel
shift moves a T token's code (scripts/token_locality.py: 1.1 levels): near the truth, or not.

    python scripts/contact_probe.py --ckpt models/hma_discrete_moves --data data/test/pusht --windows 240
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True, help="a PushT dataset with agent_x/agent_y state (hma gen-data)")
    ap.add_argument("--windows", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reveal", type=float, default=0.0,
                    help="give the model this share of the T tokens whose code changes (true codes, picked at "
                         "random): are the rest completed into the moved T? Scored on the tokens not given")
    args = ap.parse_args(argv)
    import torch

    from hma_ros.data.dataset import Dataset
    from hma_ros.evaluation.heldout import masked_step, pick_windows, window_tokens
    from hma_ros.evaluation.tracking import agent_contact, block_mask, mask_iou
    from hma_ros.runtime.world_model import WorldModel

    wm = WorldModel.load(args.ckpt, "pusht")
    if wm.dyn.continuous:
        raise SystemExit("contact_probe.py reads discrete codes and their log-probabilities; this is a MAR model")
    ds = Dataset(args.data)
    keys = list(ds.meta["state_keys"])
    P, g, size = wm.dyn.cfg.prompt, wm.tok.cfg.grid, wm.image_size[0]
    cell = size // g
    rows = {True: [], False: []}
    rng = np.random.default_rng(args.seed)
    head = wm.dyn.state_heads[wm.embodiment] if wm.embodiment in wm.dyn.state_heads else None
    for _ep, start in pick_windows(ds, P + 1, args.windows, args.seed, "all"):
        w = ds.window(start, P + 1)
        st = np.asarray(ds.arrays["state"][start + P])
        xy = st[[keys.index("agent_x"), keys.index("agent_y")]][None]
        touch = bool(agent_contact(w.frames[P:P + 1], xy)[0])
        t_pix = block_mask(w.frames[P - 1:P + 1]).any(0)  # T pixels in the newest or the next frame
        t_tok = torch.from_numpy(t_pix.reshape(g, cell, g, cell).any((1, 3)).reshape(-1))
        with torch.no_grad():
            codes, inp = window_tokens(wm, w)  # codes (P+1, S, K)
            truth, newest = codes[P], codes[P - 1]
            shown = torch.zeros(g * g, dtype=torch.bool)  # --reveal: true codes the model is given
            if args.reveal > 0:
                moved = torch.nonzero(t_tok & ~(truth == newest).all(-1))[:, 0]
                pick = rng.permutation(len(moved))[: int(round(args.reveal * len(moved)))]
                shown[moved[torch.as_tensor(pick, dtype=torch.long)]] = True
            # K x (1, S, L_k); the image-token features too, for the state head
            slot, img = masked_step(wm, codes, inp, P, given=shown, features=True)
            greedy = wm.dyn.tokens.sample(slot, torch.arange(g * g)[None], 0.0)[0]  # (S, K)
            greedy[shown] = truth[shown]
            logp = [torch.log_softmax(lg[0].float(), -1) for lg in slot]  # K x (S, L_k)

            def lp(c, logp=logp):  # (S,) log-probability of the codes c (S, K), factors independent
                return sum(lk.gather(-1, c[:, k:k + 1])[:, 0] for k, lk in enumerate(logp))

            lp_true, lp_still = lp(truth), lp(newest)

            def t_iou(t_codes, truth=truth, t_tok=t_tok, w=w):
                c = truth.clone()
                c[t_tok] = t_codes[t_tok]
                frame = wm.tok.decode(c[None]).numpy()
                return float(mask_iou(block_mask(frame), block_mask(w.frames[P:P + 1]))[0])

        changed = t_tok & ~(truth == newest).all(-1) & ~shown  # T tokens whose true code changed (and not given)
        same = (greedy == truth).all(-1)
        still = (greedy == newest).all(-1)
        r = {"t_tokens": int(t_tok.sum()), "changed": int(changed.sum()),
             "iou_model": t_iou(greedy), "iou_still": t_iou(newest), "iou_true": t_iou(truth)}
        if changed.any():
            r.update(right=float(same[changed].float().mean()),
                     still=float((still & ~same)[changed].float().mean()),
                     other=float((~same & ~still)[changed].float().mean()),
                     factor_acc=float((greedy == truth)[changed].float().mean()),
                     level_err=float((greedy - truth).abs()[changed].float().mean()),
                     level_still=float((newest - truth).abs()[changed].float().mean()),
                     true_more_likely=float((lp_true > lp_still)[changed].float().mean()),
                     p_true=float(lp_true[changed].exp().mean()), p_still=float(lp_still[changed].exp().mean()))
        unchanged = t_tok & ~changed & ~shown  # (tokens given are neither)
        if unchanged.any():
            r["unchanged_right"] = float(same[unchanged].float().mean())
        if head is not None:  # the training-only state head: does the trunk know where the T went?
            with torch.no_grad():
                pred = head(img.float())[0, 0] * head.std + head.mean  # raw change
            true = torch.from_numpy(np.asarray(ds.arrays["state"][start + P] - ds.arrays["state"][start + P - 1]))
            bx, by, ba = (keys.index(k) for k in ("block_x", "block_y", "block_angle"))
            r.update(block_move=float(true[[bx, by]].norm()), head_xy_err=float((pred - true)[[bx, by]].norm()),
                     head_angle_err=float((pred - true)[ba].abs()), still_angle_err=float(true[ba].abs()))
        rows[touch].append(r)

    def summary(rs):
        out = {"windows": len(rs)}
        for k in ("t_tokens", "changed", "iou_model", "iou_still", "iou_true", "right", "still", "other",
                  "factor_acc", "level_err", "level_still", "true_more_likely", "p_true", "p_still", "unchanged_right",
                  "block_move", "head_xy_err", "head_angle_err", "still_angle_err"):
            v = [r[k] for r in rs if k in r]
            out[k] = round(float(np.mean(v)), 3) if v else None
        return out

    print(json.dumps({"checkpoint": args.ckpt, "reveal": args.reveal, "touching": summary(rows[True]), "free": summary(rows[False])},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
