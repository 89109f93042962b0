"""Imagined tokens paired with the frames they should have been: what a decoder trained on the
world model's own predictions learns from (`hma train-tokenizer --decoder-only --imagined CKPT`).

A decoder trained only on real frames' codes draws whatever codes it is given; the dynamics'
codes for a pushed PushT block are wrong in about half their FSQ factors (a one-pixel shift of
the block changes 98% of its tokens' codes: scripts/token_locality.py), and the decoder draws
them as a blob. Trained on (imagined codes -> the true frame), the decoder learns what the
imagined codes mean: the frame the dynamics' codes stand for, as well as they can name it. The
code itself (the encoder) stays bitwise, so the dynamics model is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hma_ros.train import TrainError, world_model_checkpoint


@dataclass
class ImaginedPairs:
    """One embodiment's pairs: imagined tokens (N, S, F) -- the rollouts' frames 1..K after the
    prompt -- and the dataset index (N,) of the true frame each stands for."""

    tokens: np.ndarray
    frame_index: np.ndarray


def imagined_pairs(ckpt: str, datasets: dict, episodes: dict, windows: int, seed: int = 0,
                   progress=None, device: str = "cpu") -> dict[str, ImaginedPairs]:
    """Per dataset (embodiment) the world model at `ckpt` knows: `windows` windows of the
    model's length from `episodes[name]` (round-robin over them, seeded), the first `prompt`
    steps observed, the rest imagined with the window's true actions (greedy, the checkpoint's
    sampling defaults, tokens as the eval renders them) on `device`. progress: called with 1 per window.
    TrainError when the checkpoint knows none of the datasets' embodiments."""
    import torch

    from hma_ros.evaluation.heldout import windows_of
    from hma_ros.runtime.world_model import WorldModel, build_models

    config, state = world_model_checkpoint(ckpt, "--imagined")
    known = [n for n in datasets if n in config["embodiments"]]
    if not known:
        raise TrainError(f"--imagined {ckpt} knows {', '.join(sorted(config['embodiments']))}, none of the data's "
                         f"embodiments ({', '.join(sorted(datasets))})")
    tok, dyn = build_models(config, state, ckpt)
    out = {}
    for name in known:
        wm = WorldModel(tok, dyn, config, name, device=device, render="tokens", name=ckpt)
        ds = datasets[name]
        P, T = wm.prompt, wm.window
        toks, idx = [], []
        for wi, (_, start) in enumerate(windows_of(ds, T, windows, [int(e) for e in episodes[name]], seed)):
            w = ds.window(start, T)
            wm.reset(seed + wi)
            for frame, chunk in w.steps(P):
                wm.observe(frame, chunk)
            with torch.no_grad():
                toks.append(wm.imagine(w.actions[P - 1:T - 1], tokens=True))
            idx.append(np.arange(start + P, start + T))
            if progress is not None:
                progress(1)
        if toks:
            t = np.concatenate(toks)
            out[name] = ImaginedPairs(t.astype(np.int16) if t.dtype.kind == "i" else t.astype(np.float32),
                                      np.concatenate(idx))
    return out


def same_code(tokenizer, ckpt: str, frames: np.ndarray) -> bool:
    """Whether `ckpt`'s tokenizer gives `frames` (B, H, W, 3) uint8 the same tokens as
    `tokenizer`: imagined tokens only mean something to a decoder of the same code."""
    import torch

    from hma_ros.model.checkpoint import load_checkpoint, sub_state
    from hma_ros.model.tokenizer import TokenizerConfig, build_tokenizer

    config, state = load_checkpoint(ckpt)
    other = build_tokenizer(TokenizerConfig(**config["tokenizer"]))
    other.load_state_dict(sub_state(state, "tokenizer"))
    other.eval()
    was = tokenizer.training
    tokenizer.eval()
    with torch.no_grad():
        x = torch.from_numpy(frames)
        a, b = tokenizer.encode(x.to(next(tokenizer.parameters()).device)).cpu(), other.encode(x)
    tokenizer.train(was)
    return a.shape == b.shape and bool(torch.equal(a, b) if a.dtype == torch.long else torch.allclose(a, b, atol=1e-4))
