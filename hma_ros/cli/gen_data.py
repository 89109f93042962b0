"""`hma gen-data`: rollouts from real simulators to 2 Hz datasets (and optionally rosbag2).

    hma gen-data --out data/sim                      # the default mixture, 4 embodiments
    hma gen-data --out /tmp/d --embodiments pusht --episodes 5 --seconds 8 --bag
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

DEFAULTS = {  # embodiment: (episodes, seconds) of the default mixture
    "pusht": (160, 15.0),
    "reacher": (100, 15.0),
    "cheetah": (100, 15.0),
    "manipulator": (100, 15.0),
}


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="simulator rollouts -> 2 Hz datasets (optionally rosbag2)",
                       description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder: one dataset per embodiment inside")
    p.add_argument("--embodiments", default=",".join(DEFAULTS),
                   help="comma-separated embodiment names (default: %(default)s)")
    p.add_argument("--episodes", type=int, default=None, help="episodes per embodiment (default: per embodiment)")
    p.add_argument("--seconds", type=float, default=None, help="episode length in s (default 15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bag", action="store_true", help="also write each rollout as a rosbag2 (mcap) in OUT/bags/")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=run)


def generate(name: str, out: Path, episodes: int, seconds: float, seed: int, bag: bool,
             overwrite: bool, position: int = 0) -> dict:
    from tqdm import tqdm

    from hma_ros.data.bags import BagRecorder
    from hma_ros.data.chunker import Chunker
    from hma_ros.data.dataset import DatasetWriter
    from hma_ros.data.embodiment import load_embodiment
    from hma_ros.data.rollout import EPISODE_SPACING, episode_events, events_to_steps, policy_schedule
    from hma_ros.data.sims import Policy, make_sim

    emb = load_embodiment(name)
    sim = make_sim(emb.sim or name)
    if abs(sim.info.control_hz - emb.action_hz) > 1e-6:
        raise ValueError(f"{emb.source_file}: action.hz {emb.action_hz} but the simulator runs at {sim.info.control_hz} Hz")
    camera_hz = emb.camera_hz or sim.info.control_hz
    sim.reset(seed)
    state_keys = tuple(sim.state())
    t_start = time.time()
    writer = DatasetWriter(out / name, emb, source=f"hma gen-data ({name}, seed {seed})",
                           state_keys=state_keys, overwrite=overwrite)
    if bag and (out / "bags" / name).exists():
        if not overwrite:
            raise FileExistsError(f"{out / 'bags' / name} exists; pass --overwrite to replace it")
        __import__("shutil").rmtree(out / "bags" / name)
    recorder = BagRecorder(out / "bags" / name, emb) if bag else None
    chunker = Chunker(emb.chunker_config)
    kinds = policy_schedule(episodes, seed)
    rng = __import__("numpy").random.default_rng(seed)
    base = 1_700_000_000.0  # stamps look like a real robot's wall clock
    try:
        for ep in tqdm(range(episodes), desc=f"{name:<12}", unit="ep", position=position, leave=True):
            policy = Policy(sim, kinds[ep], rng)
            for ev in episode_events(sim, policy, seconds, camera_hz, base + ep * EPISODE_SPACING,
                                     seed * 100_003 + ep):
                if recorder is not None:
                    if ev.kind == "frame":
                        recorder.image(ev.t, ev.value)
                    elif ev.kind == "joints":
                        recorder.joints(ev.t, emb.joint_names, ev.value)
                    else:
                        recorder.command(ev.t, ev.value)
                for s in events_to_steps(chunker, emb, ev):
                    writer.add(s)
        for s in chunker.flush():
            writer.add(s)
        writer.close({"policies": kinds, "camera_hz": camera_hz, "seconds": seconds})
    except BaseException:
        writer.abort()
        raise
    finally:
        if recorder is not None:
            recorder.close()
        sim.close()
    return {"name": name, "steps": writer.n, "episodes": len(writer.episodes),
            "seconds": round(time.time() - t_start, 1)}


def _worker(args):
    return generate(*args)


def run(args) -> int:
    from hma_ros.cli import CliError
    from hma_ros.data.embodiment import available_embodiments

    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    names = [n.strip() for n in args.embodiments.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEFAULTS]
    if unknown:
        raise CliError(f"no simulator for {', '.join(unknown)}; gen-data knows {', '.join(DEFAULTS)} "
                       f"(embodiment configs: {', '.join(available_embodiments())})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in names:
        if (out / n).exists() and not args.overwrite:
            raise CliError(f"{out / n} exists; pass --overwrite to replace it")
    jobs = []
    for i, n in enumerate(names):
        eps, secs = DEFAULTS[n]
        jobs.append((n, out, args.episodes or eps, args.seconds or secs, args.seed + i, args.bag,
                     args.overwrite, i))
    t0 = time.time()
    if args.workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
            results = pool.map(_worker, jobs, chunksize=1)
    else:
        results = [_worker(j) for j in jobs]
    for r in results:
        print(f"{r['name']:<12} {r['episodes']:>4} episodes {r['steps']:>6} steps  {r['seconds']:>7.1f} s  -> {out / r['name']}")
    print(f"total wall time {time.time() - t0:.1f} s ({args.workers} workers)")
    return 0
