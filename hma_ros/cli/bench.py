"""`hma bench`: imagined frames/s and ms per 2 Hz step at batch 1 (or --batch B futures imagined
at once from one history, as a planner does), with and without the KV cache,
FLOPs per imagined frame (counted by torch's FlopCounterMode over a whole imagine(), tokenizer
decode and context prefill included) and the share of the device's matmul peak it reaches (peak
measured here with a 1024x1024 fp32 matmul), peak RSS; JSON to stdout (and --json FILE).

    hma bench --ckpt models/hma_discrete_small
    hma bench --geometry layers=8,d=256,heads=8,grid=8          # random weights, any size
    hma bench --geometry layers=32,d=256,heads=16,grid=16,res=256  # the paper's HMA-Base shape
    hma bench --ckpt models/hma_discrete_small --batch 16     # 16 candidate futures per call
    hma bench --geometry layers=32,d=256,heads=16,grid=16,res=256 --device cuda --graphs  # CUDA graphs

--geometry keys: layers, d, heads, grid (tokens per side), res (frame side, default 8*grid),
action_tokens (1: concat + modulate, the default; 0: modulate only), window, prompt, levels
(FSQ levels, '-'-separated, default 8-8-8-5-5-5).
The measuring lives in hma_ros/runtime/bench.py.
"""

from __future__ import annotations

import json


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
    p.add_argument("--batch", type=int, default=1,
                   help="futures imagined at once from the same history (frames/s counts all of them)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="autocast dtype of the model calls (bf16/fp16 pay off on GPUs; on a CPU without "
                        "bf16 units they are slower)")
    p.add_argument("--graphs", action="store_true",
                   help="the cached passes through fixed-shape KV caches, captured once and replayed as CUDA "
                        "graphs on --device cuda (on a CPU the same path runs eagerly)")
    p.add_argument("--compile", nargs="?", const="default", default=False,
                   choices=("default", "max-autotune-no-cudagraphs"),
                   help="with --graphs: each block of a cached pass as one torch.compile'd function (compiled on "
                        "first use, ~1 min for HMA-Base on a GPU); a value is torch.compile's mode "
                        "(max-autotune-no-cudagraphs: tuned Triton matrix products, minutes more)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--ddim-steps", type=int, default=0, help="MAR models: DDIM steps (default: the checkpoint's)")
    p.add_argument("--json", help="also write the JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from hma_ros.cli import CliError
    from hma_ros.runtime.bench import BenchError, benchmark

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = benchmark(args.ckpt, args.geometry, args.device, args.embodiment, args.horizon, args.repeats,
                           args.steps, args.ddim_steps, args.batch, args.precision, args.graphs,
                           args.compile)
    except BenchError as e:
        raise CliError(str(e)) from None
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        open(args.json, "w").write(text + "\n")
    return 0
