"""The shipped checkpoints load through the runtime API and stay stable over long rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from hma_ros import paths
from hma_ros.runtime.world_model import WorldModel

MODELS = paths.models_dir()


@pytest.mark.parametrize("model,embodiment", [("hma_discrete_small", "pusht"), ("hma_discrete_small", "cheetah"),
                                              ("hma_mar_small", "pusht"), ("hma_mar_small", "reacher")])
def test_shipped_model_rolls_out_100_frames_without_nan_or_collapse(model, embodiment):
    from hma_ros.data.embodiment import load_embodiment
    from hma_ros.data.sims import Policy, make_sim

    emb = load_embodiment(embodiment)
    sim = make_sim(embodiment)
    sim.reset(3)
    policy = Policy(sim, "expert", np.random.default_rng(0))
    wm = WorldModel.load(MODELS / model, embodiment)
    chunk = None
    for _ in range(4):  # four real 2 Hz steps from the simulator as the prompt
        wm.observe(emb.image_spec.prepare(sim.render()), chunk)
        chunk = np.stack([policy() for _ in range(emb.stride)])
        for a in chunk:
            sim.step(a)
    sim.close()
    rng = np.random.default_rng(1)
    stats = wm.config["embodiments"][embodiment]["stats"]
    future = np.clip(rng.normal(stats["mean"], stats["std"], (100, wm.stride, wm.action_dim)), stats["min"], stats["max"])
    frames = wm.imagine(future)
    assert frames.shape == (100, 64, 64, 3)
    last = frames[-10:].astype(float)
    assert last.std(axis=(1, 2, 3)).min() > 8.0  # not collapsed to a flat image
    assert np.abs(np.diff(frames.astype(float), axis=0)).mean() > 0.05  # still moving
    chunk = wm.act()
    assert chunk.shape == (wm.stride, wm.action_dim) and np.isfinite(chunk).all()
