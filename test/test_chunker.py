"""The 2 Hz step contract (hma_ros/data/chunker.py), as specifications."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hma_ros.data.chunker import Chunker, ChunkerConfig, chunk_recording, stride_for


def stream(t0: float, hz: float, duration: float, jitter: float = 0.0, rng=None):
    n = int(duration * hz)
    t = t0 + np.arange(n) / hz
    if jitter and rng is not None:
        t = t + rng.uniform(-jitter, jitter, n) / hz
    return t


def ramp_actions(ts, dim=2):
    return [(t, np.array([t * (d + 1) for d in range(dim)])) for t in ts]


@pytest.mark.parametrize("hz,stride", [(1, 1), (2, 1), (3, 2), (5, 3), (10, 5), (15, 8), (30, 15),
                                       (50, 25), (100, 50), (200, 100), (0.5, 1)])
def test_stride_rounds_half_the_native_rate(hz, stride):
    assert stride_for(hz) == stride


def test_ticks_start_at_the_first_frame_and_actions_sit_on_the_in_step_grid():
    cfg = ChunkerConfig(action_hz=10, action_dim=2)
    frames = [(t, f"f{t:.2f}") for t in stream(100.03, 30, 3.0)]
    actions = ramp_actions(stream(100.0, 10, 3.2))
    steps = chunk_recording(cfg, frames, actions)
    assert [s.index for s in steps] == list(range(len(steps)))
    assert steps[0].t == pytest.approx(100.03)
    assert np.allclose(np.diff([s.t for s in steps]), 0.5)
    s = steps[1]  # t_1 = 100.53; grid 100.53 + i*0.1; ZOH takes the sample at or before each
    expected = np.floor((s.t + np.arange(5) * 0.1 - 100.0) * 10 + 1e-6) / 10 + 100.0
    assert s.actions.shape == (5, 2) and s.action_mask.all()
    np.testing.assert_allclose(s.actions[:, 0], expected, atol=1e-5)
    np.testing.assert_allclose(s.actions[:, 1], 2 * expected, atol=1e-4)
    assert abs(s.frame_t - s.t) <= 1 / 60 + 1e-9  # the nearest of the 30 Hz frames


def test_linear_interpolation_reproduces_a_ramp_exactly():
    cfg = ChunkerConfig(action_hz=10, action_dim=2, interpolation="linear")
    steps = chunk_recording(cfg, [(t, 0) for t in stream(5.0, 10, 2.0)],
                            ramp_actions(stream(4.95, 7, 2.5)))
    for s in steps:
        grid = s.t + np.arange(5) * 0.1
        np.testing.assert_allclose(s.actions[:, 0], grid, atol=1e-5)


def test_a_step_completes_only_once_actions_reach_the_end_of_its_window():
    ch = Chunker(ChunkerConfig(action_hz=10, action_dim=1))
    out = ch.push_frame(0.0, "a") + ch.push_frame(0.3, "b")
    for t in np.arange(0, 0.5, 0.1):
        out += ch.push_action(t, [t])
    assert out == []  # samples only up to 0.4: [0, 0.5) not yet closed
    out = ch.push_action(0.5, [0.5])
    assert len(out) == 1 and out[0].frame == "a" and out[0].valid


def test_missing_frames_and_action_gaps_are_marked_invalid_not_filled():
    cfg = ChunkerConfig(action_hz=10, action_dim=1)
    frame_t = [t for t in stream(0.0, 10, 6.0) if not 2.2 < t < 2.8]  # camera drops ~0.6 s
    act_t = [t for t in stream(0.0, 10, 6.0) if not 3.95 < t < 4.45]  # 5 command samples lost
    steps = chunk_recording(cfg, [(t, t) for t in frame_t], ramp_actions(act_t, 1))
    by_t = {round(s.t, 2): s for s in steps}
    assert not by_t[2.5].frame_valid and not by_t[2.5].valid
    assert by_t[2.0].frame_valid and by_t[3.0].frame_valid
    s4 = by_t[4.0]
    assert s4.frame_valid and not s4.valid
    # last sample 3.9 s: held while younger than 2.5 periods (0.25 s), then a gap
    assert list(s4.action_mask) == [True, True, False, False, False]
    assert np.all(s4.actions[~s4.action_mask] == 0)
    assert len({s.episode for s in steps}) == 1


def test_a_gap_longer_than_max_gap_starts_a_new_episode_at_the_next_frame():
    cfg = ChunkerConfig(action_hz=10, action_dim=1, max_gap=2.0)
    ft = list(stream(0.0, 10, 3.0)) + list(stream(6.07, 10, 3.0))
    at = list(stream(0.0, 20, 9.2))
    steps = chunk_recording(cfg, [(t, t) for t in ft], ramp_actions(at, 1))
    eps = sorted({s.episode for s in steps})
    assert eps == [0, 1]
    second = [s for s in steps if s.episode == 1]
    assert second[0].t == pytest.approx(6.07) and second[0].index == 0
    assert all(s.valid for s in second)


def test_time_going_backwards_resets_and_restarts_the_tick_grid():
    cfg = ChunkerConfig(action_hz=10, action_dim=1)
    ch = Chunker(cfg)
    out = []
    for base in (50.0, 10.0):  # the bag loops back to an earlier time
        for t in stream(base, 10, 3.0):
            out += ch.push_frame(t, t)
            out += ch.push_action(t, [t])
    out += ch.flush()
    assert ch.stats.resets == 1
    assert [s.episode for s in out].count(1) > 0
    restart = next(s for s in out if s.episode == 1)
    assert restart.t == pytest.approx(10.0) and restart.index == 0


def test_duplicates_nan_and_wrong_dimension_are_dropped_and_counted():
    ch = Chunker(ChunkerConfig(action_hz=10, action_dim=2))
    ch.push_frame(0.0, "a")
    ch.push_frame(0.0, "dup")
    ch.push_action(0.0, [1, 2])
    ch.push_action(0.0, [9, 9])
    ch.push_action(0.1, [np.nan, 1])
    ch.push_action(0.2, [1, 2, 3])
    assert ch.stats.duplicates == 2 and ch.stats.rejected == 2
    assert "expected 2 finite values" in ch.stats.messages[-1]


def test_joint_deltas_as_a_proxy_action():
    cfg = ChunkerConfig(action_hz=10, action_dim=1, transform="delta", interpolation="linear")
    steps = chunk_recording(cfg, [(t, 0) for t in stream(0, 10, 2)],
                            [(t, [3 * t]) for t in stream(0, 10, 2.6)])
    for s in steps:
        np.testing.assert_allclose(s.actions[:, 0], 0.3, atol=1e-5)  # velocity 3 x 0.1 s


def test_buffers_stay_bounded_on_a_long_stream():
    ch = Chunker(ChunkerConfig(action_hz=200, action_dim=3))
    n = 0
    for i in range(200 * 120):  # 2 minutes of 200 Hz joints, 30 Hz camera
        t = i / 200
        if i % 7 == 0:
            n += len(ch.push_frame(t, None))
        n += len(ch.push_action(t, [t, t, t]))
        assert len(ch._at) < 200 * 3 and len(ch._ft) < 30 * 3
    assert n >= 235


# ---------------------------------------------------------------- properties (hypothesis)
@st.composite
def recordings(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    action_hz = draw(st.sampled_from([3.0, 10.0, 20.0, 50.0, 100.0]))
    cam_hz = draw(st.sampled_from([4.0, 10.0, 15.0, 30.0]))
    dur = draw(st.floats(2.0, 6.0))
    ft = stream(float(draw(st.floats(0, 1e4))), cam_hz, dur, jitter=0.3, rng=rng)
    at = stream(ft[0] + draw(st.floats(-0.5, 0.5)), action_hz, dur + 1, jitter=0.3, rng=rng)
    drop_f = rng.random(len(ft)) < draw(st.floats(0, 0.3))
    drop_a = rng.random(len(at)) < draw(st.floats(0, 0.3))
    frames = [(t, i) for i, t in enumerate(ft) if not drop_f[i]]
    actions = [(t, rng.normal(size=2)) for i, t in enumerate(at) if not drop_a[i]]
    interp = draw(st.sampled_from(["zoh", "linear"]))
    return ChunkerConfig(action_hz=action_hz, action_dim=2, interpolation=interp), frames, actions, rng


def _live(cfg, frames, actions, rng, max_lag=0.8):
    """Deliver each message at stamp + a random transport latency (< max_lag); per-stream order
    kept, like a subscriber's queue; the interleaving of the two streams is random."""
    lat_f = np.maximum.accumulate(rng.uniform(0, max_lag, len(frames)) + [t for t, _ in frames])
    lat_a = np.maximum.accumulate(rng.uniform(0, max_lag, len(actions)) + [t for t, _ in actions])
    events = sorted([(a, 0, i) for i, a in enumerate(lat_f)] + [(a, 1, i) for i, a in enumerate(lat_a)])
    ch = Chunker(cfg)
    out = []
    for _, kind, i in events:
        out += ch.push_frame(*frames[i]) if kind == 0 else ch.push_action(*actions[i])
    return out + ch.flush()


def _key(s):
    return (s.episode, s.index, round(s.t, 9), s.frame, tuple(s.action_mask), s.actions.tobytes())


@settings(max_examples=60, deadline=None)
@given(recordings())
def test_live_and_offline_give_identical_steps_under_random_interleavings(rec):
    cfg, frames, actions, rng = rec
    offline = chunk_recording(cfg, frames, actions)
    live = _live(cfg, frames, actions, rng)
    assert [_key(s) for s in live] == [_key(s) for s in offline]


@settings(max_examples=60, deadline=None)
@given(recordings())
def test_mask_and_stride_invariants(rec):
    cfg, frames, actions, _ = rec
    steps = chunk_recording(cfg, frames, actions)
    for s in steps:
        assert s.actions.shape == (cfg.stride, 2) and s.actions.dtype == np.float32
        assert s.action_mask.shape == (cfg.stride,)
        assert np.all(s.actions[~s.action_mask] == 0)
        assert np.all(np.isfinite(s.actions))
        if s.frame_valid:
            assert abs(s.frame_t - s.t) <= cfg.frame_tolerance + 1e-9
        assert s.valid == (s.frame_valid and s.action_mask.all())
    for a, b in zip(steps, steps[1:], strict=False):
        if a.episode == b.episode:
            assert b.index == a.index + 1 and b.t == pytest.approx(a.t + 0.5)
        else:
            assert b.episode == a.episode + 1 and b.index == 0


# ----------------------------------------------------------------------------- a robot at rest
def _rest_cfg(mode: str) -> ChunkerConfig:
    return ChunkerConfig(action_hz=10, action_dim=2, at_rest=mode, command_timeout=0.5)


def _idle_stream(ch: Chunker, t_end: float, t_start: float = 0.0, joints=(100.0, 200.0)) -> list:
    """Camera at 10 Hz and joint states at 50 Hz, no commands, as a robot standing still sends."""
    steps = []
    for i in range(int(round((t_end - t_start) * 50)) + 1):
        t = t_start + i * 0.02
        if i % 5 == 0:
            steps += ch.push_frame(t, f"frame@{t:.2f}")
        steps += ch.push_hold(t, joints)
    return steps


def test_an_idle_command_robot_yields_valid_steps_holding_its_measured_joints():
    ch = Chunker(_rest_cfg("joints"))
    steps = _idle_stream(ch, 3.0)
    assert len(steps) >= 5 and all(s.valid for s in steps)
    assert all(np.array_equal(s.actions, np.tile([100.0, 200.0], (5, 1))) for s in steps)
    assert ch.stats.holds > 100


@pytest.mark.parametrize("mode,expected", [("zero", [0.0, 0.0]), ("last", [7.0, 8.0])])
def test_hold_zero_or_last_command_when_the_command_stream_stops(mode, expected):
    ch = Chunker(_rest_cfg(mode))
    steps = []
    for i in range(21):  # 2 s of commands at 10 Hz, then silence while camera and joints go on
        t = i * 0.1
        steps += ch.push_frame(t, t)
        steps += ch.push_action(t, [7.0, 8.0])
    steps += _idle_stream(ch, 6.0, t_start=2.02)
    late = [s for s in steps if s.t >= 3.0]  # past command_timeout after the last command
    assert late and all(s.valid for s in late)
    assert all(np.allclose(s.actions, expected) for s in late)
    assert all(s.episode == steps[0].episode for s in steps)  # holding still is not a new episode


def test_fresh_commands_win_over_hold_samples_and_a_gap_inside_a_stream_stays_invalid():
    ch = Chunker(ChunkerConfig(action_hz=10, action_dim=2, at_rest="joints", command_timeout=1.0))
    steps = []
    for i in range(41):  # commands at 10 Hz for 4 s, except a 0.5 s hole; joints at 50 Hz throughout
        t = i * 0.1
        steps += ch.push_frame(t, t)
        if not 1.95 < t < 2.5:
            steps += ch.push_action(t, [float(i), 0.0])
        for j in range(5):
            steps += ch.push_hold(t + 0.02 * j, [-1.0, -1.0])
    assert ch.stats.holds == 0  # the stream was never older than command_timeout
    by_k = {s.index: s for s in steps}
    assert by_k[0].valid and by_k[0].actions[0, 0] == 0.0 and by_k[1].actions[2, 0] == 7.0
    assert not by_k[4].valid  # the hole [2.0, 2.5) is a gap, not a hold
    assert all((s.actions >= 0).all() for s in steps)


def test_stale_commands_count_as_none():
    ch = Chunker(_rest_cfg("joints"))
    steps = ch.push_action(0.0, [5.0, 5.0])  # one command, then only joint states
    steps += _idle_stream(ch, 3.0, t_start=0.0, joints=(50.0, 60.0))
    late = [s for s in steps if s.t >= 1.0]
    assert late and all(s.valid and np.allclose(s.actions, [50.0, 60.0]) for s in late)


def test_without_at_rest_an_idle_command_robot_completes_no_valid_step():
    ch = Chunker(_rest_cfg("none"))
    steps = _idle_stream(ch, 5.0)
    assert not any(s.valid for s in steps) and ch.stats.holds == 0
    with pytest.raises(ValueError, match="at_rest must be one of"):
        ChunkerConfig(action_hz=10, action_dim=2, at_rest="freeze")


def test_a_command_replaces_hold_samples_at_or_after_its_stamp():
    """Commands win: a robot starting to move is never reported with a 'late' first command
    because a hold sample (stamped on another path) got in ahead of it."""
    ch = Chunker(_rest_cfg("joints"))
    steps = _idle_stream(ch, 1.0, joints=(1.0, 1.0))  # holds up to t=1.0
    steps += ch.push_action(0.95, [9.0, 9.0])  # earlier than the newest hold: replaces 0.96..1.0
    steps += ch.push_action(1.0, [9.0, 9.0])  # same stamp as a (dropped) hold
    for i in range(1, 20):
        t = 1.0 + 0.1 * i
        steps += ch.push_frame(t, t)
        steps += ch.push_action(t, [9.0, 9.0])
    by_k = {s.index: s for s in steps}
    assert ch.stats.late == 0 and ch.stats.duplicates == 0
    assert np.allclose(by_k[1].actions, 1.0)  # [0.5, 1.0): holding
    assert np.allclose(by_k[2].actions, 9.0)  # [1.0, 1.5): the commands


def test_a_timed_plan_becomes_chunks_on_the_step_grid_by_zero_order_hold():
    """plan_chunks: chunk k holds the plan's commands at start + k * 0.5 + i * 0.5 / stride (the
    last sample at or before each instant); before the plan's first sample the first, after its
    last the last; a plan with times out of order or mismatched shapes is refused."""
    from hma_ros.data.chunker import plan_chunks

    t = 100.0 + np.arange(20) / 10.0  # a 10 Hz plan from t = 100.0 to 101.9
    v = np.stack([np.arange(20.0), -np.arange(20.0)], 1)
    c = plan_chunks(t, v, 100.3, 3, 5)
    assert c.shape == (3, 5, 2)
    assert c[0, :, 0].tolist() == [3, 4, 5, 6, 7] and c[1, :, 0].tolist() == [8, 9, 10, 11, 12]
    assert c[2, :, 0].tolist() == [13, 14, 15, 16, 17] and c[2, :, 1].tolist() == [-13, -14, -15, -16, -17]
    assert plan_chunks(t + 1e-9, v, 100.3, 1, 5)[0, :, 0].tolist() == [3, 4, 5, 6, 7]  # stamps' float slack
    late = plan_chunks(t, v, 101.5, 2, 5)[:, :, 0]  # past the plan's end: its last command held
    assert late.tolist() == [[15, 16, 17, 18, 19], [19, 19, 19, 19, 19]]
    assert plan_chunks(t, v, 99.8, 1, 5)[0, :, 0].tolist() == [0, 0, 0, 1, 2]  # before it: its first
    with pytest.raises(ValueError, match="must not decrease"):
        plan_chunks(t[::-1], v, 100.0, 1, 5)
    with pytest.raises(ValueError, match="N sample times"):
        plan_chunks(t, v[:5], 100.0, 1, 5)
