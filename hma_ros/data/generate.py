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
    from hma_ros.data.rollout import EPISODE_SPACING, policy_schedule
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
            record_episode(sim, emb, chunker, writer, policy, seconds, camera_hz, base + ep * EPISODE_SPACING,
                           seed * 100_003 + ep, recorder)
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


def record_episode(sim, emb, chunker, writer, policy, seconds: float, camera_hz: float, t0: float, seed: int,
                   recorder=None) -> None:
    """One episode (`rollout.episode_events`: the simulator reset to `seed`, `policy()` asked for
    each native command) through the chunker into the dataset writer, and into a rosbag2
    recorder when given one."""
    from hma_ros.data.rollout import episode_events, events_to_steps

    for ev in episode_events(sim, policy, seconds, camera_hz, t0, seed):
        if recorder is not None:
            if ev.kind == "frame":
                recorder.image(ev.t, ev.value)
            elif ev.kind == "joints":
                recorder.joints(ev.t, emb.joint_names, ev.value)
            else:
                recorder.command(ev.t, ev.value)
        for s in events_to_steps(chunker, emb, ev):
            writer.add(s)


class Replay:
    """A recorded command sequence as a `Policy`: command i at the i-th call, the last one held
    after the end (episode_events asks once more, for the command that closes the last window)."""

    def __init__(self, commands):
        self.commands, self.i = commands, 0

    def __call__(self):
        a = self.commands[min(self.i, len(self.commands) - 1)]
        self.i += 1
        return a


def generate_replays(name: str, out: Path, plans: list[tuple[int, str, object]], source: str, overwrite: bool,
                     extra_meta: dict | None = None, progress: bool = True) -> dict:
    """Recorded command sequences played in the real simulator and recorded as gen-data records
    its episodes: `plans` = [(seed, label, commands (n, action_dim) at the native rate)], each
    from the simulator's start for that seed. Writes OUT/<name>; the labels become the meta's
    `policies`. Used by `hma gen-closed-loop` (the learned simulator's closed-loop commands)."""
    import numpy as np
    from tqdm import tqdm

    from hma_ros.data.chunker import Chunker
    from hma_ros.data.dataset import DatasetWriter
    from hma_ros.data.embodiment import load_embodiment
    from hma_ros.data.rollout import EPISODE_SPACING
    from hma_ros.data.sims import make_sim

    emb = load_embodiment(name)
    sim = make_sim(emb.sim or name)
    camera_hz = emb.camera_hz or sim.info.control_hz
    sim.reset(0)
    writer = DatasetWriter(out / name, emb, source=source, state_keys=tuple(sim.state()), overwrite=overwrite)
    chunker = Chunker(emb.chunker_config)
    base = 1_700_000_000.0
    t_start = time.time()
    try:
        for ep, (seed, _label, commands) in enumerate(tqdm(plans, desc=f"replay {name}", unit="ep",
                                                           disable=not progress)):
            commands = np.asarray(commands, float)
            record_episode(sim, emb, chunker, writer, Replay(commands), len(commands) / sim.info.control_hz,
                           camera_hz, base + ep * EPISODE_SPACING, int(seed))
        for s in chunker.flush():
            writer.add(s)
        writer.close({"policies": [label for _, label, _ in plans], "camera_hz": camera_hz, **(extra_meta or {})})
    except BaseException:
        writer.abort()
        raise
    finally:
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
