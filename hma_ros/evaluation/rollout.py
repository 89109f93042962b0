"""Offline rollouts for people to look at (the library behind `hma imagine`): a prompt from a
dataset episode or a still image, imagined frames under given (or random) action chunks
(written with data/images.write_video)."""

from __future__ import annotations

import numpy as np


class RolloutError(ValueError):
    """A rollout that cannot run as asked (the message says why and what to do)."""


def read_chunks(path: str, stride: int, action_dim: int, embodiment: str) -> np.ndarray:
    """Action chunks from a .npy or .csv file: (K, stride, dim) or (K*stride, dim) values."""
    a = np.load(path) if str(path).endswith(".npy") else np.loadtxt(path, delimiter=",")
    try:
        return np.asarray(a, np.float32).reshape(-1, stride, action_dim)
    except ValueError:
        raise RolloutError(f"{path}: {np.shape(a)} cannot be read as (K, {stride}, {action_dim}) chunks for "
                           f"{embodiment}") from None


def episode_rollout(wm, ds, episode: int, horizon: int, random_actions: bool = False, seed: int = 0):
    """P prompt steps of a dataset episode observed, then `horizon` imagined frames under the
    episode's true chunks (or random ones, or when the episode ends first). Returns (imagined
    (K, H, W, 3), the true frames while the episode lasts)."""
    from hma_ros.evaluation.heldout import random_chunks

    if not 0 <= episode < len(ds.episodes):
        raise RolloutError(f"--episode {episode}: the dataset has episodes 0..{len(ds.episodes) - 1}")
    start, n = ds.episodes[episode]
    P = wm.dyn.cfg.prompt
    if n <= P:
        raise RolloutError(f"episode {episode} has {n} steps; needs more than the {P} prompt steps")
    K = horizon if random_actions else min(horizon, n - P)
    w = ds.window(start, min(n, P + K))
    for frame, chunk in w.steps(P):
        wm.observe(frame, chunk)
    chunks = w.actions[P - 1:P - 1 + K]
    if random_actions or len(chunks) < K:
        stats = wm.config["embodiments"][wm.embodiment]["stats"]
        chunks = random_chunks(stats, (K, wm.stride, wm.action_dim), np.random.default_rng(seed))
    return wm.imagine(chunks), w.frames[P:P + K]


def side_by_side(truth, imagined) -> list[np.ndarray]:
    """truth | imagined per frame (black where the truth has ended)."""
    pad = np.zeros_like(imagined[0])
    return [np.concatenate([truth[i] if i < len(truth) else pad, f], axis=1) for i, f in enumerate(imagined)]
