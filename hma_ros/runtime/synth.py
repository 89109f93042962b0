"""Synthetic (video, action) data from a world model (paper Sec. 5.4; the library behind `hma
synth`): each source episode's first `prompt` real frames, then its recorded action chunks
replayed through the model as long as the episode lasts, each imagined frame observed as the
next (the model is the simulator). Frames after the prompt are marked synthetic.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


class SynthError(ValueError):
    """A synthesis that cannot run as asked (the message says why)."""


LOOPS = ("pixels", "tokens")


def closed_loop(wm, prefix: list, act, steps: int, seed: int = 0, loop: str = "pixels") -> np.ndarray:
    """The world model as a simulator: observe the real prefix [(frame, the chunk that led into
    it)], then `steps` times ask act(newest frame) for a chunk and imagine the next frame. loop:
    what the model carries forward -- "pixels": the imagined frame, observed (encoded) again;
    "tokens": its tokens as drawn (`WorldModel.step`), as imagine() does within a horizon.
    Returns steps + 1 frames, the first the prefix's last (real). Used by synthesis (act replays
    recorded chunks) and by policy ranking (act is a policy)."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    wm.reset(seed)
    for frame, chunk in prefix:
        wm.observe(frame, chunk)
    frames = [prefix[-1][0]]
    for _ in range(steps):
        chunk = np.asarray(act(frames[-1]), np.float32)
        if loop == "tokens":
            frame = wm.step(chunk)
        else:
            frame = wm.imagine(chunk[None])[0]
            wm.observe(frame, chunk)
        frames.append(frame)
    return np.stack(frames)


def rollout_episode(wm, frames: np.ndarray, actions: np.ndarray, prompt: int, seed: int = 0) -> np.ndarray:
    """Frames (n, H, W, 3) of one episode: the first `prompt` real, the rest imagined from the
    recorded chunks (actions[k] is step k's chunk, the one leading into frame k + 1)."""
    n = len(frames)
    prefix = [(frames[k], actions[k - 1] if k else None) for k in range(prompt)]
    replay = iter(actions[prompt - 1:n - 1])
    imagined = closed_loop(wm, prefix, lambda _frame: next(replay), n - prompt, seed)
    return np.concatenate([frames[:prompt - 1], imagined])


def synthesize(ckpt: str, data: str, episodes: int, out: str, fmt: str = "hma", prompt: int | None = None,
               seed: int = 0, overwrite: bool = False, progress: bool = True, skip: int = 0,
               mask_steps: int = 2, mask_order: str = "random") -> dict:
    """`episodes` source episodes of `data` (fully valid ones, in order, after the first `skip`)
    rolled through `ckpt`, each frame's tokens drawn in `mask_steps` unmasking steps in
    `mask_order`; writes an hma dataset (OUT/<embodiment>) or a LeRobot v3 folder (OUT).
    Returns a summary."""
    from tqdm import tqdm

    from hma_ros.data.chunker import Step
    from hma_ros.data.dataset import Dataset, DatasetError, DatasetWriter
    from hma_ros.data.lerobot import EPISODE_SPACING, LeRobotEpisode, write_lerobot
    from hma_ros.model.checkpoint import CheckpointError
    from hma_ros.runtime.world_model import WorldModel

    if fmt not in ("hma", "lerobot"):
        raise SynthError(f"--format {fmt!r}: hma or lerobot")
    try:
        ds = Dataset(data)
    except DatasetError as e:
        raise SynthError(str(e)) from None
    try:
        wm = WorldModel.load(ckpt, ds.name, mask_steps=mask_steps, mask_order=mask_order)
    except (CheckpointError, ValueError, KeyError) as e:
        raise SynthError(f"{ckpt}: cannot imagine {ds.name} ({e})") from None
    if tuple(wm.image_size) != tuple(ds.meta["image_size"]):
        raise SynthError(f"{data}: {ds.meta['image_size']} frames, the model's are {list(wm.image_size)}")
    P = prompt if prompt is not None else wm.prompt
    valid = ds.valid()
    usable = [i for i, (a, n) in enumerate(ds.episodes) if n > P and valid[a:a + n].all()][skip:]
    if len(usable) < episodes:
        raise SynthError(f"{data}: {len(usable)} fully valid episodes longer than the {P}-step prompt"
                         f"{f' after the first {skip}' if skip else ''}, asked for {episodes}")
    emb = ds.embodiment
    info = {"synthetic": True, "checkpoint": str(ckpt), "source": str(data), "prompt_steps": P,
            "mask_steps": mask_steps, "mask_order": mask_order,
            "note": f"steps >= {P} of each episode carry frames imagined by the checkpoint from the source "
                    f"episode's first {P} frames and its recorded actions", "source_episodes": usable[:episodes]}
    out = Path(out)
    writer = DatasetWriter(out / ds.name, emb, source=f"hma synth ({ckpt} on {data})", overwrite=overwrite) \
        if fmt == "hma" else None
    lr_eps: list[LeRobotEpisode] = []
    t_start = time.time()
    stride = ds.meta["stride"]
    try:
        for j, e in enumerate(tqdm(usable[:episodes], desc="synth", unit="ep", disable=not progress)):
            a, n = ds.episodes[e]
            w = ds.window(a, n)
            frames = rollout_episode(wm, w.frames, w.actions, P, seed + j)
            if writer is not None:
                for k in range(n):
                    t = j * EPISODE_SPACING + 0.5 * k
                    writer.add(Step(j, k, t, frames[k], t, None, w.actions[k], np.ones(stride, bool)))
            else:  # native-rate rows: each 2 Hz frame held over its chunk, one closing row
                acts = np.concatenate([w.actions.reshape(-1, w.actions.shape[-1]), w.actions[-1, -1:]])
                rows = len(acts)
                step_of = np.minimum(np.arange(rows) // stride, n - 1)
                lr_eps.append(LeRobotEpisode(frames[step_of], acts.astype(np.float32),
                                             np.arange(rows) / float(emb.action_hz), step_of >= P))
        if writer is not None:
            extra = {"synthetic": info, "synthetic_from_step": P}
            if "policies" in ds.meta:  # who drove the replayed actions
                extra["policies"] = [ds.meta["policies"][e] for e in usable[:episodes]]
            writer.close(extra)
            path = out / ds.name
        else:
            path = write_lerobot(out, lr_eps, float(emb.action_hz), list(emb.joint_names or []) or
                                 [f"a{i}" for i in range(emb.action_dim)], robot_type=ds.name,
                                 hma_info=info | {"embodiment": ds.name}, overwrite=overwrite)
    except BaseException:
        if writer is not None and not writer.closed:
            writer.abort()
        raise
    return {"episodes": episodes, "steps": int(sum(ds.episodes[e][1] for e in usable[:episodes])),
            "seconds": round(time.time() - t_start, 1), "out": str(path), "prompt_steps": P}
