#!/usr/bin/env python3
"""Benchmark `hma bag2data` on a large bag: 60 s of a 30 Hz 640x480 rgb8 camera (1.6 GB of
raw images) and 200 Hz joint states, recorded from the real PushT simulator as a robot would.

    python benchmarks/bag2data_bench.py [--seconds 60] [--workdir /tmp/hma_bench]

Prints the bag size, the conversion's wall time and peak RSS (of the converter process) as JSON.
Joint states at 200 Hz interpolate the agent position between the simulator's 10 Hz control
steps; the camera renders the simulator state at each frame time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_EMBODIMENT = """
name: pusht_joints200
camera: {topic: image_raw, size: [64, 64], crop: center}
joints: {topic: joint_states, names: [agent_x, agent_y]}
action: {source: joint_positions, hz: 200, interpolation: linear}
"""


def write_bag(path: Path, seconds: float) -> None:
    import yaml

    from hma_ros.data.bags import BagRecorder
    from hma_ros.data.embodiment import embodiment_from_dict
    from hma_ros.data.sims import Policy, PushTSim

    emb = embodiment_from_dict(yaml.safe_load(BENCH_EMBODIMENT), "bench")
    sim = PushTSim(image_size=96)
    sim.u.observation_width, sim.u.observation_height = 640, 480
    sim.reset(0)
    policy = Policy(sim, "expert", np.random.default_rng(0))
    rec = BagRecorder(path, emb)
    t0 = 1_700_000_000.0
    cam_hz, joint_hz, ctrl_hz = 30.0, 200.0, sim.info.control_hz
    prev = sim.joint_positions()
    n_ctrl = int(seconds * ctrl_hz)
    frame_i = joint_i = 0
    for c in range(n_ctrl):
        t_c = c / ctrl_hz
        sim.step(policy())
        cur = sim.joint_positions()
        while joint_i / joint_hz < t_c + 1 / ctrl_hz - 1e-9:
            w = (joint_i / joint_hz - t_c) * ctrl_hz
            rec.joints(t0 + joint_i / joint_hz, emb.joint_names, (1 - w) * prev + w * cur)
            joint_i += 1
        while frame_i / cam_hz < t_c + 1 / ctrl_hz - 1e-9:
            rec.image(t0 + frame_i / cam_hz, sim.render())
            frame_i += 1
        prev = cur
    rec.close()
    sim.close()
    (path.parent / "bench_embodiment.yaml").write_text(BENCH_EMBODIMENT)
    print(f"wrote {frame_i} frames and {joint_i} joint states", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workdir", default="/tmp/hma_bench")
    ap.add_argument("--keep", action="store_true", help="keep the bag and dataset")
    args = ap.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bag = work / "bag"
    t = time.time()
    write_bag(bag, args.seconds)
    write_s = time.time() - t
    size = sum(p.stat().st_size for p in bag.iterdir())
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "hma_ros.cli.main", "bag2data", str(bag), "--embodiment",
                           str(work / "bench_embodiment.yaml"), "--out", str(work / "dataset")],
                          capture_output=True, text=True)
    wall = time.time() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    result = {
        "bag_seconds": args.seconds, "bag_bytes": size, "bag_write_s": round(write_s, 1),
        "bag2data_wall_s": round(wall, 1), "bag2data_peak_rss_mb": round(peak_kb / 1024, 1),
        "converter_output": proc.stdout.strip().splitlines()[-1], "cpu_cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
