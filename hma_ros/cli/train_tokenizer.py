"""`hma train-tokenizer`: train the discrete (FSQ) image tokenizer on dataset frames.

    hma train-tokenizer --data data/sim --out runs/tokenizer --minutes 15
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="train the image tokenizer", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, nargs="+", help="dataset folders (or folders of datasets)")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=15.0, help="time budget (default %(default)s)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: time budget only)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--channels", default="32,64,128")
    p.add_argument("--levels", default="8,8,8,5,5,5")
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--kind", default="fsq", choices=("fsq", "continuous"),
                   help="fsq: discrete tokens (MaskGIT); continuous: soft tokens (MAR)")
    p.add_argument("--latent-dim", type=int, default=8, help="continuous: channels per soft token")
    p.add_argument("--motion-weight", type=float, default=0.0,
                   help="extra loss weight on pixels that changed since the episode's previous frame "
                        "(what the actions move; 0: off)")
    p.add_argument("--init", help="continue from this checkpoint's tokenizer (same architecture)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch
    from tqdm import tqdm

    from hma_ros.cli import CliError
    from hma_ros.data.dataset import DatasetError, find_datasets
    from hma_ros.model.checkpoint import save_checkpoint
    from hma_ros.model.metrics import moving_pixels
    from hma_ros.model.tokenizer import TokenizerConfig, build_tokenizer, psnr, tokenizer_loss

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    try:
        datasets = find_datasets(args.data)
    except DatasetError as e:
        raise CliError(str(e)) from None
    res = {ds.meta["image_size"][0] for ds in datasets.values()}
    if len(res) != 1:
        raise SystemExit(f"datasets have different frame sizes {res}; convert them to one size")
    res_value = res.pop()
    cfg = TokenizerConfig(kind=args.kind, resolution=res_value, grid=args.grid,
                          channels=tuple(int(c) for c in args.channels.split(",")),
                          levels=tuple(int(v) for v in args.levels.split(",")), latent_dim=args.latent_dim)
    model = build_tokenizer(cfg)
    if args.init:
        from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, sub_state

        try:
            icfg, istate = load_checkpoint(args.init)
            cfg = TokenizerConfig(**icfg["tokenizer"])
            model = build_tokenizer(cfg)
            model.load_state_dict(sub_state(istate, "tokenizer"))
        except (CheckpointError, KeyError, TypeError, RuntimeError) as e:
            raise CliError(f"--init {args.init}: no usable tokenizer ({str(e)[:200]})") from None
        if cfg.resolution != res_value:
            raise CliError(f"--init {args.init}: tokenizer is {cfg.resolution} px, the data {res_value} px")
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
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4, betas=(0.9, 0.99))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = csv.writer(open(out / "train_log.csv", "w", newline=""))
    log.writerow(["step", "seconds", "loss", "lr"])
    budget = args.minutes * 60
    t0 = time.time()
    step = 0
    bar = tqdm(desc="tokenizer", unit="step", total=args.max_steps or None)
    while True:
        elapsed = time.time() - t0
        if elapsed > budget or (args.max_steps and step >= args.max_steps):
            break
        frac = min(1.0, elapsed / budget) if not args.max_steps else step / args.max_steps
        lr = args.lr * (min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch, moving = [], []
        for _ in range(args.batch_size):  # every embodiment equally often
            name = names[rng.integers(len(names))]
            i = int(rng.choice(train_idx[name]))
            frames = datasets[name].arrays["frames"]
            batch.append(frames[i])
            if args.motion_weight > 0:  # pixels that changed since the previous frame of the episode
                prev = i - 1 if i > 0 and prev_ok[name][i - 1] and episode[name][i - 1] == episode[name][i] else i
                moving.append(moving_pixels(frames[i], frames[prev]))
        x = torch.from_numpy(np.stack(batch))
        recon, target = model(x)
        mv = torch.from_numpy(np.stack(moving)) if moving else None
        loss = tokenizer_loss(recon, target, mv, args.motion_weight) + getattr(model, "last_latent_penalty", 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log.writerow([step, round(time.time() - t0, 1), round(loss.item(), 5), lr])
    bar.close()
    model.eval()
    if cfg.kind == "continuous":  # bring soft tokens to ~unit std for the diffusion head
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
    minutes = (time.time() - t0) / 60
    config = {"kind": "tokenizer", "tokenizer": cfg.to_dict(),
              "training": {"steps": step, "minutes": round(minutes, 1), "batch_size": args.batch_size,
                           "motion_weight": args.motion_weight, "init": args.init,
                           "data": sorted(datasets), "val_psnr": report,
                           "command": "hma train-tokenizer " + " ".join(f"{a}" for a in __import__("sys").argv[2:])}}
    save_checkpoint(out, {f"tokenizer.{k}": v for k, v in model.state_dict().items()}, config)
    (out / "tokenizer_eval.json").write_text(json.dumps(report, indent=2))
    print(f"tokenizer: {step} steps in {minutes:.1f} min; held-out reconstruction PSNR (dB): "
          + ", ".join(f"{k} {v}" for k, v in report.items()))
    print(f"saved {out}")
    return 0
