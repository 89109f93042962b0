"""Dynamics training: pretrain HMA on a mixture of embodiments, finetune a new one, resume.

The token kind follows the tokenizer: FSQ -> discrete MaskGIT model, continuous -> MAR model.
Checkpoints (safetensors + config.yaml) go to OUT every `save_every` steps and at the end;
OUT/train_state.safetensors (+ .json) holds optimizer, schedule position, RNG and data-sampler
state for resume. A non-finite loss stops training and keeps the last good checkpoint. DDP
(gloo on CPU) when launched by torchrun (WORLD_SIZE/RANK in the environment).
`hma train` (hma_ros/cli/train.py) parses its arguments into `DynamicsTraining` and calls
`train_dynamics`.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hma_ros.train import TrainError, training_autocast, training_device, world_model_checkpoint


@dataclass
class DynamicsTraining:
    """What to train and how (the `hma train` options, same names and defaults)."""

    data: list[str]
    out: str
    embodiments: str | None = None  # comma-separated subset (default: every dataset)
    mixture: str | None = None  # "pusht=0.6,reacher=0.2,..." batch shares (default: the paper's temperature-3 rule)
    tokenizer: str | None = None  # pretraining: its tokenizer; with init: replaces init's
    init: str | None = None  # finetune from this HMA checkpoint
    freeze_trunk: bool = False
    trunk: str | None = None  # start the trunk, stems and slot embeddings from this HMA checkpoint (any token kind)
    resume: bool = False
    steps: int = 4000
    minutes: float = 0.0
    batch_size: int = 8
    lr: float = 1e-3
    warmup: int = 200
    d_model: int = 192
    layers: int | None = None  # None: 4 for new models, init's for finetuning; more than init's: blocks added
    heads: int = 4
    window: int = 12
    prompt: int = 4
    conditioning: str = "modulate+concat"
    objective: str | None = None  # None: forward (new), the loaded model's (--init)
    action_encoding: str = "mlp"
    action_points: int | None = None  # None: 0 for new models, init's for finetuning
    factor_ar: int | None = None  # None: 0 for new models, init's for finetuning
    corrupt_prob: float | None = None
    self_prob: float | None = None
    action_drop: float | None = None
    motion_weight: float | None = None
    state_weight: float | None = None
    ddim_steps: int = 10
    save_every: int = 500
    eval_every: int = 1000
    seed: int = 0
    threads: int = 0
    device: str = "cpu"  # cpu | cuda[:N]: where the model, the batches and the mask RNG live
    fp16: bool = False
    precision: str = "fp32"  # fp32 | bf16: the forward pass and loss under bf16 autocast (master weights fp32)
    token_cache: str | None = None  # a folder, "off", or None: state.token_cache_dir's default
    command: str = field(default="", compare=False)  # recorded in the checkpoint's config


LOGGED = ("loss", "token_loss", "action_loss", "token_acc", "where_loss", "state_loss")  # train_log.csv columns (+ lr)


def _lr(step: int, total: int, base: float, warmup: int, time_frac: float = 0.0) -> float:
    """Linear warm-up, then a cosine to 5% of `base` that ends at `total` steps -- or, with a time
    budget, at whichever ends first: `time_frac` is the share of --minutes spent (0 without one), so a
    run stopped by the clock has still annealed."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = min(1.0, max((step - warmup) / max(1, total - warmup), time_frac))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def _shares(text: str | None) -> dict[str, float] | None:
    """'pusht=0.6,reacher=0.2' -> {'pusht': 0.6, 'reacher': 0.2}."""
    if not text:
        return None
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise TrainError(f"--mixture: {part!r} is not NAME=WEIGHT") from None
    return out


def _init_changes(opts, tok, dyn, base_config: dict, base_state: dict):
    """--init with --tokenizer, --action-points, --factor-ar and/or more --layers: the loaded model with
    that tokenizer (on another token grid: the slot's position embeddings resampled to it), a
    zero-started action map, zero-started intra-token steps, new blocks appended to the trunk whose
    adaLN-Zero gates start at zero (each an identity: the grown model predicts exactly as the loaded
    one until it trains) -- every other weight as loaded."""
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, sub_state
    from hma_ros.model.dynamics import DynamicsConfig, HMADynamics
    from hma_ros.runtime.world_model import build_models

    if opts.tokenizer:
        try:
            tcfg, tstate = load_checkpoint(opts.tokenizer)
        except CheckpointError as e:
            raise TrainError(str(e)) from None
        new_tok, _ = build_models({"tokenizer": tcfg["tokenizer"]}, tstate, opts.tokenizer)
        if (tuple(new_tok.cfg.levels), new_tok.cfg.kind) != (tuple(tok.cfg.levels), tok.cfg.kind):
            raise TrainError(f"--tokenizer {opts.tokenizer}: its tokens (levels {tuple(new_tok.cfg.levels)}, "
                           f"{new_tok.cfg.kind}) differ from --init's ({tuple(tok.cfg.levels)}, {tok.cfg.kind}); "
                           "train a new model with --tokenizer alone")
        if new_tok.tokens_per_frame != tok.tokens_per_frame and dyn.state_heads:
            raise TrainError(f"--tokenizer {opts.tokenizer}: another token grid ({new_tok.cfg.grid}x{new_tok.cfg.grid}, "
                             f"--init's {tok.cfg.grid}x{tok.cfg.grid}) under a model with state heads (they read "
                             "each token position); start from a model without them")
        tok = new_tok
    grow = {}  # config changes: parts added zero-started (they predict as before), or another token grid
    if tok.tokens_per_frame != dyn.cfg.tokens_per_frame:  # positions resampled below (regrid_positions)
        grow["tokens_per_frame"] = tok.tokens_per_frame
    if opts.layers is not None and opts.layers != dyn.cfg.n_layers:
        if opts.layers < dyn.cfg.n_layers:
            raise TrainError(f"--init {opts.init} has {dyn.cfg.n_layers} blocks; --layers {opts.layers} would drop "
                             "trained ones (with --init, --layers can only add blocks)")
        grow["n_layers"] = opts.layers  # appended after the trunk's blocks, each an identity at first (adaLN-Zero)
    for name, flag in (("action_points", "--action-points"), ("factor_ar", "--factor-ar")):
        value = getattr(opts, name)
        if value is not None and value != getattr(dyn.cfg, name):
            if getattr(dyn.cfg, name):
                raise TrainError(f"--init {opts.init} already has {name} = {getattr(dyn.cfg, name)}; "
                                 f"leave {flag} out to keep it")
            grow[name] = value
    if opts.objective and opts.objective != dyn.cfg.objective:
        if opts.objective != "passive":
            raise TrainError(f"--init {opts.init} is a {dyn.cfg.objective} model; with --init, --objective can only "
                             "turn it passive (a control that starts from its weights and never sees actions)")
        passive = HMADynamics(DynamicsConfig(**(dyn.cfg.to_dict() | {"objective": "passive"})),
                              base_config["embodiments"])
        state = dict(sub_state(base_state, "dynamics"))
        # the concat action token's position goes (image tokens come first in a slot)
        state["pos_emb"] = state["pos_emb"][: passive.pos_emb.shape[0]]
        missing, _ = passive.load_state_dict(state, strict=False)
        if missing:
            raise TrainError(f"--init {opts.init}: its weights do not fit a passive model (missing {missing[:5]})")
        dyn = passive  # the action pathway's weights are left behind
    if grow:
        cfg = DynamicsConfig(**(dyn.cfg.to_dict() | grow))
        grown = HMADynamics(cfg, base_config["embodiments"])
        # from the model as it stands (after a switch to passive, not the checkpoint's action pathway)
        state = dyn.state_dict()
        if "tokens_per_frame" in grow:
            state["pos_emb"] = regrid_positions(state["pos_emb"], dyn.cfg.tokens_per_frame, cfg.tokens_per_frame)
        missing, unexpected = grown.load_state_dict(state, strict=False)
        new_part = ("action_map.", "tokens.ar.") + tuple(f"trunk.blocks.{i}." for i in range(dyn.cfg.n_layers, cfg.n_layers))
        if unexpected or any(not (k.startswith(new_part) or k.endswith(".points.weight")
                                  or k.endswith(".points.bias")) for k in missing):
            raise TrainError(f"--init {opts.init}: weights do not fit (missing {missing[:5]}, unexpected {unexpected[:5]})")
        dyn = grown
    return tok, dyn


def regrid_positions(pos_emb, old_tokens: int, new_tokens: int):
    """A slot's position embeddings (old_tokens image tokens, row-major on a square grid, then any
    action token) resampled to another square grid: the image part interpolated bilinearly as a
    picture of embeddings, so a token keeps the position of the patch it covers (an 8x8 model's
    knowledge of where things are, e.g. where the actions move the agent, carries to 16x16
    tokens); the action token's embedding as it was."""
    import torch
    import torch.nn.functional as F

    g0, g1 = math.isqrt(old_tokens), math.isqrt(new_tokens)
    if g0 * g0 != old_tokens or g1 * g1 != new_tokens:
        raise TrainError(f"another token grid needs square grids, got {old_tokens} -> {new_tokens} tokens per frame")
    img, rest = pos_emb[:old_tokens], pos_emb[old_tokens:]
    pic = img.T.reshape(1, -1, g0, g0).float()  # (1, D, g0, g0)
    new = F.interpolate(pic, size=(g1, g1), mode="bilinear", align_corners=False)
    return torch.cat([new.reshape(-1, new_tokens).T.to(pos_emb.dtype), rest])


# what --trunk takes: every dynamics weight outside the token pathway and the action heads, and only
# from a model of the same geometry (these fields); the token kind, levels and heads may differ
_TRUNK_GEOMETRY = ("d_model", "n_layers", "n_heads", "mlp_ratio", "window", "prompt", "tokens_per_frame",
                   "conditioning", "cross_tokens", "action_encoding", "fourier_bands", "action_points")
_TOKEN_PATHWAY = ("tokens.", "heads.")


def _take_trunk(path: str, dyn, embodiments: dict) -> int:
    """--trunk CKPT: the shared trunk, the stems and the slot (position, mask, no-action) embeddings
    copied from another HMA checkpoint of the same geometry -- e.g. a discrete model that has learned
    where the actions move the robot, under a continuous (MAR) token pathway. The token pathway
    (input projection, token head) and the action heads stay this model's. Returns the tensors taken."""
    from hma_ros.runtime.world_model import build_models

    cfg, state = world_model_checkpoint(path, "--trunk")
    _, src = build_models(cfg, state, path)
    differ = [f"{k} {getattr(src.cfg, k, None)} (this model: {getattr(dyn.cfg, k, None)})"
              for k in _TRUNK_GEOMETRY if getattr(src.cfg, k, None) != getattr(dyn.cfg, k, None)]
    if differ:
        raise TrainError(f"--trunk {path}: its geometry differs: {'; '.join(differ)}")
    for name, rec in cfg.get("embodiments", {}).items():
        mine = embodiments.get(name)
        if mine is not None and any(rec.get(k) != mine.get(k) for k in ("stride", "action_dim", "stats")):
            raise TrainError(f"--trunk {path}: embodiment {name}'s stride, action size or action statistics differ "
                             "from this model's (its stem would read the actions differently)")
    own = dyn.state_dict()
    take = {k: v for k, v in src.state_dict().items() if not k.startswith(_TOKEN_PATHWAY) and k in own}
    wrong = [k for k, v in take.items() if v.shape != own[k].shape]
    if wrong:
        raise TrainError(f"--trunk {path}: weights of other shapes: {wrong[:5]}")
    left = [k for k in own if not k.startswith(_TOKEN_PATHWAY + ("stems.",)) and k not in take]
    if left:
        raise TrainError(f"--trunk {path}: it lacks trunk weights this model has: {left[:5]}")
    dyn.load_state_dict(take, strict=False)
    return len(take)


def train_dynamics(opts: DynamicsTraining) -> int:
    import torch

    from hma_ros.data.dataset import DatasetError, MixtureSampler, find_datasets
    from hma_ros.model.checkpoint import (
        CheckpointError,
        load_checkpoint,
        model_state,
        save_checkpoint,
    )
    from hma_ros.model.dynamics import DynamicsConfig, HMADynamics
    from hma_ros.model.maskgit import LossConfig, TrainingLoss
    from hma_ros.runtime.world_model import build_models
    from hma_ros.train.state import (
        TokenizedDataset,
        embodiment_record,
        load_train_state,
        save_train_state,
        state_record,
        token_cache_dir,
    )

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = training_device(opts.device)
    training_autocast(device, opts.precision)  # checked before anything is written
    for name in ("save_every", "eval_every"):
        if getattr(opts, name) < 0:
            raise TrainError(f"--{name.replace('_', '-')} {getattr(opts, name)}: give a number of steps, "
                             "or 0 for never (checkpoints are still written at the end)")
    torch.manual_seed(opts.seed + rank)
    out = Path(opts.out)
    try:
        datasets = find_datasets(opts.data)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    if opts.embodiments:
        wanted = [e.strip() for e in opts.embodiments.split(",") if e.strip()]
        missing = [e for e in wanted if e not in datasets]
        if missing:
            raise TrainError(f"no dataset for {', '.join(missing)} in {' '.join(opts.data)} (have {', '.join(datasets)})")
        datasets = {k: datasets[k] for k in wanted}

    # ---- model: from --resume, --init, or fresh (tokenizer + new dynamics)
    state_path = out / "train_state.safetensors"
    base_config, base_state = None, None
    try:
        if opts.resume:
            if not state_path.is_file():
                raise TrainError(f"--resume: no {state_path}; start without --resume")
            base_config, base_state = load_checkpoint(out)
        elif opts.init:
            base_config, base_state = load_checkpoint(opts.init)
        elif opts.tokenizer:  # only the tokenizer is taken, also from a full HMA checkpoint
            base_config, base_state = load_checkpoint(opts.tokenizer)
            base_config = {k: v for k, v in base_config.items() if k not in ("dynamics", "embodiments")}
        else:
            raise TrainError("give --tokenizer (pretraining), --init (finetuning) or --resume")
    except CheckpointError as e:
        raise TrainError(str(e)) from None
    tok, dyn = build_models({k: v for k, v in base_config.items() if k != "dynamics"} | (
        {"dynamics": base_config["dynamics"], "embodiments": base_config["embodiments"]}
        if "dynamics" in base_config else {}), base_state, opts.init or opts.tokenizer or str(out))
    embodiments = dict(base_config.get("embodiments", {}))
    if dyn is None:
        dcfg = DynamicsConfig(d_model=opts.d_model, n_layers=opts.layers or 4, n_heads=opts.heads,
                              window=opts.window, prompt=opts.prompt, tokens_per_frame=tok.tokens_per_frame,
                              levels=tok.cfg.levels, conditioning=opts.conditioning, objective=opts.objective or "forward",
                              token_kind="continuous" if tok.cfg.kind == "continuous" else "discrete",
                              token_dim=tok.cfg.latent_dim, ddim_steps=opts.ddim_steps,
                              action_encoding=opts.action_encoding, action_points=opts.action_points or 0,
                              factor_ar=opts.factor_ar or 0)
        embodiments = {n: embodiment_record(ds) for n, ds in datasets.items()}
        dyn = HMADynamics(dcfg, embodiments)
    elif not opts.resume:  # --init: optional new tokenizer / action map on the loaded model
        loaded_tokens = dyn.cfg.tokens_per_frame
        tok, dyn = _init_changes(opts, tok, dyn, base_config, base_state)
        if dyn.cfg.tokens_per_frame != loaded_tokens and rank == 0:
            print(f"--tokenizer {opts.tokenizer}: {tok.cfg.grid}x{tok.cfg.grid} tokens under --init's "
                  f"{loaded_tokens} a frame: its position embeddings resampled to the new grid")
    if opts.trunk:
        if opts.resume:
            raise TrainError("--trunk starts a run; a resumed run already holds the trunk it trained (leave --trunk out)")
        taken = _take_trunk(opts.trunk, dyn, embodiments)
        if rank == 0:
            print(f"--trunk: {taken} trunk, stem and embedding tensors from {opts.trunk}")
    new = [n for n in datasets if n not in embodiments]
    for n in new:  # finetuning: a new stem + head for each new embodiment
        rec = embodiment_record(datasets[n])
        embodiments[n] = rec
        dyn.add_embodiment(n, rec["stride"], rec["action_dim"], rec["stats"]["mean"], rec["stats"]["std"])
    for n in datasets:
        rec = embodiment_record(datasets[n])
        if (rec["stride"], rec["action_dim"]) != (embodiments[n]["stride"], embodiments[n]["action_dim"]):
            raise TrainError(f"{n}: dataset has stride {rec['stride']} x dim {rec['action_dim']} but the checkpoint's "
                           f"stem expects {embodiments[n]['stride']} x {embodiments[n]['action_dim']}")
    given = {k: v for k, v in (("corrupt_prob", opts.corrupt_prob), ("self_prob", opts.self_prob), ("action_drop", opts.action_drop),
                               ("motion_weight", opts.motion_weight), ("state_weight", opts.state_weight))
             if v is not None}
    try:  # loss settings, when given, replace the defaults or the --init/--resume checkpoint's
        loss_cfg = LossConfig(**(LossConfig.from_config(base_config).to_dict() | given))
        loss_cfg.check(dyn)
    except (TypeError, ValueError) as e:
        raise TrainError(str(e)) from None
    train_eps = {n: ds.split(0.1, seed=0)[0] for n, ds in datasets.items()}
    if loss_cfg.state_weight > 0:  # a state head for each dataset that records state and has none yet
        for n, ds in datasets.items():
            rec = state_record(ds, train_eps[n])
            if n not in dyn.state_heads and rec is not None:
                embodiments[n] = {**embodiments[n], "state": rec}
                dyn.add_state_head(n, rec)
            elif n in dyn.state_heads and embodiments[n].get("state", {}).get("keys") != (rec or {}).get("keys"):
                raise TrainError(f"{n}: the dataset's state columns {(rec or {}).get('keys')} differ from those the "
                                 f"model's state head predicts ({embodiments[n]['state']['keys']})")
        if not dyn.state_heads:
            raise TrainError("--state-weight: no dataset records state (meta state_keys); leave it out")
    tok.to(device)
    dyn.to(device)  # before the optimizer is made, so its state lives beside the weights
    dyn.train()
    if opts.freeze_trunk:
        if not opts.init and not opts.resume:
            raise TrainError("--freeze-trunk needs --init CKPT")
        trainable = set()
        for n in datasets:
            trainable |= {id(p) for p in dyn.stems[n].parameters()} | {id(p) for p in dyn.heads[n].parameters()}
        for p in dyn.parameters():
            p.requires_grad_(id(p) in trainable)
    params = [p for p in dyn.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.05, betas=(0.9, 0.95))
    loss_fn = TrainingLoss(dyn, loss_cfg)  # the whole loss in one forward, so DDP sees every parameter it uses
    if world > 1:
        loss_fn = torch.nn.parallel.DistributedDataParallel(loss_fn, find_unused_parameters=True)

    # ---- data
    cache = token_cache_dir(opts.token_cache)
    tokenized = {n: TokenizedDataset(ds, tok, progress=rank == 0, device=device, cache=cache) for n, ds in datasets.items()}
    if rank == 0 and cache is not None:
        hits = sum(t.hits for t in tokenized.values())
        print(f"tokens: {hits} of {hits + sum(t.misses for t in tokenized.values())} dataset folders from the cache {cache}")
    T = dyn.cfg.window
    try:
        sampler = MixtureSampler(datasets, T, opts.batch_size, episodes=train_eps, seed=opts.seed + 1000 * rank,
                                 shares=_shares(opts.mixture))
    except DatasetError as e:
        raise TrainError(f"--mixture: {e}") from None
    step = 0
    out.mkdir(parents=True, exist_ok=True)
    if opts.resume:
        try:
            meta = load_train_state(state_path, opt, sampler.rng, dyn)
        except ValueError as e:
            raise TrainError(f"--resume: {state_path} does not fit this model ({e})") from None
        step = int(meta["step"])
        print(f"resumed {out} at step {step}")

    def config(extra: dict | None = None) -> dict:
        c = {"kind": "hma", "tokenizer": tok.cfg.to_dict(), "dynamics": dyn.cfg.to_dict(),
             "loss": loss_cfg.to_dict(), "embodiments": embodiments,
             "training": {"steps": step, "batch_size": opts.batch_size * world, "lr": opts.lr,
                          "data": sorted(datasets), "init": opts.init, "trunk": opts.trunk, "freeze_trunk": opts.freeze_trunk,
                          "precision": opts.precision, "command": opts.command}}
        c["training"].update(extra or {})
        return c

    def state_dict():
        return {k: v.detach().cpu() for k, v in model_state(tok, dyn).items()}

    def save(final: bool = False):
        if rank != 0:
            return
        save_checkpoint(out, state_dict(), config({"minutes": round(train_minutes(), 1)}),
                        dtype=torch.float16 if (final and opts.fp16) else None)
        save_train_state(state_path, opt, step, sampler.rng, {"args": asdict(opts)}, dyn)

    log_f = open(out / "train_log.csv", "a", newline="") if rank == 0 else None
    log = csv.writer(log_f) if log_f else None
    if log and step == 0:
        log.writerow(["step", "seconds", "embodiment", *LOGGED, "lr"])
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

    bar = tqdm(total=opts.steps, initial=step, desc="train", unit="step", disable=rank != 0)
    gen = torch.Generator(device=device)  # the masks are drawn where the batch is
    status = "done"
    while step < opts.steps:
        if opts.minutes and train_minutes() > opts.minutes:
            status = f"time budget of {opts.minutes} min reached"
            break
        name = sampler.names[sampler.rng.choice(len(sampler.names), p=sampler.weights)]
        starts = sampler.rng.choice(sampler.starts[name], size=opts.batch_size)
        codes, actions, valid, moving = (x.to(device, non_blocking=True) for x in tokenized[name].batch(starts, T))
        states = (tokenized[name].state_batch(starts, T).to(device)
                  if loss_cfg.state_weight > 0 and name in dyn.state_heads else None)
        gen.manual_seed((opts.seed * 1_000_003 + step) * 64 + rank)  # masks depend on (seed, step) only: exact resume
        lr = _lr(step, opts.steps, opts.lr, opts.warmup, train_minutes() / opts.minutes if opts.minutes else 0.0)
        for g in opt.param_groups:
            g["lr"] = lr
        with training_autocast(device, opts.precision):
            losses = loss_fn(name, codes, actions, valid, gen, moving, states)
        loss = losses["loss"].float()
        if not torch.isfinite(loss):
            kept = (f"the last good checkpoint in {out} (step {step - step % opts.save_every}) is kept"
                    if opts.save_every else f"nothing was written to {out} (--save-every 0)")
            status = f"non-finite loss ({loss.item()}) at step {step} on {name}: stopped; {kept}"
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
            row = [step, round(time.time() - t_start, 1), name] + [
                round(float(losses[k].detach()), 5) if k in losses else "" for k in LOGGED] + [lr]
            log.writerow(row)
            log_f.flush()
            bar.set_postfix(emb=name[:8], loss=f"{float(loss.detach()):.3f}", acc=f"{float(losses['token_acc']):.3f}")
            if tb:
                for k in LOGGED:
                    if k in losses:
                        tb.add_scalar(f"{k}/{name}", float(losses[k].detach()), step)
        if opts.save_every and step % opts.save_every == 0:
            save()
        if rank == 0 and opts.eval_every and step % opts.eval_every == 0 and device.type == "cpu":
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
    import torch

    from hma_ros.data.images import write_video
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
        for frame, chunk in w.steps(P):
            wm.observe(frame, chunk)
        imagined = wm.imagine(w.actions[P - 1:T - 1])
        score = float(psnr(torch.from_numpy(imagined), torch.from_numpy(w.frames[P:])).mean())
        if tb:
            tb.add_scalar(f"eval_psnr/{name}", score, step)
        frames = [np.concatenate([g, i], axis=1) for g, i in zip(w.frames[P:], imagined, strict=True)]
        write_video(frames, out / "samples" / f"{name}_step{step}.gif", fps=2.0)
        print(f"\n[eval step {step}] {name}: imagined PSNR {score:.2f} dB", flush=True)
