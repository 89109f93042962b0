"""What moves: the actuated part's position and the changed pixels in imagined frames.

PSNR hides a missing robot when the background is static (PushT: the agent is a ~4-pixel disc
at 64x64 on a white table). These measures look at what the actions move:

- `find_agent`: PushT's agent (the royal-blue disc) in a frame, by its colour: present or not,
  and its centre (blueness-weighted centroid around the bluest spot). Only for *measuring*
  frames; nothing that draws imagined frames uses it.
- `pusht_project`: the simulator's agent/block position (PushT world units, 0..512) in pixels of
  a square frame of side `size` (gym-pusht renders the 512x512 world onto the whole frame).
- `block_mask`: PushT's T block (slate-grey pixels) for a mask IoU against the true frame,
  which is rendered at the block's true pose.
- `agent_contact`: whether the true agent touches the T (its centre within two agent radii of
  a true block pixel) -- where imagined agents get lost, so `score_frames` splits tracking there.
- `reacher_arm_mask`: the reacher's arm (its two warm yellow links; the red target disc and the
  blue arena are not), and `arm_fscore`: how well an imagined arm lies on the true one -- the
  thin-structure F-score at a tolerance of 2 px at 64x64 (precision: the share of imagined arm
  pixels within the tolerance of a true arm pixel; recall: the converse), as boundary detectors
  are scored. An IoU would punish a 2-px-wide line for a 1-px offset; the F-score does not, and
  still falls to 0 for an arm drawn elsewhere or not at all (its root at the frame centre, the
  same in every pose, is left out). On frames the simulator rendered at
  random joint angles every mask pixel lies within 1.05 px of the arm's projected links and every
  visible point of them within 1.1 px of a mask pixel (test_tracking).
- `goal_cover`: the share of PushT's goal region the T covers, read off the pixels (gym-pusht's
  coverage within 0.03 on average, correlation > 0.99 on posed simulator frames): imagined minus
  true is the learned simulator's optimism (`goal_bias`: > 0 where the imagined T drifts onto the
  goal drawn in the frame).
- `motion_iou`: for any embodiment, the pixels that really changed since the newest prompt
  frame against the pixels that changed in the imagined frame (the same >10-level test as
  `metrics.moving_pixels`).

All functions take uint8 RGB frames (..., H, W, 3) and are pure numpy.
"""

from __future__ import annotations

import numpy as np

from hma_ros.model.metrics import moving_pixels

PUSHT_WORLD = 512.0  # gym-pusht's workspace side, in its own units
BLUENESS_MIN = 40.0  # B - (R + G) / 2 above this is agent-coloured (agent 153, T block <= 35, white 0)
AGENT_MASS_MIN = 150.0  # summed blueness excess of a drawn agent (a full one at 64x64: ~1,000)
AGENT_RADIUS_PX = 2.5  # at 64x64 (world radius 15 of 512); scales with the frame side
ARM_TOLERANCE_PX = 2.0  # at 64x64: the arm F-score's tolerance; scales with the frame side
ARM_HUB_PX = 4.0  # at 64x64: the arm's root, pinned at the frame centre whatever the pose, is left out


def pusht_project(xy: np.ndarray, size: int) -> np.ndarray:
    """World (..., 2) PushT coordinates -> pixel coordinates (x, y) of a size x size frame, pixel
    centres at integer + 0.5 (so the centroid of a drawn disc lands on the projection)."""
    return np.asarray(xy, np.float64) * (size / PUSHT_WORLD) - 0.5


def blueness(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    return f[..., 2] - 0.5 * (f[..., 0] + f[..., 1])


def find_agent(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PushT agent per frame: (present (N,) bool, centre (N, 2) float pixel (x, y), NaN when
    absent). The centre is the weighted centroid of agent-coloured pixels within twice the
    agent's radius of the bluest spot, so a second, fainter blob elsewhere does not pull it."""
    frames = np.asarray(frames)
    single = frames.ndim == 3
    if single:
        frames = frames[None]
    n, h, w = frames.shape[:3]
    excess = np.clip(blueness(frames) - BLUENESS_MIN, 0, None)  # (N, H, W)
    present = np.zeros(n, bool)
    centre = np.full((n, 2), np.nan)
    ys, xs = np.mgrid[0:h, 0:w]
    r = 2.0 * AGENT_RADIUS_PX * w / 64.0
    for i in range(n):
        e = excess[i]
        if e.max() <= 0:
            continue
        # smooth a little so the seed is the blob's middle, not one bright pixel
        pad = np.pad(e, 1)
        sm = sum(pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
        cy, cx = np.unravel_index(int(np.argmax(sm)), sm.shape)
        near = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
        wgt = e * near
        mass = wgt.sum()
        if mass < AGENT_MASS_MIN * (w / 64.0) ** 2:
            continue
        present[i] = True
        centre[i] = ((wgt * xs).sum() / mass, (wgt * ys).sum() / mass)
    if single:
        return present[0], centre[0]
    return present, centre


def agent_errors(frames: np.ndarray, agent_xy_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(present (N,), pixel distance from the true position (N,), inf where absent)."""
    present, centre = find_agent(frames)
    truth = pusht_project(agent_xy_world, frames.shape[-2])
    err = np.linalg.norm(centre - truth, axis=-1)
    return present, np.where(present, err, np.inf)


def block_mask(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: PushT's T block (slate grey, RGB ~ (119, 136, 153), drawn lighter where
    it overlaps the goal): bluish grey, darker than the table, not the agent's saturated blue."""
    f = frames.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (b - r > 12) & (b - r < 70) & (g < 200) & (b < 215) & (blueness(frames) < BLUENESS_MIN)


_GOAL_MASKS: dict[int, np.ndarray] = {}


def goal_mask(size: int) -> np.ndarray:
    """(size, size) bool: the pixels of a size x size frame whose centre lies in PushT's goal
    region (gym-pusht's fixed goal pose, the T's polygon: `pusht_judge.tee_polygon`)."""
    m = _GOAL_MASKS.get(size)
    if m is None:
        import shapely

        from hma_ros.evaluation.pusht_judge import GOAL_POSE, tee_polygon

        ys, xs = np.mgrid[0:size, 0:size]
        wx, wy = (xs + 0.5) * PUSHT_WORLD / size, (ys + 0.5) * PUSHT_WORLD / size
        m = _GOAL_MASKS[size] = shapely.contains_xy(tee_polygon(*GOAL_POSE), wx.ravel(), wy.ravel()).reshape(size, size)
    return m


def goal_cover(frames: np.ndarray) -> np.ndarray:
    """(...,) the share of the goal region's pixels that the T (`block_mask`) covers in each frame:
    gym-pusht's coverage, read off the pixels (no learned judge)."""
    g = goal_mask(frames.shape[-2])
    return (block_mask(frames) & g).sum(axis=(-2, -1)) / g.sum()


_T_SHAPE_GRID: dict[int, np.ndarray] = {}
T_SHAPE_MIN = 0.75  # below every real frame of data/bc (3,000 pose-pusher frames: min 0.757, median 0.847)
T_SHAPE_ANGLES = np.radians(np.arange(0.0, 360.0, 5.0))


def _tee_rects() -> tuple[np.ndarray, float]:
    """PushT's T as its two rectangles in the body frame ((2, 4): x0, x1, y0, y1, from
    `pusht_judge._tee_local`) and the y of its centroid there."""
    from hma_ros.evaluation.pusht_judge import _tee_local

    rects = np.array([[v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()] for v in _tee_local()])
    area = (rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])
    return rects, float((area * (rects[:, 2] + rects[:, 3]) / 2).sum() / area.sum())


def _tee_iou(grid: np.ndarray, m: np.ndarray, centre: np.ndarray, angles: np.ndarray,
             hidden: np.ndarray) -> np.ndarray:
    """IoU of the pixel mask m (P,) with a rigid T whose centroid is at each of `centre` (C, 2,
    world units) at each heading (A,), the `hidden` pixels (P,) left out: (C, A)."""
    rects, cy = _tee_rects()
    d = grid[None] - centre[:, None]  # (C, P, 2) world offsets from the centroid
    cos, sin = np.cos(angles)[None, :, None], np.sin(angles)[None, :, None]
    u = cos * d[:, None, :, 0] + sin * d[:, None, :, 1]  # body-frame coordinates (R^T d), (C, A, P)
    v = -sin * d[:, None, :, 0] + cos * d[:, None, :, 1] + cy
    tee = np.zeros(u.shape, bool)
    for x0, x1, y0, y1 in rects:
        tee |= (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    tee &= ~hidden
    inter = (tee & m).sum(-1)
    return inter / (tee.sum(-1) + m.sum() - inter)


def t_shape(frames: np.ndarray) -> np.ndarray:
    """(N,) how T-shaped each frame's T is, read off its pixels (no learned part): the best mask
    IoU of its T pixels (`block_mask`) with a rigid PushT T. Searched coarse to fine: every heading
    in 5-degree steps with the T's centroid on the pixels' centroid (where the T touches the frame's
    edge, also on a 2-px lattice up to 8 px around it: the visible centroid of a T partly out of
    view is off its own), then the best +-5 degrees and +-2 px; the agent's pixels, which hide
    what lies under them, are left out of the IoU. Whole Ts in real 64-px frames score
    ~0.8-0.9; a T bent or melted into a blob scores far lower; no T pixels: 0. frames (N, H, W, 3)."""
    frames = np.asarray(frames)
    size = frames.shape[-2]
    grid = _T_SHAPE_GRID.get(size)
    if grid is None:  # pixel centres in world units, (size * size, 2) as (x, y)
        c = (np.arange(size) + 0.5) * PUSHT_WORLD / size
        grid = _T_SHAPE_GRID[size] = np.stack([np.tile(c, size), np.repeat(c, size)], 1)
    px = PUSHT_WORLD / size

    def lattice(k: int, step: int) -> np.ndarray:
        r = np.arange(-k, k + 1, step)
        return np.stack(np.meshgrid(r, r), -1).reshape(-1, 2) * px

    fine, coarse = lattice(2, 1), lattice(8, 2)
    masks = block_mask(frames)
    edge = masks[:, [0, -1]].any(axis=(1, 2)) | masks[:, :, [0, -1]].any(axis=(1, 2))
    masks = masks.reshape(len(frames), -1)
    agent = (blueness(frames) >= BLUENESS_MIN).reshape(len(frames), -1)  # the disc hides what is under it
    out = np.zeros(len(frames))
    for i, m in enumerate(masks):
        if not m.any():
            continue
        centres = grid[m].mean(0) + (coarse if edge[i] else np.zeros((1, 2)))
        iou = np.concatenate([_tee_iou(grid, m, centres[j:j + 8], T_SHAPE_ANGLES, agent[i])
                              for j in range(0, len(centres), 8)])
        c, a = np.unravel_index(np.argmax(iou), iou.shape)
        out[i] = _tee_iou(grid, m, centres[c] + fine, T_SHAPE_ANGLES[a] + np.radians([-5.0, 0.0, 5.0]), agent[i]).max()
    return out


def agent_contact(truth: np.ndarray, agent_xy_world: np.ndarray) -> np.ndarray:
    """(N,) bool: in each true frame (N, H, W, 3), the agent (world positions (N, 2)) touches the
    T -- some block pixel lies within two agent radii of its centre (the disc's rim against the
    block's edge, one pixel of slack)."""
    truth = np.asarray(truth)
    n, h, w = truth.shape[:3]
    xy = pusht_project(agent_xy_world, w)
    ys, xs = np.mgrid[0:h, 0:w]
    r = 2.0 * AGENT_RADIUS_PX * w / 64.0
    masks = block_mask(truth)
    near = (xs[None] - xy[:, 0, None, None]) ** 2 + (ys[None] - xy[:, 1, None, None]) ** 2 <= r * r
    return (masks & near).any(axis=(-2, -1))


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU over the last two axes of boolean masks; NaN where both are empty."""
    inter = (a & b).sum(axis=(-2, -1))
    union = (a | b).sum(axis=(-2, -1))
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def reacher_arm_mask(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) bool: the reacher's arm -- warm (red well above blue) and yellow (green well
    above blue), which the red target (green ~ blue) and the blue arena are not."""
    f = frames.astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    return (r - b > 40) & (g - b > 30)


def arm_fscore(pred: np.ndarray, truth: np.ndarray, tol: float | None = None) -> np.ndarray:
    """Per frame (N,), the F-score of the imagined arm (`reacher_arm_mask` of pred (N, H, W, 3))
    against the true one at a tolerance of `tol` px (default ARM_TOLERANCE_PX, scaled to the frame
    side); NaN where the true frame shows no arm, 0 where the imagined one shows none. Pixels
    within ARM_HUB_PX of the frame centre -- the shoulder, where the camera "fixed" sees the arm's
    root in every pose -- are left out of both: an imagined arm that vanished but for a stub at
    the shoulder would otherwise score ~0.3 (perfect precision), more than a whole arm drawn at a
    slightly wrong angle."""
    from scipy.ndimage import distance_transform_edt

    pm, tm = reacher_arm_mask(np.asarray(pred)), reacher_arm_mask(np.asarray(truth))
    h, w = pm.shape[-2:]
    ys, xs = np.mgrid[0:h, 0:w]
    hub = (xs - (w / 2 - 0.5)) ** 2 + (ys - (h / 2 - 0.5)) ** 2 <= (ARM_HUB_PX * w / 64.0) ** 2
    pm, tm = pm & ~hub, tm & ~hub  # a stub at the shoulder says nothing about the pose
    tol = ARM_TOLERANCE_PX * w / 64.0 if tol is None else tol
    out = np.full(len(pm), np.nan)
    for i, (p, t) in enumerate(zip(pm, tm, strict=True)):
        if not t.any():
            continue
        if not p.any():
            out[i] = 0.0
            continue
        precision = (distance_transform_edt(~t)[p] <= tol).mean()  # distance to the nearest true arm pixel
        recall = (distance_transform_edt(~p)[t] <= tol).mean()
        out[i] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out


def motion_iou(pred: np.ndarray, truth: np.ndarray, newest: np.ndarray) -> np.ndarray:
    """Motion-mask IoU per frame: pixels that changed since `newest` (the newest prompt frame)
    in the truth vs in the prediction. NaN where neither changed. pred, truth (N, H, W, 3)."""
    return mask_iou(moving_pixels(pred, newest), moving_pixels(truth, newest))


def score_frames(pred: np.ndarray, truth: np.ndarray, newest: np.ndarray,
                 agent_xy_world: np.ndarray | None = None, arm: bool = False) -> dict[str, np.ndarray]:
    """Per-frame "what moves" scores of K imagined frames against the truth (K, H, W, 3):
    motion_iou always; with PushT agent positions (K, 2): agent_present, agent_err (pixels, inf
    where absent), agent_within (error <= 1/16 of the frame side), the same split into frames whose
    true agent touches the T (agent_within_contact) and the rest (agent_within_free; NaN where the
    frame belongs to the other), block_iou, t_shape (`t_shape`: is the imagined T still a T); with arm (the reacher): arm_f (`arm_fscore`), split into
    frames whose true arm moved off its pose in `newest` (arm_f_moved) and the rest (arm_f_still);
    goal_bias (PushT): the goal coverage read off the imagined frame minus the true frame's
    (`goal_cover`)."""
    out = {"motion_iou": motion_iou(pred, truth, newest)}
    if arm:  # split where the true arm moved off its newest prompt pose (F-score < 0.5 against it), as
        # the agent is split at contact: where the arm stays, copying the last frame scores well
        out["arm_f"] = arm_fscore(pred, truth)
        moved = arm_fscore(np.broadcast_to(newest, truth.shape), truth) < 0.5
        out["arm_f_moved"] = np.where(moved, out["arm_f"], np.nan)
        out["arm_f_still"] = np.where(moved, np.nan, out["arm_f"])
    if agent_xy_world is not None:
        present, err = agent_errors(pred, agent_xy_world)
        out["agent_present"] = present.astype(np.float64)
        out["agent_err"] = err
        out["agent_within"] = (err <= pred.shape[-2] / 16.0).astype(np.float64)
        touch = agent_contact(truth, agent_xy_world)
        out["agent_within_contact"] = np.where(touch, out["agent_within"], np.nan)
        out["agent_within_free"] = np.where(touch, np.nan, out["agent_within"])
        out["block_iou"] = mask_iou(block_mask(pred), block_mask(truth))
        out["t_shape"] = t_shape(pred)  # where the T is drawn aside: whether it is drawn as a T at all
        # how much more of the goal the imagined T covers than the true one (> 0: an optimistic
        # simulator, the T drifting onto the goal drawn in the frame)
        out["goal_bias"] = goal_cover(pred) - goal_cover(truth)
    return out
