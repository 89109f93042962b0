"""Measuring what moves: the PushT agent detector on real simulator frames, the block mask,
motion-mask IoU -- the measures behind `hma eval`'s tracking table and `make demo`."""

from __future__ import annotations

import os

import numpy as np
import pytest

from hma_ros.evaluation.tracking import (
    T_SHAPE_MIN,
    agent_contact,
    agent_errors,
    arm_fscore,
    block_mask,
    find_agent,
    goal_cover,
    goal_mask,
    mask_iou,
    motion_iou,
    pusht_project,
    reacher_arm_mask,
    score_frames,
    t_shape,
)


@pytest.fixture(scope="module")
def pusht_frames():
    """Real gym-pusht frames at the model's 64x64 with the simulator's agent position."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from pusht_frames import collect

    from hma_ros.data.sims import make_sim

    sim = make_sim("pusht")
    frames, states = collect(sim, 500, episodes=12, steps=36, every=3)
    agent = [(st["agent_x"], st["agent_y"]) for st in states]
    sim.close()
    return frames, np.array(agent)


@pytest.fixture(scope="module")
def reacher_frames():
    """The reacher rendered by dm_control at 64x64 at random joint angles, with its arm's
    projected links (shoulder, elbow, fingertip in pixels) and the target disc (centre, radius)."""
    import math

    from hma_ros.data.sims import make_sim

    sim = make_sim("reacher")
    phys = sim.env.physics
    # the camera "fixed" looks straight down from z = 0.75 with MuJoCo's default 45-degree field
    # of view; the arm moves in the plane z = 0.01
    px = 64 / (2 * (0.75 - 0.01) * math.tan(math.radians(22.5)))

    def project(xy):
        return np.array([32 + xy[0] * px - 0.5, 32 - xy[1] * px - 0.5])

    rng = np.random.default_rng(0)
    frames, links, targets = [], [], []
    for i in range(60):
        sim.reset(i)
        with phys.reset_context():
            phys.data.qpos[:2] = rng.uniform([-math.pi, -2.8], [math.pi, 2.8])
        frames.append(sim.render())
        named = phys.named
        links.append([project(named.data.xpos["arm"][:2]), project(named.data.xpos["hand"][:2]),
                      project(named.data.geom_xpos["finger"][:2])])
        targets.append((project(named.data.geom_xpos["target"][:2]), named.model.geom_size["target"][0] * px))
    sim.close()
    return np.stack(frames), np.array(links), targets


def test_the_arm_mask_lies_on_the_reacher_arm_in_real_frames(reacher_frames):
    frames, links, targets = reacher_frames
    masks = reacher_arm_mask(frames)
    on_arm, covered = [], []
    for m, (a, b, c), (tc, tr) in zip(masks, links, targets, strict=True):
        pts = np.concatenate([a + (b - a) * t[:, None] for a, b in ((a, b), (b, c)) for t in [np.linspace(0, 1, 60)]])
        ys, xs = np.nonzero(m)
        pix = np.stack([xs, ys], 1).astype(float)
        d = np.linalg.norm(pix[:, None] - pts[None], axis=-1)
        on_arm.append(d.min(axis=1).max())  # the farthest mask pixel from the true links
        # every visible point of the links near a mask pixel (the shoulder's hub and the target
        # disc, drawn over the arm, hide it)
        visible = (np.linalg.norm(pts - a, axis=1) > 2.5) & (np.linalg.norm(pts - tc, axis=1) > tr + 1)
        covered.append(d.min(axis=0)[visible].max())
    assert masks.sum(axis=(1, 2)).min() >= 10
    assert max(on_arm) <= 1.1, sorted(on_arm)[-3:]
    assert np.mean(np.array(covered) <= 1.2) >= 0.99, sorted(covered)[-3:]


def test_the_arm_fscore_is_one_on_the_truth_and_drops_for_an_arm_elsewhere(reacher_frames):
    frames = reacher_frames[0]
    np.testing.assert_allclose(arm_fscore(frames, frames), 1.0)
    shifted = np.roll(frames, 1, axis=2)  # one pixel off: within the tolerance
    assert arm_fscore(shifted, frames).min() >= 0.95
    other = np.roll(frames, 1, axis=0)  # each frame scored against another pose
    f = arm_fscore(other, frames)
    assert np.median(f) < 0.5 and f.max() < 1.0
    gone = frames.copy()
    gone[reacher_arm_mask(gone)] = (30, 70, 110)  # painted over in the arena's blue
    np.testing.assert_array_equal(arm_fscore(gone, frames), 0.0)
    assert np.isnan(arm_fscore(frames[:1], gone[:1])[0])  # no true arm: nothing to score
    scores = score_frames(other[:4], frames[:4], frames[0], arm=True)
    np.testing.assert_allclose(scores["arm_f"], f[:4])
    # split where the true arm left its pose in the newest prompt frame: frame 0 is that frame
    moved = ~np.isnan(scores["arm_f_moved"])
    np.testing.assert_array_equal(moved, arm_fscore(np.repeat(frames[:1], 4, 0), frames[:4]) < 0.5)
    assert not moved[0] and moved.sum() >= 2
    np.testing.assert_allclose(np.where(moved, scores["arm_f_moved"], scores["arm_f_still"]), f[:4])
    assert "arm_f" not in score_frames(other[:4], frames[:4], frames[0])


def test_the_agent_detector_finds_the_agent_in_real_frames_within_one_pixel(pusht_frames):
    frames, agent = pusht_frames
    present, err = agent_errors(frames, agent)
    assert len(frames) == 144
    assert present.mean() >= 0.99
    assert np.mean(err <= 1.0) >= 0.99, np.sort(err)[-5:]


def test_no_agent_is_found_where_none_is_drawn(pusht_frames):
    frames, _ = pusht_frames
    f = frames[0].copy()
    present, centre = find_agent(f)
    assert present
    x, y = np.round(centre).astype(int)
    f[max(0, y - 4):y + 5, max(0, x - 4):x + 5] = 255  # paint the agent out
    assert not find_agent(f)[0]
    assert not find_agent(np.full((64, 64, 3), 255, np.uint8))[0]


def test_projection_maps_the_world_corners_onto_pixel_centres():
    np.testing.assert_allclose(pusht_project(np.array([[0.0, 0.0], [512.0, 256.0]]), 64),
                               [[-0.5, -0.5], [63.5, 31.5]])


def test_block_mask_covers_the_t_and_iou_drops_when_it_moves(pusht_frames):
    frames, _ = pusht_frames
    m = block_mask(frames)
    assert (m.sum(axis=(1, 2)) > 60).all()  # the T block is always in view (~115 px at 64x64)
    assert mask_iou(m[0], m[0]) == 1.0
    shifted = np.roll(frames[0], 6, axis=1)
    assert mask_iou(block_mask(shifted), m[0]) < 0.7


def test_t_shape_tells_a_whole_t_from_a_bent_melted_or_missing_one(pusht_frames):
    """tracking.t_shape: every real frame's T (any heading, the agent on it or not) is a whole T
    (>= T_SHAPE_MIN), and so is one turned by 90 degrees; the same T pixels melted into a blob, or
    its stem broken off and moved aside, are not; no T pixels: 0."""
    frames, _ = pusht_frames
    real = t_shape(frames)
    assert real.min() >= T_SHAPE_MIN and np.median(real) > 0.8
    assert t_shape(np.rot90(frames[:8], axes=(1, 2)).copy()).min() >= T_SHAPE_MIN
    m = block_mask(frames[:8])
    colour = frames[:8][m].mean(0).astype(np.uint8)  # the T's slate grey
    melted, broken, gone = frames[:8].copy(), frames[:8].copy(), frames[:8].copy()
    yy, xx = np.mgrid[:64, :64]
    for i in range(8):
        ys, xs = np.nonzero(m[i])
        for f in (melted, gone):
            f[i][m[i]] = 255  # the T painted out
        r = np.sqrt(m[i].sum() / np.pi)  # a disc of the T's area at its centroid
        melted[i][(yy - ys.mean()) ** 2 + (xx - xs.mean()) ** 2 <= r * r] = colour
        half = xs < np.median(xs)  # one half of the T's pixels moved 12 px away
        broken[i][ys[half], xs[half]] = 255
        broken[i][ys[half], np.clip(xs[half] - 12, 0, 63)] = colour
    assert block_mask(melted).sum() > 0.8 * m.sum()  # as many T pixels, in a blob
    assert t_shape(melted).max() < T_SHAPE_MIN and t_shape(broken).max() < T_SHAPE_MIN
    assert (t_shape(gone) == 0.0).all()


def test_goal_cover_reads_gym_pushts_coverage_off_the_pixels():
    """On simulator frames at posed T's (many near the goal) the T's share of the goal region's
    pixels follows gym-pusht's own coverage: correlation > 0.99, mean error < 0.05, none off
    by more than 0.2; a T off the goal covers none of it."""
    from hma_ros.evaluation.pusht_judge import posed_frames

    frames, states, keys = posed_frames(120, seed=5, near_goal=0.6, progress=False)
    cov, read = states[:, keys.index("coverage")], goal_cover(frames)
    assert goal_mask(64).sum() == 93  # the goal T: 6,300 world units^2, ~98 px at 64x64
    assert np.corrcoef(read, cov)[0, 1] > 0.99 and np.abs(read - cov).mean() < 0.05
    assert np.abs(read - cov).max() < 0.2 and (read[cov == 0] < 0.02).all() and (cov > 0.3).sum() >= 10


def test_goal_bias_is_zero_for_the_truth_and_signed_for_a_t_elsewhere(pusht_frames):
    """score_frames' goal_bias: the truth against itself 0; a frame whose T covers more of the
    goal than the true one scores > 0, the converse < 0."""
    from hma_ros.evaluation.pusht_judge import posed_frames

    frames, agent = pusht_frames
    s = score_frames(frames[1:9], frames[1:9], frames[0], agent[1:9])
    assert np.abs(s["goal_bias"]).max() == 0.0
    posed, states, keys = posed_frames(40, seed=6, near_goal=1.0, progress=False)
    on, off = posed[np.argmax(states[:, keys.index("coverage")])], frames[0]
    assert goal_cover(on[None])[0] > 0.5 and goal_cover(off[None])[0] < 0.05
    onto = score_frames(on[None], off[None], off, agent[:1])["goal_bias"][0]
    away = score_frames(off[None], on[None], on, agent[:1])["goal_bias"][0]
    assert onto > 0.45 and away == pytest.approx(-onto)


def test_motion_iou_of_a_known_change():
    newest = np.full((1, 8, 8, 3), 255, np.uint8)
    truth = newest.copy()
    truth[0, 2:4, 2:4] = 0  # 4 pixels changed
    pred = newest.copy()
    pred[0, 2:4, 3:5] = 0  # 4 pixels changed, 2 of them right
    assert motion_iou(pred, truth, newest[0])[0] == pytest.approx(2 / 6)
    assert motion_iou(newest, truth, newest[0])[0] == 0.0  # copy-last moves nothing
    assert np.isnan(motion_iou(newest, newest, newest[0])[0])  # nothing moved anywhere


def test_score_frames_of_the_truth_itself_is_perfect(pusht_frames):
    frames, agent = pusht_frames
    s = score_frames(frames[1:9], frames[1:9], frames[0], agent[1:9])
    assert s["agent_within"].min() == 1.0 and s["agent_present"].min() == 1.0
    assert np.nanmin(s["block_iou"]) == 1.0 and np.nanmin(s["motion_iou"]) == 1.0
    assert s["t_shape"].min() >= T_SHAPE_MIN


def test_demo_scoring_tracks_the_agent_in_filmstrips(pusht_frames):
    """make demo's recorder: a filmstrip that shows the true future scores 100% agent tracking,
    copying the current frame scores what it scores (the agent moved)."""
    from hma_ros.runtime.compare import match_imagined

    frames, agent = pusht_frames
    strip = np.concatenate([frames[0], frames[1], frames[2]], axis=1)  # now + 2 "imagined" tiles
    camera = [(10.5, frames[1]), (11.0, frames[2])]
    res = match_imagined([(10.0, strip)], camera, tiles=3, track_agent=True)["horizons"]
    assert res[1]["agent_within"] == 1.0 and res[2]["agent_within"] == 1.0
    moved = np.linalg.norm(pusht_project(agent[2], 64) - pusht_project(agent[0], 64)) > 4
    assert res[2]["copy_agent_within"] == (0.0 if moved else 1.0)
    assert res[1]["t_whole"] == res[1]["camera_t_whole"] == 1.0  # the true frames' Ts are whole


def test_tracking_is_split_where_the_agent_touches_the_t(pusht_frames):
    """agent_contact: a real frame whose agent is pushing the T counts as contact, one whose agent
    is far from it does not; score_frames reports agent_within on each side (NaN on the other)."""
    frames, agent = pusht_frames
    touch = agent_contact(frames, agent)
    xy = pusht_project(agent, 64)
    ys, xs = np.mgrid[0:64, 0:64]
    dist = np.array([np.sqrt((xs - x) ** 2 + (ys - y) ** 2)[block_mask(f)].min()
                     for f, (x, y) in zip(frames, xy, strict=True)])
    assert touch.any() and (~touch).any()  # the expert pushes: both kinds occur
    assert (dist[touch] <= 5.0).all() and (dist[~touch] > 5.0).all()
    s = score_frames(frames, frames, frames[0], agent)
    assert np.array_equal(np.isnan(s["agent_within_free"]), touch)
    assert np.array_equal(np.isnan(s["agent_within_contact"]), ~touch)
    assert np.nanmin(s["agent_within_contact"]) == 1.0
    blank = np.full_like(frames, 255)  # an imagined table with no agent: missed on both sides
    s = score_frames(blank, frames, frames[0], agent)
    assert np.nanmax(s["agent_within_contact"]) == 0.0 and np.nanmax(s["agent_within_free"]) == 0.0


def test_a_pooled_figures_interval_is_the_interval_of_that_figure():
    """summarize_moves pools frames (agent_within_contact: only the frames where the agent touches
    the T). Its interval resamples episodes but estimates the same pooled mean: an episode with one
    contact frame weighs one frame, not as much as an episode with twenty -- so the figure lies
    inside its interval (it fell outside when episodes weighed equally: 0.843 [0.721, 0.841])."""
    from hma_ros.evaluation.heldout import summarize_moves

    rng = np.random.default_rng(0)
    eps = np.repeat(np.arange(30), 4)  # 30 episodes x 4 windows x 8 steps
    rows = []
    for e in eps:
        hit = rng.random(8) < (0.95 if e % 2 else 0.3)  # odd episodes: many contact frames, mostly hits
        contact = rng.random(8) < (0.9 if e % 2 else 0.05)  # even ones: few contact frames, mostly misses
        rows.append({"agent_within_contact": np.where(contact, hit, np.nan).astype(float),
                     "agent_within": hit.astype(float)})
    res = summarize_moves({"model": rows}, eps)["model"]
    lo, hi = res["agent_within_contact_ci95"]
    assert lo < res["agent_within_contact"] < hi, (lo, res["agent_within_contact"], hi)
    per_ep = [np.stack([r["agent_within_contact"] for r, e2 in zip(rows, eps, strict=True) if e2 == e]) for e in range(30)]
    assert np.mean([np.nanmean(v) for v in per_ep if np.isfinite(v).any()]) < lo  # the episode-weighted mean is another figure, outside this interval
    lo, hi = res["agent_within_ci95"]  # no missing frames, equal windows: the plain episode bootstrap
    assert lo < res["agent_within"] < hi


def test_t_shape_probe_compare_pairs_two_checkpoints_whole_ts_per_band_of_true_motion(tmp_path):
    """scripts/t_shape_probe.py --compare A B: per band of how far the true T moved (its still-IoU),
    the whole-T counts of each and B - A over the same windows with a paired bootstrap interval;
    refused when the two files scored different windows."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from hma_ros.evaluation.tracking import T_SHAPE_MIN

    repo = Path(__file__).resolve().parents[1]
    still = [0.95] * 10 + [0.2] * 20  # 10 windows where the T stayed, 20 where it moved
    hi, lo = T_SHAPE_MIN + 0.05, T_SHAPE_MIN - 0.05
    a = {"ckpt": "A", "first_step": {"still_iou": still, "shape": [hi] * 10 + [hi] * 2 + [lo] * 18}}
    b = {"ckpt": "B", "first_step": {"still_iou": still, "shape": [hi] * 9 + [lo] + [hi] * 6 + [lo] * 14}}
    for name, row in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps([row]))
    out = subprocess.run([sys.executable, str(repo / "scripts/t_shape_probe.py"), "--compare",
                          str(tmp_path / "a.json"), str(tmp_path / "b.json")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert (r["a"], r["b"], r["windows"]) == ("A", "B", 30)
    stayed, moved = r["bands"]["true T still-IoU [0.9, 1.0]"], r["bands"]["true T still-IoU [0.0, 0.4]"]
    assert (stayed["windows"], stayed["a_whole"], stayed["b_whole"], stayed["b_minus_a"]) == (10, 10, 9, -0.1)
    assert (moved["windows"], moved["a_whole"], moved["b_whole"], moved["b_minus_a"]) == (20, 2, 6, 0.2)
    assert 0.0 < moved["ci95"][0] < 0.2 < moved["ci95"][1] <= 0.4  # the same 2 whole in both, 4 more in B: paired
    b["first_step"]["still_iou"] = still[::-1]
    (tmp_path / "b.json").write_text(json.dumps([b]))
    bad = subprocess.run([sys.executable, str(repo / "scripts/t_shape_probe.py"), "--compare",
                          str(tmp_path / "a.json"), str(tmp_path / "b.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "scored different windows" in bad.stderr
