"""`hma eval --ckpt C --data DIR`: held-out evaluation of an HMA checkpoint.

Per embodiment, on the validation episodes' windows (prompt P steps, then imagine the rest with
the true actions): PSNR (mean over imagined frames and on the last), PSNR over moving pixels,
SSIM, teacher-forced perplexity and token accuracy, controllability dPSNR (true actions vs
random actions drawn from the action statistics, 5 trials, 95% bootstrap interval over
episodes), the tokenizer's reconstruction PSNR (the ceiling), the copy-last-frame baseline and,
with --passive / --scratch / --control, a passive model / a model trained from scratch / any other
model (an A/B run's control) on the same windows
(PSNR, PSNR moving and perplexity, each paired with a 95% bootstrap interval over episodes; the
perplexity ratio other / this model is the paper's fidelity comparison, Fig. 5a), and what moves:
motion-mask IoU everywhere, PushT's agent and T, the reacher's arm (F-score where it moved and where
it stayed). Writes JSON, a table and GIFs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hma_ros.runtime import RENDER_MODES


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="evaluate a checkpoint on held-out episodes", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--data", required=True, nargs="+")
    p.add_argument("--embodiments", help="subset to evaluate (default: those in both checkpoint and data)")
    p.add_argument("--passive", help="a passive (action-free) checkpoint to compare against")
    p.add_argument("--scratch", help="a checkpoint of the same embodiment trained from scratch, to compare a "
                                     "finetuned --ckpt against (same windows, paired interval)")
    p.add_argument("--control", help="another action-conditioned checkpoint, e.g. the control arm of an A/B run: the "
                                     "same windows, seeds and actions, paired intervals (model minus control)")
    p.add_argument("--windows", type=int, default=24, help="held-out windows per embodiment (spread over episodes)")
    p.add_argument("--episodes", default="val", choices=("val", "train", "all"),
                   help="val: the 10%% validation split training never sees (default); all: every episode, "
                        "for a test set generated apart (e.g. hma gen-data --seed 100); train: the "
                        "episodes training saw (beside val or a test set, it measures overfitting)")
    p.add_argument("--trials", type=int, default=5, help="random-action trials for dPSNR")
    p.add_argument("--prompt", type=int, default=0, help="prompt steps (default: the model's)")
    p.add_argument("--steps", type=int, default=2, help="MaskGIT unmasking steps per frame")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default; best PSNR in our sweep)")
    p.add_argument("--mask-order", default="random", choices=("random", "confidence"),
                   help="which masked tokens each unmasking step decides: a random permutation (default) or "
                        "the surest first (MaskGIT's rule; discrete tokens)")
    p.add_argument("--where-temperature", type=float, default=0.0,
                   help="models with an action map: sample at this temperature the --where-tokens tokens the map "
                        "ranks most likely to change (0: off)")
    p.add_argument("--where-tokens", type=int, default=8, help="with --where-temperature (default %(default)s)")
    p.add_argument("--ddim-steps", type=int, default=0, help="MAR models: DDIM steps (default: the checkpoint's)")
    p.add_argument("--render", default="residual", choices=RENDER_MODES,
                   help="imagined-frame rendering (WorldModel.render); --passive/--scratch use the same")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="the model calls' precision, as the nodes' `precision` parameter (bf16: the trunk's "
                        "matrices in bf16, autocast; pays on CPUs with bf16 units and on GPUs); every arm uses it")
    p.add_argument("--graphs", action="store_true",
                   help="the cached passes through fixed-shape KV caches (the nodes' `graphs`; CUDA graphs on cuda)")
    p.add_argument("--compile", action="store_true",
                   help="with --graphs: each block compiled (the nodes' `compile`; ~1 min at start)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", help="folder for eval.json, table.md and GIFs (default: CKPT/eval)")
    p.add_argument("--gifs", type=int, default=2, help="GIFs per embodiment")
    p.add_argument("--lpips", metavar="PATH", help="LPIPS (AlexNet) weights, lpips_alex.safetensors or its folder: "
                   "adds LPIPS (nothing downloads; scripts/convert_metric_weights.py makes the file)")
    p.add_argument("--fid", metavar="PATH", help="FID Inception weights, fid_inception.safetensors or its folder: adds FID")
    p.set_defaults(func=run)


def run(args) -> int:
    from hma_ros.cli import CliError
    from hma_ros.data.dataset import DatasetError, find_datasets
    from hma_ros.evaluation.heldout import (
        ARMS,
        evaluate,
        format_learned_table,
        format_moves_table,
        format_table,
        pick_windows,
    )
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint
    from hma_ros.runtime.world_model import WorldModel, build_models

    if args.threads < 0:
        raise CliError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    if args.compile and not args.graphs:  # before anything loads
        raise CliError("--compile compiles the fixed-shape cached passes: add --graphs")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        config, state = load_checkpoint(args.ckpt)
        if "dynamics" not in config:
            raise CliError(f"{args.ckpt}: a tokenizer-only checkpoint")
        tok, dyn = build_models(config, state, args.ckpt)
        others = {}  # label -> (config, tokenizer, dynamics) of each comparison model
        for label in ARMS:
            path = getattr(args, label)
            if path:
                oconfig, ostate = load_checkpoint(path)
                if "dynamics" not in oconfig:
                    raise CliError(f"--{label} {path}: a tokenizer-only checkpoint")
                others[label] = (oconfig, *build_models(oconfig, ostate, path))
    except CheckpointError as e:
        raise CliError(str(e)) from None
    try:
        datasets = find_datasets(args.data)
    except DatasetError as e:
        raise CliError(str(e)) from None
    names = [n for n in datasets if n in config["embodiments"]]
    if args.embodiments:
        names = [n.strip() for n in args.embodiments.split(",")]
        bad = [n for n in names if n not in datasets or n not in config["embodiments"]]
        if bad:
            raise CliError(f"{', '.join(bad)}: not in both the checkpoint ({', '.join(config['embodiments'])}) "
                           f"and the data ({', '.join(datasets)})")
    if not names:
        raise CliError("no embodiment in both the checkpoint and the data")
    learned = {}
    try:
        from hma_ros.evaluation.learned import LPIPS, FIDInception, MetricWeightsError

        if args.lpips:
            learned["lpips"] = LPIPS.load(args.lpips)
        if args.fid:
            learned["fid"] = FIDInception.load(args.fid)
    except MetricWeightsError as e:
        raise CliError(str(e)) from None
    if args.mask_order == "confidence" and dyn.continuous:
        raise CliError(f"--mask-order confidence: {args.ckpt} has continuous tokens (MAR), which have no "
                       "likelihood to order by; leave --mask-order out (random order)")
    out = Path(args.out or Path(args.ckpt) / "eval")
    out.mkdir(parents=True, exist_ok=True)
    P = args.prompt or dyn.cfg.prompt
    results = {}
    speed = {"precision": args.precision, "graphs": args.graphs, "compile": args.compile}
    from tqdm import tqdm

    for name in names:
        ds = datasets[name]
        if args.ddim_steps:
            dyn.cfg.ddim_steps = args.ddim_steps
        wm = WorldModel(tok, dyn, config, name, seed=args.seed, mask_steps=args.steps, temperature=args.temperature,
                        where_temperature=args.where_temperature, where_tokens=args.where_tokens,
                        render=args.render, mask_order=args.mask_order, **speed)
        arms = {}
        for label, (oconfig, otok, odyn) in others.items():
            if name not in oconfig["embodiments"]:
                raise CliError(f"--{label} {getattr(args, label)} has no {name} embodiment "
                               f"(it has {', '.join(oconfig['embodiments'])})")
            arms[label] = WorldModel(otok, odyn, oconfig, name, seed=args.seed, mask_steps=args.steps,
                                     temperature=args.temperature, render=args.render,
                                     mask_order=args.mask_order if not odyn.continuous else "random", **speed)
        windows = pick_windows(ds, dyn.cfg.window, args.windows, args.seed, args.episodes)
        if not windows:
            raise CliError(f"{name}: no held-out window of {dyn.cfg.window} valid steps")
        with tqdm(total=len(windows), desc=f"eval {name}", unit="window") as bar:
            results[name] = evaluate(wm, ds, windows, P, args.trials, args.seed, arms, out, args.gifs, learned,
                                     progress=bar.update)
        results[name]["render"] = args.render
        results[name]["episode_set"] = args.episodes
        results[name]["sampling"] = {"mask_steps": args.steps, "temperature": args.temperature, "mask_order": args.mask_order,
                                     **speed}
    (out / "eval.json").write_text(json.dumps(results, indent=2))
    table = format_table(results) + "\n\nWhat moves (1/16 of the frame side = 4 px at 64x64):\n\n" + \
        format_moves_table(results)
    if learned:
        table += "\n\nLearned metrics (lower is closer):\n\n" + format_learned_table(results)
    (out / "table.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out / 'eval.json'}, {out / 'table.md'} and GIFs (truth | imagined)")
    return 0
