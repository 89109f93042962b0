"""Is a tokenizer's code local? Two measurements on real test frames, per checkpoint:

1. still-token flips: between consecutive frames of an episode, the share of tokens whose whole
   5x5-token neighbourhood (40x40 px at 64x64) did not change (every pixel within 3 levels) but
   whose code did. A local code gives 0; every flip is a change the dynamics model must predict
   that the scene does not make.
   Beside it, the same with each pair's GroupNorm statistics shared (the earlier frame's, reused for
   the later one): the flips that frame-wide normalization causes, apart from the receptive field.
2. a far dab: a 3x3-pixel agent-blue dab painted into the top-left corner of PushT frames; the
   share of tokens whose code changes, by distance (in tokens) from the corner token.

3. a one-pixel shift: the same PushT frames moved right by 1 and 2 pixels (the left column filled
   with the frame's corner colour); the share of the T's tokens (patches with T pixels) whose code
   changes, and of their FSQ factors. A dynamics model that knows where a pushed T went to a few
   pixels must still name these codes exactly (hma_discrete_moves' card, session 22). A continuous
   (MAR) tokenizer gets only this measurement, as the distance its T latents move, beside the
   distance between two random T tokens. Beside the share, the mean change in FSQ levels of the T
   tokens' factors: a code smooth in pose (`hma train-tokenizer --shift-weight`) moves few
   factors by one level.
4. a factor mix: each FSQ factor of the T's tokens taken at random from the frame's code or from
   its code after a 2-pixel shift -- what a dynamics model unsure between two nearby poses draws
   with per-factor argmax -- decoded; the share of whole Ts (`tracking.t_shape`) in the decoded
   mixes beside the decoded frames themselves. In a code smooth in pose a mix is a T between the
   two; in the shipped code it melts.

    python scripts/token_locality.py models/hma_discrete_moves [CKPT ...] [--data data/test]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.ndimage import minimum_filter

from hma_ros.data.dataset import Dataset
from hma_ros.evaluation.tracking import block_mask
from hma_ros.model.checkpoint import load_checkpoint
from hma_ros.runtime.world_model import build_models


def codes(tok, frames: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([tok.encode(torch.from_numpy(frames[i:i + 256])) for i in range(0, len(frames), 256)]).numpy()


class SharedGroupNorm:
    """Patches the encoder's GroupNorms: `record` normalizes with each input's own statistics and
    keeps them; `replay` normalizes with the recorded ones (same batch shape), in order."""

    def __init__(self, encoder):
        self.stats, self.mode, self.i = [], "record", 0
        for m in encoder.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.forward = self._forward(m)

    def _forward(self, m):
        def forward(x):
            b, c, h, w = x.shape
            xg = x.reshape(b, m.num_groups, -1)
            if self.mode == "record":
                stats = (xg.mean(-1, keepdim=True), xg.var(-1, unbiased=False, keepdim=True))
                self.stats.append(stats)
            else:
                stats = self.stats[self.i]
                self.i += 1
            y = ((xg - stats[0]) / torch.sqrt(stats[1] + m.eps)).reshape(b, c, h, w)
            return y * m.weight[None, :, None, None] + m.bias[None, :, None, None]
        return forward

    def pair_codes(self, tok, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Codes of b encoded with a's normalization statistics."""
        with torch.no_grad():
            self.mode, self.stats = "record", []
            tok.encode(torch.from_numpy(a))
            self.mode, self.i = "replay", 0
            out = tok.encode(torch.from_numpy(b)).numpy()
            self.mode = "record"
            return out


def shifted(f: np.ndarray, sh: int) -> np.ndarray:
    """Frames moved right by sh pixels, the left columns filled with each frame's corner colour."""
    fill = np.broadcast_to(f[:, :1, :1], (len(f), f.shape[1], sh, 3))
    return np.ascontiguousarray(np.concatenate([fill, f[:, :, :-sh]], axis=2))


def shift_distance(ck: str, tok, f: np.ndarray) -> None:
    """A continuous (MAR) tokenizer: how far a one-pixel shift moves the T's latents, as a share of
    their norm, beside the distance between two random T tokens."""
    g = tok.cfg.grid
    ps = f.shape[1] // g
    t_tok = torch.from_numpy(block_mask(f).reshape(-1, g, ps, g, ps).any((2, 4)).reshape(len(f), -1))
    with torch.no_grad():
        z0 = tok.encode(torch.from_numpy(f)).float()
        zt = z0[t_tok]
        other = zt[torch.randperm(len(zt), generator=torch.Generator().manual_seed(0))]
        line = [f"{ck}: one-pixel shift ({len(f)} PushT frames), the T's latents moved by (share of their norm)"]
        for sh in (1, 2, 4):
            d = (tok.encode(torch.from_numpy(shifted(f, sh))).float() - z0)[t_tok].norm(dim=-1)
            line.append(f"{sh} px: {(d / zt.norm(dim=-1)).mean():.3f}")
    line.append(f"two random T tokens apart: {((zt - other).norm(dim=-1) / zt.norm(dim=-1)).mean():.3f}")
    print(", ".join(line))


def factor_mix(ck: str, tok, f: np.ndarray, c0: np.ndarray, c2: np.ndarray, t_tok: np.ndarray) -> str:
    """Measurement 4: whole Ts among decoded codes whose T-token factors are drawn half from c0,
    half from c2 (the frames' codes and their 2-px shift's), beside decoding c0 and c2."""
    from hma_ros.evaluation.tracking import T_SHAPE_MIN, t_shape

    rng = np.random.default_rng(0)
    mix = np.where((rng.random(c0.shape) < 0.5) | ~t_tok[..., None], c0, c2)

    def whole(c):
        with torch.no_grad():
            frames = torch.cat([tok.decode(torch.from_numpy(c[i:i + 256])) for i in range(0, len(c), 256)]).numpy()
        has_t = block_mask(f).any((1, 2))
        return (t_shape(frames[has_t]) >= T_SHAPE_MIN).mean()

    return (f"{ck}: factor mix of the T's tokens and their 2-px shift ({len(f)} PushT frames), whole Ts drawn: "
            f"own code {whole(c0):.3f}, shifted {whole(c2):.3f}, mixed {whole(mix):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+")
    ap.add_argument("--data", default="data/test")
    ap.add_argument("--embodiments", default="pusht,reacher,cheetah")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for ck in args.ckpts:
        cfg, state = load_checkpoint(ck)
        tok = build_models({"tokenizer": cfg["tokenizer"]}, state, ck)[0]
        g = tok.cfg.grid
        if tok.cfg.kind == "continuous":  # soft tokens always differ: only the shift, as a distance
            shift_distance(ck, tok, np.array(Dataset(f"{args.data}/pusht").arrays["frames"][::10]))
            continue
        line = [f"{ck}: still-token flips"]
        for emb in args.embodiments.split(","):
            ds = Dataset(f"{args.data}/{emb}")
            f = np.array(ds.arrays["frames"])
            ep = np.asarray(ds.arrays["episode"])
            same = ep[1:] == ep[:-1]
            ps = f.shape[1] // g
            diff = np.abs(f[1:].astype(np.int16) - f[:-1].astype(np.int16)).max(-1)
            still = diff.reshape(-1, g, ps, g, ps).max((2, 4)) <= 3
            still = np.stack([minimum_filter(s.astype(np.uint8), size=5, mode="nearest").astype(bool) for s in still])
            c = codes(tok, f)
            flip = (c[1:] != c[:-1]).any(-1).reshape(-1, g, g)
            shared = SharedGroupNorm(tok.encoder)
            n = len(f) - 1  # pairs (i, i + 1)
            cs = np.concatenate([shared.pair_codes(tok, f[i:min(i + 256, n)], f[i + 1:min(i + 257, n + 1)])
                                 for i in range(0, n, 256)])
            flip_s = (cs != c[:-1]).any(-1).reshape(-1, g, g)
            tok = build_models({"tokenizer": cfg["tokenizer"]}, state, ck)[0]  # unpatched again
            line.append(f"{emb} {flip[same][still[same]].mean():.3f} (GroupNorm statistics shared: "
                        f"{flip_s[same][still[same]].mean():.3f})")
        print(", ".join(line))
        f = np.array(Dataset(f"{args.data}/pusht").arrays["frames"][::10])
        dab = f.copy()
        dab[:, 0:3, 0:3] = (65, 105, 225)
        changed = (codes(tok, f) != codes(tok, dab)).any(-1).reshape(-1, g, g).mean(0)
        dist = np.maximum(*np.mgrid[0:g, 0:g])  # Chebyshev distance in tokens from the corner token
        print(f"{ck}: far dab ({len(f)} PushT frames), tokens changed at distance "
              + ", ".join(f"{d}: {changed[dist == d].mean():.3f}" for d in range(g)))
        c0, ps = codes(tok, f), f.shape[1] // g
        t_tok = block_mask(f).reshape(-1, g, ps, g, ps).any((2, 4)).reshape(len(f), -1)
        line = [f"{ck}: one-pixel shift ({len(f)} PushT frames)"]
        for sh in (1, 2):
            c1 = codes(tok, shifted(f, sh))
            line.append(f"{sh} px: T tokens whose code changes {(c0 != c1).any(-1)[t_tok].mean():.3f} (their "
                        f"factors {(c0 != c1)[t_tok].mean():.3f}, by {np.abs(c0 - c1)[t_tok].mean():.3f} levels), "
                        f"other tokens {(c0 != c1).any(-1)[~t_tok].mean():.3f}")
        print(", ".join(line))
        print(factor_mix(ck, tok, f, c0, codes(tok, shifted(f, 2)), t_tok | block_mask(shifted(f, 2)).reshape(
            -1, g, ps, g, ps).any((2, 4)).reshape(len(f), -1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
