"""`hma bench --ckpt C`: imagined frames/s and ms per 2 Hz step at batch 1, with and without the
KV cache, peak RSS, and the device; JSON to stdout (and --json FILE)."""

from __future__ import annotations

import json
import platform
import resource
import time

import numpy as np


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="speed and memory of a checkpoint", description=__doc__)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--embodiment", help="default: the checkpoint's first")
    p.add_argument("--horizon", type=int, default=8, help="imagined frames per 2 Hz step (K)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="MaskGIT unmasking steps per frame")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--ddim-steps", type=int, default=0, help="MAR models: DDIM steps (default: the checkpoint's)")
    p.add_argument("--json", help="also write the JSON here")
    p.set_defaults(func=run)


def device_name() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu} ({os.cpu_count()} cores)"


def measure(wm, horizon: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    h, w = wm.image_size
    frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    stats = wm.config["embodiments"][wm.embodiment]["stats"]
    chunk = np.asarray(stats["mean"], np.float32)[None].repeat(wm.stride, 0)
    wm.reset(0)
    for t in range(wm.window - 1):  # a full window of history: the steady state on a robot
        wm.observe(frame, chunk if t else None)
    wm.imagine(np.repeat(chunk[None], horizon, 0))  # warm-up
    per_step, per_frame = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        wm.observe(frame, chunk)
        t1 = time.perf_counter()
        wm.imagine(np.repeat(chunk[None], horizon, 0))
        t2 = time.perf_counter()
        per_step.append(t2 - t0)
        per_frame.append((t2 - t1) / horizon)
    return {"imagined_fps": round(1.0 / float(np.median(per_frame)), 2),
            "ms_per_step": round(1e3 * float(np.median(per_step)), 1),
            "ms_per_frame": round(1e3 * float(np.median(per_frame)), 2)}


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint
    from hma_ros.runtime.world_model import WorldModel

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config, _ = load_checkpoint(args.ckpt)
        emb = args.embodiment or next(iter(config.get("embodiments", {})), None)
        if emb is None:
            raise CliError(f"{args.ckpt}: no embodiments (tokenizer-only checkpoint?)")
        wm = WorldModel.load(args.ckpt, emb, mask_steps=args.steps)
        if args.ddim_steps:
            wm.dyn.cfg.ddim_steps = args.ddim_steps
    except (CheckpointError, ValueError) as e:
        raise CliError(str(e)) from None
    cached = measure(wm, args.horizon, args.repeats)
    wm.use_cache = False
    uncached = measure(wm, args.horizon, max(2, args.repeats // 2))
    params = sum(p.numel() for p in wm.dyn.parameters()) + sum(p.numel() for p in wm.tok.parameters())
    result = {
        "checkpoint": str(args.ckpt), "embodiment": emb, "device": device_name(),
        "torch_threads": torch.get_num_threads(), "batch": 1, "horizon": args.horizon,
        "mask_steps": args.steps, "params_millions": round(params / 1e6, 2),
        "tokens": wm.dyn.cfg.token_kind, "ddim_steps": wm.dyn.cfg.ddim_steps if wm.dyn.continuous else None,
        "kv_cache": cached, "no_cache": uncached,
        "kv_cache_speedup": round(uncached["ms_per_frame"] / cached["ms_per_frame"], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        open(args.json, "w").write(text + "\n")
    return 0
