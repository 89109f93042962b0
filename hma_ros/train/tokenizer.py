"""Tokenizer training: the image tokenizer (FSQ codes, or continuous soft tokens for MAR) on
dataset frames, every embodiment equally often; optional extra loss weight on the pixels that
moved, optional hard-frame mining (a share of each batch from the frames whose worst token
patch the current model draws worst, re-ranked as it trains), and -- for a decoder alone -- a share
of each batch from a world model's imagined tokens paired with the true frames they stand for
(`train/imagined.py`). `hma train-tokenizer` (hma_ros/cli/train_tokenizer.py) parses its arguments into
`TokenizerTraining` and calls `train_tokenizer`.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hma_ros.train import TrainError, training_autocast, training_device


@dataclass
class TokenizerTraining:
    """The `hma train-tokenizer` options, same names and defaults."""

    data: list[str]
    out: str
    minutes: float = 15.0
    max_steps: int = 0
    batch_size: int = 32
    lr: float = 2e-3
    channels: str = "32,64,128"
    levels: str = "8,8,8,5,5,5"
    grid: int = 8
    kind: str = "fsq"
    latent_dim: int = 8
    motion_weight: float = 0.0
    init: str | None = None
    encoder: str | None = None  # "conv" | "local"; None: the --init tokenizer's, else "conv"
    decoder_only: bool = False
    hard_share: float = 0.0  # share of each batch drawn from the hardest frames (0: off)
    hard_every: int = 250  # steps between re-rankings of the hard frames
    imagined: str | None = None  # world model checkpoint whose imagined tokens the decoder also learns to draw
    imagined_share: float = 0.5  # share of each batch from those (imagined tokens -> true frame) pairs
    imagined_windows: int = 300  # rollouts per embodiment (training episodes); a tenth as many held out
    shift_weight: float = 0.0  # weight of the one-pixel-shift penalty on the code (model/tokenizer.shift_penalty)
    adv_weight: float = 0.0  # weight of the PatchGAN loss on decoded frames (train/adversarial.py; 0: off)
    adv_start: int = 200  # steps the discriminator learns alone before the decoder feels it
    seed: int = 0
    threads: int = 0
    device: str = "cpu"  # cpu | cuda[:N]: where the model and its batches live (frames are sampled on the host)
    precision: str = "fp32"  # fp32 | bf16: the training passes under bf16 autocast (weights and optimizer fp32)
    command: str = field(default="", compare=False)


def train_tokenizer(opts: TokenizerTraining) -> int:
    import torch
    from tqdm import tqdm

    from hma_ros.data.dataset import DatasetError, find_datasets
    from hma_ros.model.checkpoint import model_state, save_checkpoint
    from hma_ros.model.metrics import moving_pixels
    from hma_ros.model.tokenizer import (
        TokenizerConfig,
        build_tokenizer,
        psnr,
        shift_penalty,
        to_float,
        tokenizer_loss,
    )

    if not 0.0 <= opts.hard_share < 1.0:
        raise TrainError(f"--hard-share {opts.hard_share}: a share of the batch in [0, 1)")
    if opts.hard_every < 1:
        raise TrainError(f"--hard-every {opts.hard_every}: at least 1 step between re-rankings")
    if opts.imagined and not opts.decoder_only:
        raise TrainError("--imagined trains the decoder on the world model's tokens, which mean something only in "
                         "the code it was trained on: add --decoder-only (and --init with that code)")
    if not 0.0 < opts.imagined_share < 1.0 and opts.imagined:
        raise TrainError(f"--imagined-share {opts.imagined_share}: a share of the batch in (0, 1)")
    if opts.shift_weight and opts.decoder_only:
        raise TrainError("--shift-weight shapes the code (the encoder), which --decoder-only keeps bitwise: "
                         "drop one of them")
    if opts.shift_weight < 0:
        raise TrainError(f"--shift-weight {opts.shift_weight}: a weight >= 0")
    if opts.adv_weight < 0 or opts.adv_start < 0:
        raise TrainError(f"--adv-weight {opts.adv_weight} --adv-start {opts.adv_start}: both >= 0")
    if opts.imagined and opts.hard_share + opts.imagined_share >= 1.0:
        raise TrainError(f"--hard-share {opts.hard_share} + --imagined-share {opts.imagined_share} leave no real "
                         "frames in a batch: keep their sum below 1")
    device = training_device(opts.device)
    training_autocast(device, opts.precision)  # checked before anything is written
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    try:
        datasets = find_datasets(opts.data)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    res = {ds.meta["image_size"][0] for ds in datasets.values()}
    if len(res) != 1:
        raise TrainError(f"datasets have different frame sizes {sorted(res)}; convert them to one size")
    res_value = res.pop()
    try:
        cfg = TokenizerConfig(kind=opts.kind, resolution=res_value, grid=opts.grid,
                              channels=tuple(int(c) for c in opts.channels.split(",")),
                              levels=tuple(int(v) for v in opts.levels.split(",")), latent_dim=opts.latent_dim,
                              encoder=opts.encoder or "conv")
    except ValueError as e:  # e.g. --grid 16 at 64 px needs 2 --channels stages (one per halving)
        raise TrainError(f"tokenizer settings (--grid {opts.grid}, --channels {opts.channels}, --levels "
                         f"{opts.levels}) at the data's {res_value} px: {e}") from None
    model = build_tokenizer(cfg)
    if opts.init:
        from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, sub_state

        try:
            icfg, istate = load_checkpoint(opts.init)
            cfg = TokenizerConfig(**icfg["tokenizer"])
            state = sub_state(istate, "tokenizer")
            if opts.encoder and opts.encoder != cfg.encoder:  # another encoder: the convs carry over
                if opts.decoder_only:
                    raise TrainError(f"--decoder-only keeps the --init tokenizer's encoder ({cfg.encoder}); "
                                     f"drop --encoder {opts.encoder} or --decoder-only")
                cfg.encoder = opts.encoder
            model = build_tokenizer(cfg)
            own = model.state_dict()
            # a local encoder has no GroupNorms (a conv one's are dropped; going back, they start at 1, 0)
            state = {k: v for k, v in state.items() if k in own or not k.startswith("encoder.")}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or any(not isinstance(model.get_submodule(k.rsplit(".", 1)[0]), torch.nn.GroupNorm)
                                 for k in missing):
                raise RuntimeError(f"missing {missing[:4]}, unexpected {unexpected[:4]}")
        except (CheckpointError, KeyError, TypeError, RuntimeError) as e:
            raise TrainError(f"--init {opts.init}: no usable tokenizer ({str(e)[:200]})") from None
        if cfg.resolution != res_value:
            raise TrainError(f"--init {opts.init}: tokenizer is {cfg.resolution} px, the data {res_value} px")
    if opts.decoder_only:  # the encoder (the token code) stays bitwise; only how tokens are drawn learns
        if not opts.init:
            raise TrainError("--decoder-only needs --init: the tokenizer (or HMA checkpoint) whose tokens to keep")
        model.encoder.requires_grad_(False)
    model.to(device)
    train_idx, val_idx = {}, {}
    for name, ds in datasets.items():
        tr, va = ds.split(0.1, seed=0)
        fm = np.asarray(ds.arrays["frame_mask"])
        ep = np.asarray(ds.arrays["episode"])
        train_idx[name] = np.flatnonzero(fm & np.isin(ep, tr))
        val_idx[name] = np.flatnonzero(fm & np.isin(ep, va))[:256]
    names = list(datasets)
    episode = {n: np.asarray(ds.arrays["episode"]) for n, ds in datasets.items()}
    prev_ok = {n: np.asarray(ds.arrays["frame_mask"]).astype(bool) for n, ds in datasets.items()}
    hard = {}
    pairs, pairs_val = {}, {}
    if opts.imagined:
        pairs, pairs_val = imagined_data(model, datasets, opts, device)

    def moving_of(name, i):  # pixels that changed since the previous frame of the episode
        frames = datasets[name].arrays["frames"]
        prev = i - 1 if i > 0 and prev_ok[name][i - 1] and episode[name][i - 1] == episode[name][i] else i
        return moving_pixels(frames[i], frames[prev])

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=opts.lr, weight_decay=1e-4, betas=(0.9, 0.99))
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    log = csv.writer(open(out / "train_log.csv", "w", newline=""))
    log.writerow(["step", "seconds", "loss", "lr", "shift", "adv_g", "adv_d", "adv_w"])
    disc = d_opt = None
    if opts.adv_weight > 0:
        from hma_ros.train.adversarial import (
            PatchDiscriminator,
            adaptive_weight,
            discriminator_loss,
            generator_loss,
        )

        disc = PatchDiscriminator().to(device)
        d_opt = torch.optim.AdamW(disc.parameters(), lr=opts.lr, weight_decay=1e-4, betas=(0.5, 0.9))
    g_adv = d_adv = adv_w = None

    budget = opts.minutes * 60
    t0 = time.time()
    step = 0
    bar = tqdm(desc="tokenizer", unit="step", total=opts.max_steps or None)
    while True:
        elapsed = time.time() - t0
        if elapsed > budget or (opts.max_steps and step >= opts.max_steps):
            break
        frac = min(1.0, elapsed / budget) if not opts.max_steps else step / opts.max_steps
        lr = opts.lr * (min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if opts.hard_share > 0 and step % opts.hard_every == 0:
            hard = rank_hard_frames(model, datasets, train_idx, moving_of, opts, rng, device)
            model.train()
        batch, moving, tokens, truth = [], [], [], []
        n_hard = round(opts.hard_share * opts.batch_size)
        n_imagined = round(opts.imagined_share * opts.batch_size) if pairs else 0
        for b in range(opts.batch_size):  # every embodiment equally often
            if b >= opts.batch_size - n_imagined:  # imagined tokens -> the true frame they stand for
                name = list(pairs)[rng.integers(len(pairs))]
                j = int(rng.integers(len(pairs[name].frame_index)))
                i = int(pairs[name].frame_index[j])
                tokens.append(pairs[name].tokens[j])
                truth.append(datasets[name].arrays["frames"][i])
            else:
                name = names[rng.integers(len(names))]
                i = int(rng.choice(hard[name] if b < n_hard else train_idx[name]))
                batch.append(datasets[name].arrays["frames"][i])
            if opts.motion_weight > 0:
                moving.append(moving_of(name, i))
        with training_autocast(device, opts.precision):  # bf16 convolutions with --precision bf16; losses fp32
            recon, target = model(torch.from_numpy(np.stack(batch)).to(device))
            shift = shift_penalty(model, target) if opts.shift_weight > 0 else None
            if tokens:
                recon = torch.cat([recon, model.decode_float(torch.from_numpy(np.stack(tokens)).to(device))])
                target = torch.cat([target, to_float(torch.from_numpy(np.stack(truth)).to(device))])
        recon = recon.float()
        mv = torch.from_numpy(np.stack(moving)).to(device) if moving else None
        loss = tokenizer_loss(recon, target, mv, opts.motion_weight) + getattr(model, "last_latent_penalty", 0.0)
        if shift is not None:
            loss = loss + opts.shift_weight * shift.float()
        if disc is not None and step >= opts.adv_start:  # the decoder must draw frames the discriminator takes as real
            disc.requires_grad_(False)
            with training_autocast(device, opts.precision):
                g_adv = generator_loss(disc(recon)).float()
            adv_w = opts.adv_weight * adaptive_weight(loss, g_adv, model.decoder[-1].weight)
            loss = loss + adv_w * g_adv
            disc.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if disc is not None:  # real frames against this step's decoded ones (imagined tokens' too)
            with training_autocast(device, opts.precision):
                d_adv = discriminator_loss(disc(target), disc(recon.detach())).float()
            d_opt.zero_grad(set_to_none=True)
            d_adv.backward()
            d_opt.step()
        step += 1
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log.writerow([step, round(time.time() - t0, 1), round(loss.item(), 5), lr,
                          round(shift.item(), 5) if shift is not None else ""]
                         + [round(v.item(), 5) if v is not None else "" for v in (g_adv, d_adv, adv_w)])
    bar.close()
    model.eval().cpu()  # validated and saved on the CPU, as every checkpoint
    if cfg.kind == "continuous" and not opts.decoder_only:  # bring soft tokens to ~unit std for the diffusion head
        with torch.no_grad():
            sample = torch.from_numpy(np.stack([datasets[n].arrays["frames"][int(i)] for n in names
                                                for i in train_idx[n][:64]]))
            cfg.latent_scale = 1.0
            cfg.latent_scale = float(1.0 / model.encode(sample).std().clamp_min(1e-6))
    report = {}
    with torch.no_grad():
        for name, ds in datasets.items():
            x = torch.from_numpy(np.asarray(ds.arrays["frames"][val_idx[name]]))
            rec = torch.cat([model.decode(model.encode(x[i:i + 64])) for i in range(0, len(x), 64)])
            report[name] = round(float(psnr(rec, x).mean()), 2)
    imagined_report = imagined_psnr(model, datasets, pairs_val) if pairs_val else {}
    if pairs_val:
        for name, (before, after) in imagined_report.items():
            print(f"imagined tokens of {name}'s held-out rollouts drawn against the true frames: "
                  f"PSNR {before} dB with the --init decoder, {after} dB now")
    minutes = (time.time() - t0) / 60
    config = {"kind": "tokenizer", "tokenizer": cfg.to_dict(),
              "training": {"steps": step, "minutes": round(minutes, 1), "batch_size": opts.batch_size,
                           "motion_weight": opts.motion_weight, "init": opts.init,
                           "decoder_only": opts.decoder_only, "hard_share": opts.hard_share,
                           "imagined": opts.imagined, "imagined_share": opts.imagined_share if opts.imagined else 0.0,
                           "imagined_psnr": imagined_report, "shift_weight": opts.shift_weight,
                           "adv_weight": opts.adv_weight, "adv_start": opts.adv_start if opts.adv_weight else 0,
                           "precision": opts.precision,
                           "data": sorted(datasets), "val_psnr": report,
                           "command": opts.command}}
    save_checkpoint(out, model_state(model), config)
    (out / "tokenizer_eval.json").write_text(json.dumps(report, indent=2))
    print(f"tokenizer: {step} steps in {minutes:.1f} min; held-out reconstruction PSNR (dB): "
          + ", ".join(f"{k} {v}" for k, v in report.items()))
    print(f"saved {out}")
    return 0


HARD_POOL = 1024  # frames per embodiment scored at each re-ranking
HARD_TOP = 64  # of them, the worst-drawn ones a hard draw picks from


def rank_hard_frames(model, datasets, train_idx, moving_of, opts, rng, device) -> dict:
    """Per embodiment, the HARD_TOP frames (of HARD_POOL drawn at random from its training frames)
    whose worst token patch the model draws worst now (`worst_patch_loss`, the training loss's own
    weights). Rare frames a uniform batch almost never shows -- PushT's agent against the block,
    or half out of the frame -- are where a tokenizer drops the agent."""
    import torch

    from hma_ros.model.tokenizer import worst_patch_loss

    model.eval()
    patch = model.cfg.resolution // model.cfg.grid
    hard = {}
    with torch.no_grad():
        for name, ds in datasets.items():
            idx = rng.choice(train_idx[name], size=min(HARD_POOL, len(train_idx[name])), replace=False)
            idx.sort()
            scores = []
            for j in range(0, len(idx), 128):
                part = idx[j:j + 128]
                x = torch.from_numpy(np.stack([ds.arrays["frames"][int(i)] for i in part])).to(device)
                mv = (torch.from_numpy(np.stack([moving_of(name, int(i)) for i in part])).to(device)
                      if opts.motion_weight > 0 else None)
                recon, target = model(x)
                scores.append(worst_patch_loss(recon, target, patch, mv, opts.motion_weight).cpu().numpy())
            hard[name] = idx[np.argsort(np.concatenate(scores))[::-1][:HARD_TOP]]
    return hard


def imagined_data(model, datasets, opts, device) -> tuple[dict, dict]:
    """The --imagined pairs: `imagined_windows` rollouts per embodiment from the training episodes
    (the split every trainer uses) and a tenth as many from the held-out ones, after checking
    that the world model's tokenizer gives frames the same tokens as the one being trained. Each
    held-out pair also keeps the --init decoder's PSNR, so the report can say what changed."""
    import torch
    from tqdm import tqdm

    from hma_ros.train.imagined import imagined_pairs, same_code

    probe = np.stack([ds.arrays["frames"][int(i)] for ds in datasets.values()
                      for i in np.flatnonzero(np.asarray(ds.arrays["frame_mask"]))[:8]])
    if not same_code(model, opts.imagined, probe):
        raise TrainError(f"--imagined {opts.imagined}: its tokenizer gives frames other tokens than --init "
                         f"{opts.init}'s; the decoder must learn the code the world model imagines in (--init it)")
    split = {n: ds.split(0.1, seed=0) for n, ds in datasets.items()}
    n_val = max(1, opts.imagined_windows // 10)
    with tqdm(desc="imagining (training episodes)", unit="window") as bar:
        pairs = imagined_pairs(opts.imagined, datasets, {n: s[0] for n, s in split.items()},
                               opts.imagined_windows, seed=opts.seed, progress=bar.update, device=str(device))
    with tqdm(desc="imagining (held-out episodes)", unit="window") as bar:
        pairs_val = imagined_pairs(opts.imagined, datasets, {n: s[1] for n, s in split.items()},
                                   n_val, seed=opts.seed + 1, progress=bar.update, device=str(device))
    before = imagined_psnr(model, datasets, pairs_val, device)
    pairs_val = {n: (p, before[n]) for n, p in pairs_val.items()}
    torch.manual_seed(opts.seed)  # the rollouts drew from the global generator: training starts as without them
    return pairs, pairs_val


def imagined_psnr(model, datasets, pairs_val, device="cpu") -> dict:
    """Mean PSNR (dB) of the decoded held-out imagined tokens against their true frames, per
    embodiment; with pairs_val holding (pairs, before) tuples, {name: [before, now]}."""
    import torch

    from hma_ros.model.tokenizer import psnr

    was = model.training
    model.eval()
    out = {}
    with torch.no_grad():
        for name, entry in pairs_val.items():
            pairs, before = entry if isinstance(entry, tuple) else (entry, None)
            vals = []
            for j in range(0, len(pairs.frame_index), 64):
                tok = torch.from_numpy(pairs.tokens[j:j + 64]).to(device)
                truth = torch.from_numpy(np.stack([datasets[name].arrays["frames"][int(i)]
                                                   for i in pairs.frame_index[j:j + 64]])).to(device)
                vals.append(psnr(model.decode(tok), truth).cpu())
            now = round(float(torch.cat(vals).mean()), 2)
            out[name] = now if before is None else [before, now]
    model.train(was)
    return out
