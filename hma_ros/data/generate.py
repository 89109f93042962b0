"""Simulator rollouts to 2 Hz datasets (and optionally rosbag2): the library behind `hma gen-data`.
Each embodiment's rollouts go through the same Chunker as bags and live nodes
(data/rollout.events_to_steps); with bag=True the same events are also recorded as a rosbag2."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

DEFAULTS = {  # embodiment: (episodes, seconds) of the default mixture
    "pusht": (160, 15.0),
    "reacher": (100, 15.0),
    "cheetah": (100, 15.0),
    "manipulator": (100, 15.0),
}


def generate(name: str, out: Path, episodes: int, seconds: float, seed: int, bag: bool,
             overwrite: bool, position: int = 0, policies: dict[str, float] | None = None) -> dict:
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
    kinds = policy_schedule(episodes, seed, policies)
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


def generate_all(names: list[str], out: Path, episodes: int | None, seconds: float | None, seed: int, bag: bool,
                 overwrite: bool, workers: int, policies: dict[str, float] | None = None) -> list[dict]:
    """Every embodiment (its own seed: seed + index), in parallel processes when workers > 1.
    `policies`: {kind: share} of the episodes (default expert 0.4 / noisy 0.3 / random 0.3)."""
    jobs = []
    for i, n in enumerate(names):
        eps, secs = DEFAULTS[n]
        jobs.append((n, Path(out), episodes or eps, seconds or secs, seed + i, bag, overwrite, i, policies))
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            return pool.map(_worker, jobs, chunksize=1)
    return [_worker(j) for j in jobs]
