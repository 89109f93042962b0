"""`hma train`: pretrain HMA dynamics on a mixture of embodiments, or finetune a new one.
The token kind follows the tokenizer: FSQ -> discrete MaskGIT model, continuous -> MAR model.

    hma train --data data/sim --embodiments pusht,reacher,cheetah --tokenizer runs/tokenizer \\
              --out runs/hma --steps 4000
    hma train --data data/sim --embodiments manipulator --init runs/hma --freeze-trunk --out runs/ft
    hma train ... --resume            # continue runs/hma from its last checkpoint
    torchrun --nproc_per_node 2 -m hma_ros.cli.main train ...   # DDP (gloo on CPU)

Checkpoints (safetensors + config.yaml) go to OUT every --save-every steps and at the end;
OUT/train_state.safetensors (+ .json) holds optimizer, schedule position, RNG and data-sampler
state for --resume. A non-finite loss stops training and keeps the last good checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train (pretrain or finetune) the dynamics model", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", help="dataset folders (or folders of datasets)")
    p.add_argument("--embodiments", help="comma-separated subset of the datasets to train on (default: all)")
    p.add_argument("--tokenizer", help="tokenizer checkpoint (hma train-tokenizer); not needed with --init")
    p.add_argument("--init", help="start from this HMA checkpoint (finetuning); new embodiments get a new stem+head")
    p.add_argument("--freeze-trunk", action="store_true", help="with --init: train only the new stems/heads")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue OUT from its train_state")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--minutes", type=float, default=0.0, help="also stop after this wall time (0: no limit)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--d-model", type=int, default=192)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--window", type=int, default=12)
    p.add_argument("--prompt", type=int, default=4)
    p.add_argument("--conditioning", default="modulate+concat",
                   help="modulate+concat | modulate | concat | add | cross | none")
    p.add_argument("--objective", default="forward", help="forward | passive | full | policy")
    p.add_argument("--action-encoding", default="mlp", choices=("mlp", "fourier"),
                   help="stems: an MLP on normalized chunks, or on their Fourier features too (new models)")
    p.add_argument("--corrupt-prob", type=float, default=None,
                   help="share of visible tokens replaced by random ones (default 0, or --init's)")
    p.add_argument("--motion-weight", type=float, default=None,
                   help="discrete: loss weight of tokens whose image patch moved since the previous frame "
                        "(default 1 = plain mean, or --init's; applies to --init runs too)")
    p.add_argument("--ddim-steps", type=int, default=10,
                   help="continuous (MAR) models: DDIM steps per token at sampling (stored in the checkpoint)")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=1000, help="quick held-out eval + sample GIF")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--fp16", action="store_true", help="store final weights in float16 (shipping)")
    p.set_defaults(func=run)


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import DatasetError, MixtureSampler, find_datasets
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from hma_ros.model.dynamics import DynamicsConfig, HMADynamics
    from hma_ros.model.maskgit import TrainingLoss
    from hma_ros.model.training import TokenizedDataset, embodiment_record, load_train_state, save_train_state
    from hma_ros.runtime.world_model import build_models

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + rank)
    out = Path(args.out)
    try:
        datasets = find_datasets(args.data)
    except DatasetError as e:
        raise CliError(str(e)) from None
    if args.embodiments:
        wanted = [e.strip() for e in args.embodiments.split(",") if e.strip()]
        missing = [e for e in wanted if e not in datasets]
        if missing:
            raise CliError(f"no dataset for {', '.join(missing)} in {' '.join(args.data)} (have {', '.join(datasets)})")
        datasets = {k: datasets[k] for k in wanted}

    # ---- model: from --resume, --init, or fresh (tokenizer + new dynamics)
    state_path = out / "train_state.safetensors"
    base_config, base_state = None, None
    try:
        if args.resume:
            if not state_path.is_file():
                raise CliError(f"--resume: no {state_path}; start without --resume")
            base_config, base_state = load_checkpoint(out)
        elif args.init:
            base_config, base_state = load_checkpoint(args.init)
        elif args.tokenizer:  # only the tokenizer is taken, also from a full HMA checkpoint
            base_config, base_state = load_checkpoint(args.tokenizer)
            base_config = {k: v for k, v in base_config.items() if k not in ("dynamics", "embodiments")}
            base_state = {k: v for k, v in base_state.items() if k.startswith("tokenizer.")}
        else:
            raise CliError("give --tokenizer (pretraining), --init (finetuning) or --resume")
    except CheckpointError as e:
        raise CliError(str(e)) from None
    tok, dyn = build_models({k: v for k, v in base_config.items() if k != "dynamics"} | (
        {"dynamics": base_config["dynamics"], "embodiments": base_config["embodiments"]}
        if "dynamics" in base_config else {}), base_state, args.init or args.tokenizer or str(out))
    embodiments = dict(base_config.get("embodiments", {}))
    if dyn is None:
        dcfg = DynamicsConfig(d_model=args.d_model, n_layers=args.layers, n_heads=args.heads,
                              window=args.window, prompt=args.prompt, tokens_per_frame=tok.tokens_per_frame,
                              levels=tok.cfg.levels, conditioning=args.conditioning, objective=args.objective,
                              token_kind="continuous" if tok.cfg.kind == "continuous" else "discrete",
                              token_dim=tok.cfg.latent_dim, ddim_steps=args.ddim_steps,
                              action_encoding=args.action_encoding)
        embodiments = {n: embodiment_record(ds) for n, ds in datasets.items()}
        dyn = HMADynamics(dcfg, embodiments)
    new = [n for n in datasets if n not in embodiments]
    for n in new:  # finetuning: a new stem + head for each new embodiment
        rec = embodiment_record(datasets[n])
        embodiments[n] = rec
        dyn.add_embodiment(n, rec["stride"], rec["action_dim"], rec["stats"]["mean"], rec["stats"]["std"])
    for n in datasets:
        rec = embodiment_record(datasets[n])
        if (rec["stride"], rec["action_dim"]) != (embodiments[n]["stride"], embodiments[n]["action_dim"]):
            raise CliError(f"{n}: dataset has stride {rec['stride']} x dim {rec['action_dim']} but the checkpoint's "
                           f"stem expects {embodiments[n]['stride']} x {embodiments[n]['action_dim']}")
    given = {k: v for k, v in (("corrupt_prob", args.corrupt_prob), ("motion_weight", args.motion_weight))
             if v is not None}
    try:  # training-only settings, when given, replace the defaults or the --init/--resume checkpoint's
        DynamicsConfig(**(dyn.cfg.to_dict() | given))  # validates
    except ValueError as e:
        raise CliError(str(e)) from None
    for k, v in given.items():
        setattr(dyn.cfg, k, v)
    dyn.train()
    if args.freeze_trunk:
        if not args.init and not args.resume:
            raise CliError("--freeze-trunk needs --init CKPT")
        trainable = set()
        for n in datasets:
            trainable |= {id(p) for p in dyn.stems[n].parameters()} | {id(p) for p in dyn.heads[n].parameters()}
        for p in dyn.parameters():
            p.requires_grad_(id(p) in trainable)
    params = [p for p in dyn.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05, betas=(0.9, 0.95))
    loss_fn = TrainingLoss(dyn)  # the whole loss in one forward, so DDP sees every parameter it uses
    if world > 1:
        loss_fn = torch.nn.parallel.DistributedDataParallel(loss_fn, find_unused_parameters=True)

    # ---- data
    tokenized = {n: TokenizedDataset(ds, tok, progress=rank == 0) for n, ds in datasets.items()}
    train_eps = {n: ds.split(0.1, seed=0)[0] for n, ds in datasets.items()}
    T = dyn.cfg.window
    sampler = MixtureSampler(datasets, T, args.batch_size, episodes=train_eps, seed=args.seed + 1000 * rank)
    step = 0
    out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        try:
            meta = load_train_state(state_path, opt, sampler.rng, dyn)
        except ValueError as e:
            raise CliError(f"--resume: {state_path} does not fit this model ({e})") from None
        step = int(meta["step"])
        print(f"resumed {out} at step {step}")

    def config(extra: dict | None = None) -> dict:
        c = {"kind": "hma", "tokenizer": tok.cfg.to_dict(), "dynamics": dyn.cfg.to_dict(),
             "embodiments": embodiments,
             "training": {"steps": step, "batch_size": args.batch_size * world, "lr": args.lr,
                          "data": sorted(datasets), "init": args.init, "freeze_trunk": args.freeze_trunk,
                          "command": "hma " + " ".join(sys.argv[1:])}}
        c["training"].update(extra or {})
        return c

    def state_dict():
        return {**{f"tokenizer.{k}": v for k, v in tok.state_dict().items()},
                **{f"dynamics.{k}": v for k, v in dyn.state_dict().items()}}

    def save(final: bool = False):
        if rank != 0:
            return
        save_checkpoint(out, state_dict(), config({"minutes": round(train_minutes(), 1)}),
                        dtype=torch.float16 if (final and args.fp16) else None)
        save_train_state(state_path, opt, step, sampler.rng, {"args": vars(args) | {"func": None}}, dyn)

    log_f = open(out / "train_log.csv", "a", newline="") if rank == 0 else None
    log = csv.writer(log_f) if log_f else None
    if log and step == 0:
        log.writerow(["step", "seconds", "embodiment", "loss", "token_loss", "action_loss", "token_acc", "lr"])
    tb = None
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            pass
    from tqdm import tqdm

    t_start = time.time()

    def train_minutes() -> float:
        return (time.time() - t_start) / 60

    bar = tqdm(total=args.steps, initial=step, desc="train", unit="step", disable=rank != 0)
    gen = torch.Generator()
    status = "done"
    while step < args.steps:
        if args.minutes and train_minutes() > args.minutes:
            status = f"time budget of {args.minutes} min reached"
            break
        name = sampler.names[sampler.rng.choice(len(sampler.names), p=sampler.weights)]
        starts = sampler.rng.choice(sampler.starts[name], size=args.batch_size)
        codes, actions, valid, moving = tokenized[name].batch(starts, T)
        gen.manual_seed((args.seed * 1_000_003 + step) * 64 + rank)  # masks depend on (seed, step) only: exact resume
        lr = _lr(step, args.steps, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        losses = loss_fn(name, codes, actions, valid, gen, moving)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            status = (f"non-finite loss ({loss.item()}) at step {step} on {name}: stopped; the last good "
                      f"checkpoint in {out} (step {step - step % args.save_every}) is kept")
            print("ERROR: " + status, file=sys.stderr)
            if log_f:
                log_f.close()
            return 3
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if log and (step % 10 == 0 or step == 1):
            row = [step, round(time.time() - t_start, 1), name] + [round(float(losses[k].detach()), 5) for k in
                                                                   ("loss", "token_loss", "action_loss", "token_acc")] + [lr]
            log.writerow(row)
            log_f.flush()
            bar.set_postfix(emb=name[:8], loss=f"{float(loss.detach()):.3f}", acc=f"{float(losses['token_acc']):.3f}")
            if tb:
                for k in ("loss", "token_loss", "action_loss", "token_acc"):
                    tb.add_scalar(f"{k}/{name}", float(losses[k]), step)
        if step % args.save_every == 0:
            save()
        if rank == 0 and args.eval_every and step % args.eval_every == 0:
            dyn.eval()
            _quick_eval(out, step, tok, dyn, config(), datasets, tb)
            dyn.train()
    bar.close()
    save(final=True)
    if rank == 0:
        print(f"{status}: {step} steps in {train_minutes():.1f} min; checkpoint {out}")
    if log_f:
        log_f.close()
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


def _quick_eval(out: Path, step: int, tok, dyn, config: dict, datasets, tb) -> None:
    """A few held-out windows per embodiment: imagined-frame PSNR and a GIF (truth | imagined)."""
    import imageio.v2 as imageio
    import torch

    from hma_ros.model.tokenizer import psnr
    from hma_ros.runtime.world_model import WorldModel

    T, P = dyn.cfg.window, dyn.cfg.prompt
    for name, ds in datasets.items():
        val = ds.split(0.1, seed=0)[1]
        starts = ds.window_starts(T, val)
        if len(starts) == 0:
            continue
        w = ds.window(int(starts[0]), T)
        wm = WorldModel(tok, dyn, config, name, seed=0)
        for t in range(P):
            wm.observe(w.frames[t], w.actions[t - 1] if t else None)
        imagined = wm.imagine(w.actions[P - 1:T - 1])
        score = float(psnr(torch.from_numpy(imagined), torch.from_numpy(w.frames[P:])).mean())
        if tb:
            tb.add_scalar(f"eval_psnr/{name}", score, step)
        frames = [np.concatenate([g, i], axis=1) for g, i in zip(w.frames[P:], imagined, strict=True)]
        (out / "samples").mkdir(exist_ok=True)
        imageio.mimsave(out / "samples" / f"{name}_step{step}.gif", frames, duration=0.5, loop=0)
        print(f"\n[eval step {step}] {name}: imagined PSNR {score:.2f} dB", flush=True)
