"""Compare imagined filmstrips with what the camera really showed next (for `make demo` and
benchmarks): pure functions, no ROS."""

from __future__ import annotations

import numpy as np

from hma_ros.model.metrics import psnr_np


def split_filmstrip(strip: np.ndarray, tiles: int, tile_size: int) -> np.ndarray:
    """(S*s, (K+1)*S*s, 3) filmstrip of square tiles of `tile_size` px upscaled s times ->
    (K+1, S, S, 3) tiles at the model size."""
    h, w = strip.shape[:2]
    scale = max(1, h // tile_size)
    tiles_arr = strip.reshape(h, tiles, w // tiles, 3).transpose(1, 0, 2, 3)
    return tiles_arr[:, ::scale, ::scale]


def _agent_within(a: np.ndarray, truth: np.ndarray) -> float:
    """1 when PushT's agent is drawn in `a` within 1/16 of the side of where it is in `truth`."""
    from hma_ros.evaluation.tracking import find_agent

    (pa, ca), (pt, ct) = find_agent(a), find_agent(truth)
    return float(pa and pt and np.linalg.norm(ca - ct) <= a.shape[1] / 16.0)


def match_imagined(strips: list[tuple[float, np.ndarray]], camera: list[tuple[float, np.ndarray]],
                   tiles: int, tolerance: float = 0.06, track_agent: bool = False) -> dict:
    """For each filmstrip (stamp t0, tiles = real frame at t0 then imagined frames at t0 + 0.5 i),
    find the camera frame nearest each imagined time (within `tolerance`) and score it.
    Returns per-horizon mean PSNR of imagined and of copy-the-start-frame, and matched pairs.
    With `track_agent` (PushT): also the share of imagined frames that draw the agent within
    1/16 of the side of where the camera shows it (the detector finds it in every real frame
    within 1 px of the simulator's position, test_tracking.py), and the same for copying; and the
    share of imagined frames whose T is a whole T (`tracking.t_shape`), beside the camera's."""
    from hma_ros.evaluation.tracking import T_SHAPE_MIN, t_shape

    tile_size = camera[0][1].shape[0] if camera else 64
    cam_t = np.array([t for t, _ in camera])
    by_h: dict[int, list[tuple[float, float]]] = {}
    pairs = []
    for t0, strip in strips:
        tl = split_filmstrip(strip, tiles, tile_size)
        for i in range(1, tiles):
            if len(cam_t) == 0:
                break
            j = int(np.argmin(np.abs(cam_t - (t0 + 0.5 * i))))
            if abs(cam_t[j] - (t0 + 0.5 * i)) > tolerance:
                continue
            truth = camera[j][1]
            if truth.shape != tl[i].shape:
                continue
            row = [float(psnr_np(tl[i], truth)), float(psnr_np(tl[0], truth))]
            if track_agent:
                whole = t_shape(np.stack([tl[i], truth])) >= T_SHAPE_MIN
                row += [_agent_within(tl[i], truth), _agent_within(tl[0], truth), *whole.astype(float)]
            by_h.setdefault(i, []).append(tuple(row))
            if i == 1:
                pairs.append((truth, tl[i]))
    out = {"horizons": {}, "pairs": pairs}
    for i, v in sorted(by_h.items()):
        a = np.array(v)
        out["horizons"][i] = {"n": len(v), "psnr": float(np.mean(np.minimum(a[:, 0], 60))),
                              "copy_psnr": float(np.mean(np.minimum(a[:, 1], 60)))}
        if track_agent:
            out["horizons"][i] |= {"agent_within": float(a[:, 2].mean()), "copy_agent_within": float(a[:, 3].mean()),
                                   "t_whole": float(a[:, 4].mean()), "camera_t_whole": float(a[:, 5].mean())}
    return out
