"""Imagination speed on a CUDA GPU, path by path, in one process (one lent-GPU call; see
benchmarks/gpu_session.sh GPU_STAGE=graphs):

1. Agreement: the paper's HMA-Base geometry with random weights (adaLN made non-zero, so every
   block really computes), the same observed frames and futures, imagined by each path; the
   share of tokens each path draws like the plain KV-cache path of the same precision, and of
   fp32 (a graph replays the same kernels, so same-precision paths should agree exactly or
   nearly: float sums over a padded key buffer may round differently).
2. Speed: `hma bench` (runtime.bench.benchmark) for the graph paths: CUDA graphs (--graphs),
   graphs + whole compiled blocks (--compile [max-autotune-no-cudagraphs]), in fp32 and bf16;
   the shipped checkpoint at batch 1 and 16.
Speed runs first (the headline), then agreement; each path's JSON is written as it ends.

    python3 benchmarks/gpu_graphs.py --out out/gpu/res    # on the GPU machine
    DEV=cpu python3 benchmarks/gpu_graphs.py --out /tmp/g --small   # a dry run on any machine

Prints a table last; JSON per path under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hma_ros.runtime.bench import benchmark, geometry_config  # noqa: E402
from hma_ros.runtime.world_model import WorldModel, build_models  # noqa: E402

BASE = "layers=32,d=256,heads=16,grid=16,res=256"
SMALL = "layers=2,d=64,heads=4,grid=4,res=32"
PATHS = [  # (name, precision, graphs, compile: False | torch.compile mode of the blocks)
    ("eager fp32", "fp32", False, False),
    ("graphs fp32", "fp32", True, False),
    ("graphs+blocks fp32", "fp32", True, "default"),
    ("eager bf16", "bf16", False, False),
    ("graphs bf16", "bf16", True, False),
    ("graphs+blocks bf16", "bf16", True, "default"),
    ("graphs+blocks-autotune bf16", "bf16", True, "max-autotune-no-cudagraphs"),
]


def agreement(geometry: str, device: str, names: list[str]) -> list[dict]:
    """Tokens each path draws vs the eager path of the same precision (and vs eager fp32)."""
    config = geometry_config(geometry)
    torch.manual_seed(0)
    tok, dyn = build_models(config)
    for blk in dyn.trunk.blocks:  # non-zero adaLN: every sub-layer contributes
        torch.nn.init.normal_(blk.ada.weight, std=0.02)
        torch.nn.init.normal_(blk.ada.bias, std=0.3)
    rng = np.random.default_rng(0)
    res = config["tokenizer"]["resolution"]
    frames = rng.integers(0, 255, (6, res, res, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (8, 5, 2))
    codes = {}
    rows = []
    for name, precision, graphs, comp in PATHS:
        if name not in names:
            continue
        t = time.perf_counter()
        try:
            wm = WorldModel(tok, dyn, config, "pusht", device=device, seed=3, render="tokens",
                            precision=precision, graphs=graphs, compile=comp)
            for i, f in enumerate(frames):
                wm.observe(f, fut[0] if i else None)
            drawn = []  # the imagined tokens, captured from the tokenizer's decode input
            decode = wm.tok.decode

            def spy(c, _decode=decode, _drawn=drawn):
                _drawn.append(c.detach().cpu())
                return _decode(c)

            wm.tok.decode = spy
            wm.imagine(fut)
            del wm.tok.decode  # the class method again
            codes[name] = drawn[0]
            ref = codes.get(f"eager {precision}", codes[name])
            fp32 = codes.get("eager fp32", codes[name])
            rows.append({"path": name, "same_tokens_as_eager_same_precision": float((codes[name] == ref).all(-1).float().mean()),
                         "same_tokens_as_eager_fp32": float((codes[name] == fp32).all(-1).float().mean()),
                         "seconds_first_imagine": round(time.perf_counter() - t, 1)})
        except Exception as e:  # noqa: BLE001 -- report and go on with the other paths
            rows.append({"path": name, "error": f"{type(e).__name__}: {e}"[:400]})
            traceback.print_exc()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true", help="a tiny geometry (dry run)")
    ap.add_argument("--ckpt", default="models/hma_discrete_moves")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--time", default="graphs+blocks bf16,graphs bf16,graphs+blocks fp32",
                    help="the HMA-Base paths to time (names as in PATHS, comma-separated)")
    ap.add_argument("--agree", default="eager fp32,graphs+blocks fp32,eager bf16,graphs bf16,graphs+blocks bf16",
                    help="the paths whose tokens are compared (names as in PATHS; '' for none)")
    args = ap.parse_args()
    device = os.environ.get("DEV", "cuda")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    geometry = SMALL if args.small else BASE
    if device == "cuda":
        print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    table = []
    # eager paths are left out of the timing (HMA-Base on an H200: fp32 14.0 frames/s, bf16 6.3)
    by_name = {n: (p, g, c) for n, p, g, c in PATHS}
    runs = [(f"base {n}", dict(geometry=geometry, precision=by_name[n][0], graphs=by_name[n][1], compile=by_name[n][2]))
            for n in args.time.split(",") if n]  # in the order given
    runs += [(f"shipped {n} b1", dict(ckpt=args.ckpt, precision=p, graphs=g, compile=c))
             for n, p, g, c in PATHS if p == "fp32" and g]
    runs += [("shipped graphs fp32 b16", dict(ckpt=args.ckpt, graphs=True, batch=16)),
             ("shipped graphs+blocks fp32 b16", dict(ckpt=args.ckpt, graphs=True, batch=16, compile="default"))]
    for name, kw in runs:
        t = time.perf_counter()
        try:
            r = benchmark(device=device, repeats=args.repeats, **kw)
            r["path"] = name
            r["seconds"] = round(time.perf_counter() - t, 1)
            table.append((name, r["kv_cache"]["imagined_fps"], r["kv_cache"]["ms_per_frame"],
                          r["gflops_per_frame"], r["share_of_matmul_peak"], r["seconds"]))
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            r = {"path": name, "error": f"{type(e).__name__}: {e}"[:400]}
            table.append((name, None, None, None, None, round(time.perf_counter() - t, 1)))
        (out / f"bench_{name.replace(' ', '_').replace('+', '_')}.json").write_text(json.dumps(r, indent=2))
        print(name, table[-1], flush=True)
    agree = agreement(geometry, device, [n for n in args.agree.split(",") if n])
    (out / "agreement.json").write_text(json.dumps(agree, indent=2))
    for r in agree:
        print("agreement", r, flush=True)
    print(f"{'path':32s} {'frames/s':>9s} {'ms/frame':>9s} {'GFLOP/fr':>9s} {'peak %':>7s} {'s':>6s}")
    def f(v, p):
        return "-" if v is None else f"{v:.{p}f}"

    for name, fps, ms, gf, share, sec in table:
        print(f"{name:32s} {f(fps, 1):>9s} {f(ms, 2):>9s} {f(gf, 1):>9s} "
              f"{'-' if share is None else f'{100 * share:.2f}':>7s} {sec:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
