"""Held-out evaluation of an HMA world model (the library behind `hma eval`).

Per embodiment, on held-out windows (prompt P steps, then imagine the rest with the true
actions): PSNR (mean over imagined frames and on the last), PSNR over moving pixels, SSIM,
teacher-forced perplexity and token accuracy, controllability dPSNR (true actions vs random
actions drawn from the action statistics, 5 trials, 95% bootstrap interval over episodes), the
tokenizer's reconstruction PSNR (the ceiling), the copy-last-frame baseline and comparison models
(a passive model, a model trained from scratch, any other as a control; paired intervals, the perplexity ratio of the
paper's Fig. 5a), and what moves (`tracking.py`: motion-mask IoU, PushT agent tracking, block IoU, T shape,
the reacher's arm F-score).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def pick_windows(ds, T: int, n: int, seed: int = 0, episodes: str = "val") -> list[tuple[int, int]]:
    """(episode, start) pairs, round-robin over episodes: from the validation episodes (`val`), the
    training episodes (`train`: the same split training uses, to measure overfitting) or all."""
    if episodes not in ("val", "train", "all"):
        raise ValueError(f"episodes {episodes!r}: use val, train or all")
    val = (ds.split(0.1, seed=0)[{"val": 1, "train": 0}[episodes]] if episodes != "all"
           else list(range(len(ds.episodes))))
    return windows_of(ds, T, n, val, seed)


def windows_of(ds, T: int, n: int, episode_ids, seed: int = 0) -> list[tuple[int, int]]:
    """n (episode, start) pairs of length-T windows from the episodes `episode_ids`, round-robin
    over them, each start drawn at random (seeded) without repeats."""
    per_ep = {e: ds.window_starts(T, [e]) for e in episode_ids}
    per_ep = {e: s for e, s in per_ep.items() if len(s)}
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n and any(len(s) for s in per_ep.values()):
        for e in list(per_ep):
            s = per_ep[e]
            if len(s) and len(out) < n:
                i = rng.integers(len(s))
                out.append((e, int(s[i])))
                per_ep[e] = np.delete(s, i)
    return out


def random_chunks(stats: dict, shape, rng) -> np.ndarray:
    """Random action chunks from the action statistics: Gaussian(mean, std) clipped to [min, max]."""
    mean, std = np.array(stats["mean"]), np.array(stats["std"])
    lo, hi = np.array(stats["min"]), np.array(stats["max"])
    return np.clip(rng.normal(mean, std, size=shape), lo, hi).astype(np.float32)


def evaluate(wm, ds, windows, P: int, trials: int, seed: int, arms: dict | None = None, gif_dir: Path | None = None,
             gifs: int = 0, learned: dict | None = None, progress=None) -> dict:
    """learned: optional {"lpips": LPIPS, "fid": FIDInception} (evaluation/learned.py) -- scored
    for the model and copy-last on the same imagined frames. progress: called with 1 after each
    window (e.g. a tqdm bar's update)."""
    import torch

    from hma_ros.evaluation.tracking import score_frames
    from hma_ros.model.metrics import bootstrap_ci, masked_psnr, psnr_np, ssim_np

    T = P + (wm.window - P)
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("psnr", "psnr_last", "psnr_moving", "ssim", "copy", "copy_last", "copy_moving",
                            "tok", "rand", "rand_last", "nll", "acc",
                            "act_mse", "act_mse_avg8", "mean_act_mse")}
    arms = arms or {}
    for label in arms:
        rows |= {label: [], f"{label}_last": [], f"{label}_moving": [], f"{label}_nll": []}
    stats = wm.config["embodiments"][wm.embodiment]["stats"]
    a_mean, a_std = np.array(stats["mean"]), np.array(stats["std"])
    episodes = []
    keys = list(ds.meta.get("state_keys", []))
    has_agent = "agent_x" in keys and "agent_y" in keys  # PushT: actuated-part tracking
    reacher_arm = (ds.meta.get("embodiment") or {}).get("sim") == "reacher"  # the reacher: its arm against the true one
    seen = {}  # learned metrics: imagined / copied / true frames per arm, for FID
    moves = {}  # "what moves" per arm (model, copy, tokenizer, other models): list of per-window dicts
    for wi, (ep, start) in enumerate(windows):
        w = ds.window(start, T)
        truth = w.frames[P:]

        def rollout(model, chunks, seed_offset=0, w=w, wi=wi):
            model.reset(seed + wi * 101 + seed_offset)
            for frame, chunk in w.steps(P):
                model.observe(frame, chunk)
            return model.imagine(chunks)

        pred = rollout(wm, w.actions[P - 1:T - 1])
        # act(): the next chunk after the prompt, vs the true one, in normalized units
        wm.reset(seed + wi * 101)
        for frame, chunk in w.steps(P):
            wm.observe(frame, chunk)
        if w.action_mask[P - 1].all():
            target = (w.actions[P - 1] - a_mean) / a_std
            rows["act_mse"].append(float(np.mean(((wm.act() - a_mean) / a_std - target) ** 2)))
            if wm.dyn.continuous:  # a diffusion head samples; the mean of 8 samples estimates the MSE-optimal chunk
                avg = wm.act(samples=8, temperature=1.0)
                rows["act_mse_avg8"].append(float(np.mean(((avg - a_mean) / a_std - target) ** 2)))
            rows["mean_act_mse"].append(float(np.mean(target**2)))
        copy = np.repeat(w.frames[P - 1:P], T - P, axis=0)
        prev = w.frames[P - 1:T - 1]
        agent = None
        if has_agent:
            st = np.asarray(ds.arrays["state"][start + P:start + T])
            agent = st[:, [keys.index("agent_x"), keys.index("agent_y")]]
        newest = w.frames[P - 1]
        moves.setdefault("model", []).append(score_frames(pred, truth, newest, agent, reacher_arm))
        if learned:
            for arm, frames in (("model", pred), ("copy_last", copy)):
                seen.setdefault(arm, []).append(frames)
                if "lpips" in learned:
                    rows.setdefault(f"lpips_{arm}", []).append(float(learned["lpips"](frames, truth).mean()))
            seen.setdefault("truth", []).append(truth)
        moves.setdefault("copy_last", []).append(score_frames(copy, truth, newest, agent, reacher_arm))
        p = psnr_np(pred, truth)
        rows["psnr"].append(p.mean())
        rows["psnr_last"].append(p[-1])
        rows["psnr_moving"].append(np.nanmean(masked_psnr(pred, truth, prev)))
        rows["ssim"].append(ssim_np(pred, truth).mean())
        c = psnr_np(copy, truth)
        rows["copy"].append(c.mean())
        rows["copy_last"].append(c[-1])
        rows["copy_moving"].append(np.nanmean(masked_psnr(copy, truth, prev)))
        with torch.no_grad():
            rec = wm.tok.decode(wm.tok.encode(torch.from_numpy(truth))).numpy()
        rows["tok"].append(psnr_np(rec, truth).mean())
        moves.setdefault("tokenizer", []).append(score_frames(rec, truth, newest, agent, reacher_arm))
        if agent is not None or reacher_arm:
            moves.setdefault("ground_truth", []).append(score_frames(truth, truth, newest, agent, reacher_arm))
        r_all, r_last = [], []
        for k in range(trials):
            rp = rollout(wm, random_chunks(wm.config["embodiments"][wm.embodiment]["stats"],
                                           (T - P, wm.stride, wm.action_dim), rng), seed_offset=k + 1)
            pr = psnr_np(rp, truth)
            r_all.append(pr.mean())
            r_last.append(pr[-1])
        rows["rand"].append(np.mean(r_all))
        rows["rand_last"].append(np.mean(r_last))
        for label, arm in arms.items():  # the other model(s), same windows, seeds and actions
            apred = rollout(arm, w.actions[P - 1:T - 1])
            ap = psnr_np(apred, truth)
            rows[label].append(ap.mean())
            rows[f"{label}_last"].append(ap[-1])
            rows[f"{label}_moving"].append(np.nanmean(masked_psnr(apred, truth, prev)))
            rows[f"{label}_nll"].append(teacher_forced(arm, w, P)[0])
            moves.setdefault(label, []).append(score_frames(apred, truth, newest, agent, reacher_arm))
        nll, acc = teacher_forced(wm, w, P)
        rows["nll"].append(nll)
        rows["acc"].append(acc)
        episodes.append(ep)
        if gif_dir is not None and wi < gifs:
            from hma_ros.data.images import write_video

            frames = [np.concatenate([g, i], axis=1) for g, i in zip(truth, pred, strict=True)]
            write_video(frames, gif_dir / f"{wm.embodiment}_{wi}.gif", fps=2.0)
        if progress is not None:
            progress(1)
    R = {k: np.array(v, dtype=np.float64) for k, v in rows.items() if v}
    eps = np.array(episodes)

    def per_episode(x):
        return np.array([np.nanmean(x[eps == e]) for e in np.unique(eps)])

    d_mean, d_last = R["psnr"] - R["rand"], R["psnr_last"] - R["rand_last"]
    out = {
        "windows": len(windows), "episodes": int(len(np.unique(eps))), "prompt": P, "imagined": T - P,
        "psnr": float(np.mean(R["psnr"])), "psnr_last": float(np.mean(R["psnr_last"])),
        "psnr_moving": float(np.nanmean(R["psnr_moving"])), "ssim": float(np.mean(R["ssim"])),
        "copy_last_frame_psnr": float(np.mean(R["copy"])), "copy_last_frame_psnr_last": float(np.mean(R["copy_last"])),
        "copy_last_frame_psnr_moving": float(np.nanmean(R["copy_moving"])),
        "tokenizer_psnr": float(np.mean(R["tok"])),
        "perplexity": float(np.exp(np.mean(R["nll"]))), "token_accuracy": float(np.mean(R["acc"])),
        "delta_psnr": float(np.mean(d_mean)), "delta_psnr_ci95": bootstrap_ci(per_episode(d_mean)),
        "delta_psnr_last": float(np.mean(d_last)), "delta_psnr_last_ci95": bootstrap_ci(per_episode(d_last)),
    }
    out["moves"] = summarize_moves(moves, eps)
    if learned:
        out["learned"] = learned_summary(learned, R, seen, per_episode)
    for k in ("perplexity", "token_accuracy"):  # no categorical distribution over soft tokens: null, not NaN
        if out[k] != out[k]:
            out[k] = None
    if "act_mse" in R:
        out["action_mse"] = float(np.mean(R["act_mse"]))
        out["mean_action_mse"] = float(np.mean(R["mean_act_mse"]))
        if "act_mse_avg8" in R:
            out["action_mse_avg8"] = float(np.mean(R["act_mse_avg8"]))
    for label in arms:
        out[f"{label}_psnr"] = float(np.mean(R[label]))
        out[f"{label}_psnr_last"] = float(np.mean(R[f"{label}_last"]))
        out[f"vs_{label}_ci95"] = bootstrap_ci(per_episode(R["psnr"] - R[label]))
        out[f"{label}_psnr_moving"] = float(np.nanmean(R[f"{label}_moving"]))
        out[f"vs_{label}_moving_ci95"] = bootstrap_ci(per_episode(R["psnr_moving"] - R[f"{label}_moving"]))
        ppl = float(np.exp(np.mean(R[f"{label}_nll"])))
        out[f"{label}_perplexity"] = None if ppl != ppl else ppl
        if ppl == ppl and out["perplexity"] is not None:  # the paper's fidelity metric (Fig. 5a, Tab. 3/4)
            gap = R[f"{label}_nll"] - R["nll"]  # nats per token; > 0: the other model is more perplexed
            out[f"{label}_ppl_ratio"] = float(np.exp(np.mean(gap)))
            out[f"{label}_ppl_ratio_ci95"] = [float(np.exp(v)) for v in bootstrap_ci(per_episode(gap))]
    return out


def learned_summary(learned: dict, R: dict, seen: dict, per_episode) -> dict:
    """LPIPS (mean over imagined frames, model - copy-last paired interval) and FID of all
    imagined frames against all true ones (one figure per arm: FID is a set statistic)."""
    from hma_ros.evaluation.learned import frechet_distance
    from hma_ros.model.metrics import bootstrap_ci

    res = {}
    if "lpips" in learned:
        res["lpips"] = float(np.mean(R["lpips_model"]))
        res["copy_last_lpips"] = float(np.mean(R["lpips_copy_last"]))
        res["lpips_vs_copy_last_ci95"] = bootstrap_ci(per_episode(R["lpips_model"] - R["lpips_copy_last"]))
    if "fid" in learned:
        real = learned["fid"](np.concatenate(seen["truth"])).numpy()
        res["frames"] = int(len(real))
        for arm in ("model", "copy_last"):
            res["fid" if arm == "model" else "copy_last_fid"] = frechet_distance(
                learned["fid"](np.concatenate(seen[arm])).numpy(), real)
    return res


def format_learned_table(results: dict) -> str:
    """LPIPS / FID per embodiment beside copy-last, when `hma eval --lpips/--fid` gave weights."""
    lines = ["| embodiment | LPIPS | copy-last LPIPS | model - copy [95% CI] | FID | copy-last FID | frames |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = r.get("learned")
        if not m:
            continue

        def f(k, fmt="{:.4f}", m=m):
            return fmt.format(m[k]) if k in m else "-"
        ci = m.get("lpips_vs_copy_last_ci95")
        ci_s = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "-"
        lines.append(f"| {name} | {f('lpips')} | {f('copy_last_lpips')} | {ci_s} | {f('fid', '{:.2f}')} | "
                     f"{f('copy_last_fid', '{:.2f}')} | {m.get('frames', '-')} |")
    return "\n".join(lines)


def summarize_moves(moves: dict, eps: np.ndarray) -> dict:
    """Per arm and metric: the mean over all imagined frames with a 95% interval (bootstrap over
    episodes), the value per horizon, and -- for the model -- its paired difference to each other
    arm. agent_err is summarized by its median (absent agents count as infinitely far)."""
    from hma_ros.model.metrics import bootstrap_ci

    def pooled_ci(x):  # x (windows, ...): the interval of the mean over all its finite frames
        ep = [x[eps == e] for e in np.unique(eps)]
        counts = np.array([np.isfinite(v).sum() for v in ep])
        means = np.array([np.nanmean(v) if c else np.nan for v, c in zip(ep, counts, strict=True)])
        return bootstrap_ci(means, weights=counts)

    out = {}
    for arm, rows in moves.items():
        res = {}
        for metric in rows[0]:
            m = np.stack([r[metric] for r in rows])  # (windows, K)
            if metric == "agent_err":
                res["agent_err_median"] = float(np.median(m))
                res["agent_err_median_per_horizon"] = [float(v) for v in np.median(m, axis=0)]
                continue
            with np.errstate(all="ignore"), warnings.catch_warnings():  # all-NaN rows (no contact frame): NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                res[metric] = float(np.nanmean(m))
                res[f"{metric}_ci95"] = pooled_ci(m)
                res[f"{metric}_per_horizon"] = [float(v) for v in np.nanmean(m, axis=0)]
                res[f"{metric}_first_ci95"] = pooled_ci(m[:, 0])  # the first imagined step's
        out[arm] = res
    if "model" in moves:  # paired: model minus each other arm, same windows
        for arm in moves:
            if arm in ("model", "ground_truth", "tokenizer"):
                continue
            for metric in ("motion_iou", "agent_within", "block_iou", "t_shape", "goal_bias", "arm_f", "arm_f_moved"):
                if metric not in moves["model"][0]:
                    continue
                a = np.stack([r[metric] for r in moves["model"]])
                b = np.stack([r[metric] for r in moves[arm]])
                d = np.where(np.isnan(a) | np.isnan(b), np.nan, a - b)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out["model"][f"{metric}_vs_{arm}"] = float(np.nanmean(d))
                    out["model"][f"{metric}_vs_{arm}_ci95"] = pooled_ci(d)
    return out


def window_tokens(wm, w):
    """A window's frames as codes (T, S, K) and the stem's inputs (1, T, ...), slot t holding the
    action chunk that led into frame t (the first slot a start), as in training."""
    import torch

    codes = wm.tok.encode(torch.from_numpy(w.frames))
    acts = wm.stem.normalize(torch.from_numpy(w.actions))  # chunk t follows frame t
    return codes, torch.cat([torch.zeros_like(acts[:1]), acts[:-1]])[None]


def masked_step(wm, codes, inp, t: int, given=None, features: bool = False):
    """The token head's output for frame t of a window (`window_tokens`), every token of it masked
    (but those `given`, (S,) bool, which keep their true codes), given the true frames and actions
    before it: slot t is the newest. What `teacher_forced` scores and scripts/agent_token_probe.py,
    contact_probe.py and state_probe.py read. With `features`, also that slot's image-token trunk
    output (1, 1, S, D) (what a StateHead reads)."""
    import torch

    masked = torch.zeros(1, t + 1, wm.dyn.cfg.tokens_per_frame, dtype=torch.bool)
    masked[0, t] = True if given is None else ~given
    out = wm.dyn(wm.embodiment, codes[None, :t + 1], masked, inp[:, :t + 1], None, features=features)
    slot = wm.dyn.tokens.newest(out[0])
    return (slot, out[3][:, t:t + 1]) if features else slot


def teacher_forced(wm, w, P: int) -> tuple[float, float]:
    """Mean NLL (nats, summed over FSQ factors) and exact-token accuracy of each target frame
    predicted in one pass with all its tokens masked, given the true past of its window (the
    window's first slot a start, as in training and in WorldModel's context)."""
    import torch

    dyn = wm.dyn
    if dyn.continuous:
        return float("nan"), float("nan")  # no categorical distribution over soft tokens
    with torch.no_grad(), wm.autocast():  # the world model's precision (its trunk may hold bf16 weights)
        codes, inp = window_tokens(wm, w)
        nll, acc = [], []
        for t in range(P, w.frames.shape[0]):
            lp, pred = dyn.tokens.nll(masked_step(wm, codes, inp, t), codes[None, t])
            nll.append(float(lp.mean()))
            acc.append(float((pred[0] == codes[t]).all(-1).float().mean()))
    return float(np.mean(nll)), float(np.mean(acc))


def _num(v: float, fmt: str) -> str:
    """A table cell; '-' where a metric does not apply (perplexity of continuous tokens)."""
    return "-" if v is None or v != v else format(v, fmt)


def _ci(v: float, ci, fmt: str = "+.2f") -> str:
    """A value with its interval: '+0.39 [+0.30, +0.47]'."""
    lo, hi = ci if ci is not None else (float("nan"),) * 2
    return f"{_num(v, fmt)} [{_num(lo, fmt)}, {_num(hi, fmt)}]"


ARMS = ("passive", "scratch", "control")  # comparison models: --passive, --scratch, --control


def format_table(results: dict) -> str:
    nan = float("nan")
    arms = [a for a in ARMS if any(f"{a}_psnr" in r for r in results.values())]
    head = ["embodiment", "PSNR", "PSNR last", "copy-last", "copy-last (last)"]
    for a in arms:
        head += [a, f"{a} (last)", f"vs {a} [95% CI]"]
    head += ["PSNR moving", "copy moving"]
    for a in arms:
        head += [f"{a} moving", f"vs {a} moving [95% CI]"]
    head += ["SSIM", "dPSNR [95% CI]", "dPSNR last [95% CI]", "tokenizer", "ppl"]
    for a in arms:
        head += [f"{a} ppl", f"{a} ppl / ppl [95% CI]"]
    head += ["tok acc", "act() MSE", "mean-action MSE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def diff(r, key, other, ci):
        return _ci(r[key] - r.get(other, nan), r.get(ci))

    for name, r in results.items():
        cells = [name, f"{r['psnr']:.2f}", f"{r['psnr_last']:.2f}", f"{r['copy_last_frame_psnr']:.2f}",
                 f"{r['copy_last_frame_psnr_last']:.2f}"]
        for a in arms:
            cells += [f"{r.get(f'{a}_psnr', nan):.2f}", f"{r.get(f'{a}_psnr_last', nan):.2f}",
                      diff(r, "psnr", f"{a}_psnr", f"vs_{a}_ci95")]
        cells += [f"{r['psnr_moving']:.2f}", f"{r['copy_last_frame_psnr_moving']:.2f}"]
        for a in arms:
            cells += [f"{r.get(f'{a}_psnr_moving', nan):.2f}",
                      diff(r, "psnr_moving", f"{a}_psnr_moving", f"vs_{a}_moving_ci95")]
        cells += [f"{r['ssim']:.3f}", _ci(r["delta_psnr"], r["delta_psnr_ci95"]),
                  _ci(r["delta_psnr_last"], r["delta_psnr_last_ci95"]),
                  f"{r['tokenizer_psnr']:.2f}", _num(r["perplexity"], ".1f")]
        for a in arms:
            cells += [_num(r.get(f"{a}_perplexity"), ".1f"),
                      _ci(r.get(f"{a}_ppl_ratio"), r.get(f"{a}_ppl_ratio_ci95"), ".2f")]
        cells += [_num(r["token_accuracy"], ".3f"),
                  f"{r.get('action_mse', nan):.3f}"
                  + (f" (mean of 8: {r['action_mse_avg8']:.3f})" if "action_mse_avg8" in r else ""),
                  f"{r.get('mean_action_mse', nan):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_moves_table(results: dict) -> str:
    """What moves: motion-mask IoU for every embodiment; PushT agent tracking and block IoU; the
    reacher's arm F-score."""
    arms = [a for a in ("copy_last", *ARMS) if any(a in r.get("moves", {}) for r in results.values())]
    head = ["embodiment", "motion IoU [95% CI]"] + [f"{a} motion IoU" for a in arms] + \
        [f"vs {a} [95% CI]" for a in arms if a != "copy_last"] + \
        ["agent within 1/16 side [95% CI]", "at h=1 [95% CI]", "touching the T", "free", "agent present", "median err px"] + \
        [f"{a} agent within" for a in arms] + ["tokenizer agent within", "ground-truth detector", "block IoU",
                                                "T shape (true frames)", "T on goal, imagined - true [95% CI]"] + \
        ["arm F [95% CI]", "arm F at h=1", "arm moved: F [95% CI]", "arm still: F"] + [f"{a} arm F (moved)" for a in arms] + \
        [f"arm F vs {a}, moved [95% CI]" for a in arms if a != "copy_last"] + ["tokenizer arm F"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        mv = r.get("moves", {})
        m = mv.get("model", {})
        if not m:
            continue
        cells = [name, _ci(m.get("motion_iou"), m.get("motion_iou_ci95"), ".3f")]
        cells += [_num(mv.get(a, {}).get("motion_iou"), ".3f") for a in arms]
        cells += [_ci(m.get(f"motion_iou_vs_{a}"), m.get(f"motion_iou_vs_{a}_ci95"), "+.3f") for a in arms if a != "copy_last"]
        if "agent_within" in m:
            cells += [_ci(m["agent_within"], m["agent_within_ci95"], ".3f"), _ci(m["agent_within_per_horizon"][0], m.get("agent_within_first_ci95"), ".3f"),
                      _num(m.get("agent_within_contact"), ".3f"), _num(m.get("agent_within_free"), ".3f"),
                      _num(m["agent_present"], ".3f"), _num(m["agent_err_median"], ".1f")]
            cells += [_num(mv.get(a, {}).get("agent_within"), ".3f") for a in arms]
            cells += [_num(mv.get("tokenizer", {}).get("agent_within"), ".3f"),
                      _num(mv.get("ground_truth", {}).get("agent_within"), ".3f"), _num(m.get("block_iou"), ".3f"),
                      f"{_num(m.get('t_shape'), '.3f')} ({_num(mv.get('ground_truth', {}).get('t_shape'), '.3f')})",
                      _ci(m.get("goal_bias"), m.get("goal_bias_ci95"), "+.3f")]
        else:
            cells += ["-"] * (6 + len(arms) + 5)
        if "arm_f" in m:  # the reacher's arm
            cells += [_ci(m["arm_f"], m["arm_f_ci95"], ".3f"), _ci(m["arm_f_per_horizon"][0], m.get("arm_f_first_ci95"), ".3f"),
                      _ci(m["arm_f_moved"], m["arm_f_moved_ci95"], ".3f"), _num(m["arm_f_still"], ".3f")]
            cells += [f"{_num(mv.get(a, {}).get('arm_f'), '.3f')} ({_num(mv.get(a, {}).get('arm_f_moved'), '.3f')})"
                      for a in arms]
            cells += [_ci(m.get(f"arm_f_moved_vs_{a}"), m.get(f"arm_f_moved_vs_{a}_ci95"), "+.3f")
                      for a in arms if a != "copy_last"]
            cells += [_num(mv.get("tokenizer", {}).get("arm_f"), ".3f")]
        else:
            cells += ["-"] * (4 + len(arms) + len([a for a in arms if a != "copy_last"]) + 1)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
