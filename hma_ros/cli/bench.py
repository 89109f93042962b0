"""`hma bench`: imagined frames/s and ms per 2 Hz step at batch 1, with and without the KV cache,
FLOPs per imagined frame (counted by torch's FlopCounterMode over a whole imagine(), tokenizer
decode and context prefill included) and the share of the device's matmul peak it reaches (peak
measured here with a 1024x1024 fp32 matmul), peak RSS; JSON to stdout (and --json FILE).

    hma bench --ckpt models/hma_discrete_small
    hma bench --geometry layers=8,d=256,heads=8,grid=8          # random weights, any size
    hma bench --geometry layers=32,d=256,heads=16,grid=16,res=256  # the paper's HMA-Base shape

--geometry keys: layers, d, heads, grid (tokens per side), res (frame side, default 8*grid),
action_tokens (1: concat + modulate, the default; 0: modulate only), window, prompt, levels
(FSQ levels, '-'-separated, default 8-8-8-5-5-5)."""

from __future__ import annotations

import json
import platform
import resource
import time

import numpy as np


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="speed and memory of a checkpoint", description=__doc__)
    p.add_argument("--ckpt", help="a checkpoint (or give --geometry)")
    p.add_argument("--geometry", help="random weights of this shape instead of a checkpoint, e.g. "
                                      "layers=8,d=256,heads=8,grid=8 (see above)")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default %(default)s)")
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


GEOMETRY_KEYS = ("layers", "d", "heads", "grid", "res", "action_tokens", "window", "prompt", "levels")


def geometry_config(text: str) -> dict:
    """A checkpoint config (random weights) of the shape `text` ('layers=8,d=256,...')."""
    from hma_ros.cli import CliError

    g = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, _, v = part.partition("=")
        if k not in GEOMETRY_KEYS or not v:
            raise CliError(f"--geometry: bad item {part!r}; keys are {', '.join(GEOMETRY_KEYS)} (key=value)")
        g[k] = v
    try:
        levels = [int(x) for x in g.get("levels", "8-8-8-5-5-5").split("-")]
        grid = int(g.get("grid", 8))
        res = int(g.get("res", 8 * grid))
        d, layers, heads = int(g.get("d", 192)), int(g.get("layers", 4)), int(g.get("heads", 4))
        concat = int(g.get("action_tokens", 1))
        window, prompt = int(g.get("window", 12)), int(g.get("prompt", 4))
    except ValueError as e:
        raise CliError(f"--geometry: {e}") from None
    stages = max(1, int(np.log2(max(1, res // grid))))
    channels = [min(256, 32 * 2 ** i) for i in range(stages)]
    emb = {"pusht": {"stride": 5, "action_dim": 2, "action_hz": 10.0,
                     "stats": {"mean": [256.0, 256.0], "std": [128.0, 128.0], "min": [0.0, 0.0], "max": [512.0, 512.0]}}}
    return {"kind": "hma",
            "tokenizer": {"kind": "fsq", "resolution": res, "grid": grid, "channels": channels, "levels": levels},
            "dynamics": {"d_model": d, "n_layers": layers, "n_heads": heads, "window": window, "prompt": prompt,
                         "tokens_per_frame": grid * grid, "levels": levels,
                         "conditioning": "modulate+concat" if concat else "modulate"},
            "embodiments": emb}


def matmul_peak_gflops(device: str, n: int = 1024, repeats: int = 20) -> float:
    """Measured fp32 matmul throughput of this device (GFLOP/s): the figure a model's achieved
    FLOP rate is compared with."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def flops_per_frame(wm, horizon: int) -> float:
    """FLOPs of one imagine() of `horizon` frames (prefill, unmasking passes, decode), per frame."""
    from torch.utils.flop_counter import FlopCounterMode

    rng = np.random.default_rng(0)
    h, w = wm.image_size
    stats = wm.config["embodiments"][wm.embodiment]["stats"]
    chunk = np.asarray(stats["mean"], np.float32)[None].repeat(wm.stride, 0)
    wm.reset(0)
    for t in range(wm.window - 1):
        wm.observe(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), chunk if t else None)
    with FlopCounterMode(display=False) as counter:
        wm.imagine(np.repeat(chunk[None], horizon, 0))
    return counter.get_total_flops() / horizon


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
    if bool(args.ckpt) == bool(args.geometry):
        raise CliError("give either --ckpt CHECKPOINT or --geometry layers=..,d=..,heads=..,grid=..")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device is visible to torch here")
    try:
        if args.geometry:
            from hma_ros.runtime.world_model import build_models

            config = geometry_config(args.geometry)
            torch.manual_seed(0)
            tok, dyn = build_models(config)
            emb = "pusht"
            wm = WorldModel(tok, dyn, config, emb, device=args.device, mask_steps=args.steps,
                            name=f"random weights, {args.geometry}")
        else:
            config, _ = load_checkpoint(args.ckpt)
            emb = args.embodiment or next(iter(config.get("embodiments", {})), None)
            if emb is None:
                raise CliError(f"{args.ckpt}: no embodiments (tokenizer-only checkpoint?)")
            wm = WorldModel.load(args.ckpt, emb, mask_steps=args.steps, device=args.device)
        if args.ddim_steps:
            wm.dyn.cfg.ddim_steps = args.ddim_steps
    except (CheckpointError, ValueError) as e:
        raise CliError(str(e)) from None
    cached = measure(wm, args.horizon, args.repeats)
    wm.use_cache = False
    uncached = measure(wm, args.horizon, max(2, args.repeats // 2))
    params = sum(p.numel() for p in wm.dyn.parameters()) + sum(p.numel() for p in wm.tok.parameters())
    wm.use_cache = True
    flops = flops_per_frame(wm, args.horizon)  # the cached path: what a robot runs
    peak = matmul_peak_gflops(args.device)
    result = {
        "checkpoint": str(args.ckpt) if args.ckpt else None, "geometry": args.geometry,
        "embodiment": emb, "device": device_name() if args.device == "cpu" else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(), "batch": 1, "horizon": args.horizon,
        "mask_steps": args.steps, "params_millions": round(params / 1e6, 2),
        "tokens": wm.dyn.cfg.token_kind, "ddim_steps": wm.dyn.cfg.ddim_steps if wm.dyn.continuous else None,
        "kv_cache": cached, "no_cache": uncached,
        "kv_cache_speedup": round(uncached["ms_per_frame"] / cached["ms_per_frame"], 2),
        "gflops_per_frame": round(flops / 1e9, 3),
        "matmul_peak_gflops": round(peak, 1),
        "share_of_matmul_peak": round(flops / 1e9 * cached["imagined_fps"] / peak, 3),
        "tokens_per_frame": wm.dyn.cfg.tokens_per_frame, "layers": wm.dyn.cfg.n_layers, "d_model": wm.dyn.cfg.d_model,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        open(args.json, "w").write(text + "\n")
    return 0
