"""Speed and memory of a world model (the library behind `hma bench`): imagined frames/s and ms
per 2 Hz step at batch 1 (or B futures imagined at once: `batch`), with and without the KV cache, FLOPs per imagined frame (torch's
FlopCounterMode over a whole imagine(), tokenizer decode and context prefill included), the
share of the device's measured matmul peak, peak RSS. Any geometry with random weights
(`geometry_config`), or a checkpoint.
"""

from __future__ import annotations

import platform
import resource
import time

import numpy as np


class BenchError(ValueError):
    """A benchmark that cannot run as asked (the message says why)."""


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


def matmul_peak_gflops(device: str, n: int = 1024, repeats: int = 20, precision: str = "fp32") -> float:
    """Measured matmul throughput of this device (GFLOP/s) in the model's precision: the figure a
    model's achieved FLOP rate is compared with. A GPU gets 8192x8192 products (1024 leaves it
    idle between launches); fp32 there runs as torch runs it by default (no TF32). A CPU is
    measured in the precision too: one with bf16 units (AVX512_BF16, AMX) multiplies bf16 ~2.4x
    faster than fp32, and a bf16 run's share must be of that peak."""
    import torch

    from hma_ros.runtime.world_model import PRECISIONS

    dtype = PRECISIONS[precision]
    n = 8192 if device.startswith("cuda") else n
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
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


def _futures(chunk: np.ndarray, horizon: int, batch: int) -> np.ndarray:
    fut = np.repeat(chunk[None], horizon, 0)
    return fut if batch == 1 else np.repeat(fut[None], batch, 0)


def flops_per_frame(wm, horizon: int, batch: int = 1) -> float:
    """FLOPs of one imagine() of `horizon` frames (prefill, unmasking passes, decode), per frame
    (per imagined frame of every future when batch > 1)."""
    from torch.utils.flop_counter import FlopCounterMode

    rng = np.random.default_rng(0)
    h, w = wm.image_size
    chunk = wm.mean_chunk()
    wm.reset(0)
    for t in range(wm.window - 1):
        wm.observe(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), chunk if t else None)
    with FlopCounterMode(display=False) as counter:
        wm.imagine(_futures(chunk, horizon, batch))
    return counter.get_total_flops() / (horizon * batch)


def measure(wm, horizon: int, repeats: int, batch: int = 1) -> dict:
    rng = np.random.default_rng(0)
    h, w = wm.image_size
    frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    chunk = wm.mean_chunk()
    wm.reset(0)
    for t in range(wm.window - 1):  # a full window of history: the steady state on a robot
        wm.observe(frame, chunk if t else None)
    fut = _futures(chunk, horizon, batch)
    wm.imagine(fut)  # warm-up
    per_step, per_frame = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        wm.observe(frame, chunk)
        t1 = time.perf_counter()
        wm.imagine(fut)
        t2 = time.perf_counter()
        per_step.append(t2 - t0)
        per_frame.append((t2 - t1) / (horizon * batch))
    return {"imagined_fps": round(1.0 / float(np.median(per_frame)), 2),
            "ms_per_step": round(1e3 * float(np.median(per_step)), 1),
            "ms_per_frame": round(1e3 * float(np.median(per_frame)), 2)}


def benchmark(ckpt: str | None = None, geometry: str | None = None, device: str = "cpu",
              embodiment: str | None = None, horizon: int = 8, repeats: int = 5, steps: int = 2,
              ddim_steps: int = 0, batch: int = 1, precision: str = "fp32", graphs: bool = False,
              compile: bool | str = False) -> dict:
    """Measure one model (a checkpoint, or random weights of `geometry`); returns the figures.
    batch > 1: that many futures from the same history per imagine() (planning); frames/s count
    every future's frames, ms per step is the whole batch's. graphs: the cached passes through
    fixed-shape KV caches, replayed as CUDA graphs on a CUDA device (WorldModel(graphs=True));
    compile: each block of a graphed pass through torch.compile (True, or a torch.compile mode),
    WorldModel(compile=...)."""
    import torch

    from hma_ros.model.checkpoint import CheckpointError, load_checkpoint
    from hma_ros.runtime.world_model import WorldModel, build_models

    if bool(ckpt) == bool(geometry):
        raise BenchError("give either --ckpt CHECKPOINT or --geometry layers=..,d=..,heads=..,grid=..")
    if batch < 1:
        raise BenchError(f"--batch must be >= 1, got {batch}")
    from hma_ros.runtime.device import DeviceError, cpu_has_bf16, resolve_device

    try:
        device = str(resolve_device(device, "--device"))
    except DeviceError as e:
        raise BenchError(str(e)) from None
    try:
        if geometry:
            config = geometry_config(geometry)
            torch.manual_seed(0)
            tok, dyn = build_models(config)
            emb = "pusht"
            wm = WorldModel(tok, dyn, config, emb, device=device, mask_steps=steps,
                            name=f"random weights, {geometry}", precision=precision, graphs=graphs,
                            compile=compile)
        else:
            config, _ = load_checkpoint(ckpt)
            emb = embodiment or next(iter(config.get("embodiments", {})), None)
            if emb is None:
                raise BenchError(f"{ckpt}: no embodiments (tokenizer-only checkpoint?)")
            wm = WorldModel.load(ckpt, emb, mask_steps=steps, device=device, precision=precision, graphs=graphs,
                                 compile=compile)
        if ddim_steps:
            wm.dyn.cfg.ddim_steps = ddim_steps
    except (CheckpointError, ValueError) as e:
        raise BenchError(str(e)) from None
    cached = measure(wm, horizon, repeats, batch)
    wm.use_cache = False
    uncached = measure(wm, horizon, max(2, repeats // 2), batch)
    params = sum(p.numel() for p in wm.dyn.parameters()) + sum(p.numel() for p in wm.tok.parameters())
    wm.use_cache = True
    wm.graphs = False  # counted eagerly: a graph's replay runs no operator the counter sees
    flops = flops_per_frame(wm, horizon, batch)  # the cached path: what a robot runs
    wm.graphs = graphs
    peak = matmul_peak_gflops(device, precision=precision)
    return {
        "checkpoint": str(ckpt) if ckpt else None, "geometry": geometry,
        "embodiment": emb, "device": device_name() if device == "cpu" else torch.cuda.get_device_name(),
        "cpu_bf16_units": cpu_has_bf16() if device == "cpu" else None,
        "torch_threads": torch.get_num_threads(), "batch": batch, "precision": precision, "graphs": graphs, "compile": compile,
        "horizon": horizon,
        "mask_steps": steps, "params_millions": round(params / 1e6, 2),
        "tokens": wm.dyn.cfg.token_kind, "ddim_steps": wm.dyn.cfg.ddim_steps if wm.dyn.continuous else None,
        "kv_cache": cached, "no_cache": uncached,
        "kv_cache_speedup": round(uncached["ms_per_frame"] / cached["ms_per_frame"], 2),
        "gflops_per_frame": round(flops / 1e9, 3),
        "matmul_peak_gflops": round(peak, 1),
        "share_of_matmul_peak": round(flops / 1e9 * cached["imagined_fps"] / peak, 3),
        "tokens_per_frame": wm.dyn.cfg.tokens_per_frame, "layers": wm.dyn.cfg.n_layers, "d_model": wm.dyn.cfg.d_model,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
