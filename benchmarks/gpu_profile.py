"""Where an imagined frame's GPU time goes at the paper's HMA-Base geometry (random weights):
CUDA-event times of the tokenizer decode (8 frames), the prefill and one cached pass of 1 and 2
slots, per precision and path; then torch.profiler's top kernels (GPU time) over one imagine()
of the last path. On the GPU machine: python3 benchmarks/gpu_profile.py [--out DIR] [--paths ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hma_ros.runtime.bench import geometry_config  # noqa: E402
from hma_ros.runtime.world_model import WorldModel, build_models  # noqa: E402

BASE = "layers=32,d=256,heads=16,grid=16,res=256"


def timed(fn, n: int = 10) -> float:
    """Median ms of fn() by CUDA events, after 3 warm-ups."""
    for _ in range(3):
        fn()
    out = []
    for _ in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return float(np.median(out))


def path_times(wm: WorldModel, frames: np.ndarray, fut: np.ndarray) -> dict:
    """CUDA-event ms of one path's parts: decode, prefill, a 1- and a 2-slot pass, imagine()."""
    dyn = wm.dyn
    for i, f in enumerate(frames):
        wm.observe(f, fut[0] if i else None)
    wm.imagine(fut)
    codes = torch.stack([c for c, _ in wm.history[-4:]], 1)[0]  # (4, S, K)
    codes8 = torch.cat([codes, codes], 0)
    a = wm._chunk(fut[0])[None]
    slots = list(wm.history[-4:])
    r = {}
    with torch.no_grad(), wm.autocast():
        r["decode_8_frames_ms"] = timed(lambda: wm.tok.decode(codes8))
        r["prefill_4_slots_ms"] = timed(lambda: wm._prefill(slots))
        cache = wm._prefill(slots)
        blank = dyn.tokens.blank(1, dyn.cfg.tokens_per_frame, "cuda")  # (1, 1, S, K)
        m1 = torch.ones(1, 1, dyn.cfg.tokens_per_frame, dtype=torch.bool, device="cuda")
        r["pass_1_slot_ms"] = timed(lambda: cache.forward(dyn, "pusht", blank, m1, a[:, None]))
        two = torch.cat([codes[None, -1:], blank], 1)
        m2 = torch.cat([torch.zeros_like(m1), m1], 1)
        a2 = torch.stack([a, a], 1)
        r["pass_2_slots_ms"] = timed(lambda: cache.forward(dyn, "pusht", two, m2, a2))
        r["imagine_8_frames_ms"] = timed(lambda: wm.imagine(fut), 5)
    return {k: round(v, 3) for k, v in r.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp")
    ap.add_argument("--paths", default="fp32:eager:off,fp32:graphs:off,bf16:graphs:default",
                    help="precision:graphs|eager:off|torch.compile mode of the blocks, comma-separated; the "
                         "kernel profile is of the last (--eager-profile: of eager fp32)")
    ap.add_argument("--eager-profile", action="store_true")
    args = ap.parse_args()
    config = geometry_config(BASE)
    torch.manual_seed(0)
    tok, dyn = build_models(config)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 256, 256, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (8, 5, 2))
    rows = {}
    paths = [tuple(x.split(":")) for x in args.paths.split(",")]
    wm = None
    for precision, graphs, comp in paths:
        graphs = graphs == "graphs"
        comp = {"off": False}.get(comp, comp)
        name = f"{precision} graphs={graphs} compile={comp}"
        try:
            wm = WorldModel(tok, dyn, config, "pusht", device="cuda", precision=precision, graphs=graphs, compile=comp)
            rows[name] = path_times(wm, frames, fut)
            rows[name]["imagined_fps"] = round(8000 / rows[name]["imagine_8_frames_ms"], 1)
        except Exception as e:  # noqa: BLE001 -- report it and go on
            rows[name] = {"error": f"{type(e).__name__}: {e}"[:400]}
        print(name, rows[name], flush=True)
        Path(args.out, "profile.json").write_text(json.dumps(rows, indent=2))
    if args.eager_profile or wm is None:
        wm = WorldModel(tok, dyn, config, "pusht", device="cuda")
        for i, f in enumerate(frames):
            wm.observe(f, fut[0] if i else None)
        wm.imagine(fut)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        wm.imagine(fut)
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)
    print(table)
    Path(args.out, "profile.json").write_text(json.dumps(rows, indent=2))
    Path(args.out, "profile_kernels.txt").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
