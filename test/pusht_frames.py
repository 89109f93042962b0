"""Real gym-pusht frames with the simulator's state, for tests that measure frame readers."""

from __future__ import annotations

import numpy as np

from hma_ros.data.images import ImageSpec


def collect(sim, first_seed: int, episodes: int, steps: int, every: int) -> tuple[np.ndarray, list[dict]]:
    """Frames (N, 64, 64, 3) and sim.state() at each, every `every` control steps of `episodes`
    episodes from seed `first_seed` up, cycling the expert / noisy / random policies."""
    from hma_ros.data.sims import Policy

    rng = np.random.default_rng(0)
    spec = ImageSpec(size=(64, 64))
    frames, states = [], []
    for ep in range(episodes):
        sim.reset(first_seed + ep)
        pol = Policy(sim, Policy.KINDS[ep % 3], rng)
        for i in range(steps):
            sim.step(pol())
            if i % every == 0:
                frames.append(spec.prepare(sim.render()))
                states.append(sim.state())
    return np.stack(frames), states
