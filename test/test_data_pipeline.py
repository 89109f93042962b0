"""Simulator rollouts, rosbag2 round trip, datasets, and bag2data's handling of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hma_ros.cli.main import main as hma
from hma_ros.data.bags import BagError, bag_steps, open_reader
from hma_ros.data.chunker import Chunker
from hma_ros.data.dataset import Dataset, DatasetError, DatasetWriter, MixtureSampler
from hma_ros.data.embodiment import ConfigError, embodiment_from_dict, load_embodiment
from hma_ros.data.images import image_to_rgb

REALBAGS = Path(__file__).resolve().parent / "data" / "realbags"  # in the project: a clone tests alone


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    rc = hma(["gen-data", "--out", str(out), "--embodiments", "pusht,reacher", "--episodes", "3",
              "--seconds", "5", "--bag", "--workers", "1"])
    assert rc == 0
    return out


def test_gen_data_writes_valid_datasets_with_simulator_state(generated):
    ds = Dataset(generated / "pusht")
    assert ds.meta["stride"] == 5 and ds.meta["action_dim"] == 2
    assert len(ds.episodes) == 3 and all(n == 10 for _, n in ds.episodes)  # 5 s at 2 Hz
    assert ds.valid().all()
    frames = np.asarray(ds.arrays["frames"])
    assert frames.shape[1:] == (64, 64, 3) and frames.std() > 20
    assert ds.meta["state_keys"][:2] == ["block_x", "block_y"]
    assert np.isfinite(ds.arrays["state"]).all()
    reacher = Dataset(generated / "reacher")
    assert reacher.meta["stride"] == 25 and reacher.arrays["actions"].shape[1:] == (25, 2)
    # actions change what happens: consecutive frames of an episode differ
    assert np.abs(np.diff(np.asarray(reacher.arrays["frames"][:10], float), axis=0)).mean() > 0.5


def test_pose_demonstrations_push_the_t_and_the_default_policy_mix_is_unchanged(tmp_path, capsys):
    from hma_ros.data.rollout import policy_schedule

    # the default mix draws exactly as before --policies existed (datasets regenerate bitwise)
    old = np.array(["expert", "noisy", "random"])[np.random.default_rng(3).choice(3, size=40, p=[0.4, 0.3, 0.3])]
    assert policy_schedule(40, 3) == list(old)
    assert hma(["gen-data", "--out", str(tmp_path), "--embodiments", "pusht", "--episodes", "2", "--seconds", "6",
                "--workers", "1", "--policies", "pose=1"]) == 0
    ds = Dataset(tmp_path / "pusht")
    assert ds.meta["policies"] == ["pose", "pose"]
    keys = ds.meta["state_keys"]
    state = np.asarray(ds.arrays["state"])
    for start, n in ds.episodes:  # the pose pusher reaches the T and moves it in 6 s
        block = state[start:start + n][:, [keys.index("block_x"), keys.index("block_y")]]
        assert np.linalg.norm(block[-1] - block[0]) > 10.0 or abs(
            state[start + n - 1, keys.index("block_angle")] - state[start, keys.index("block_angle")]) > 0.2
    assert hma(["gen-data", "--out", str(tmp_path / "r"), "--embodiments", "reacher", "--policies", "pose=1"]) == 2
    assert "pose, pose_noisy and pose_elsewhere exist for pusht only" in capsys.readouterr().err


def test_pose_elsewhere_pushes_the_t_towards_its_own_random_targets_not_the_goal():
    """pose_elsewhere decorrelates the T's motion from the goal drawn in the frame: in 4 s (one
    target) the pose pusher brings the T closer to the random target in every episode, and in
    some the T moves away from the task's goal."""
    from hma_ros.data.sims import Policy, make_sim

    sim = make_sim("pusht")
    closer, away = [], []
    try:
        for seed in range(4):
            sim.reset(seed)
            pol = Policy(sim, "pose_elsewhere", np.random.default_rng(seed))
            start = np.array(sim.u.block.position)
            for i in range(pol.every):
                sim.step(pol())
                if i == 0:
                    target = pol.target.copy()
            end, goal = np.array(sim.u.block.position), np.array(sim.u.goal_pose[:2])
            closer.append(np.linalg.norm(start - target[:2]) - np.linalg.norm(end - target[:2]))
            away.append(np.linalg.norm(end - goal) - np.linalg.norm(start - goal))
            pol()
            assert pol.every == 40 and not np.allclose(target, pol.target)  # a new target every 4 s
    finally:
        sim.close()
    assert min(closer) > 30.0, closer
    assert max(away) > 30.0, away


def test_two_datasets_of_one_embodiment_train_as_one(generated, tmp_path):
    from hma_ros.data.dataset import find_datasets

    assert hma(["gen-data", "--out", str(tmp_path), "--embodiments", "pusht", "--episodes", "2", "--seconds", "4",
                "--seed", "5", "--workers", "1"]) == 0
    a, b = Dataset(generated / "pusht"), Dataset(tmp_path / "pusht")
    found = find_datasets([generated, tmp_path / "pusht", generated / "pusht"])  # the same folder twice counts once
    m = found["pusht"]
    assert set(found) == {"pusht", "reacher"} and len(m) == len(a) + len(b)
    assert m.episodes == a.episodes + [(s + len(a), n) for s, n in b.episodes]
    assert np.array_equal(m.arrays["frames"][len(a):], b.arrays["frames"])
    acts = np.concatenate([np.asarray(d.arrays["actions"])[d.arrays["action_mask"].astype(bool)] for d in (a, b)])
    np.testing.assert_allclose(m.stats["mean"], acts.mean(0), rtol=1e-5)
    np.testing.assert_allclose(m.stats["std"], acts.std(0), rtol=1e-4)
    assert m.stats["count"] == len(acts) and len(m.meta["policies"]) == len(m.episodes)
    assert len(m.window_starts(6)) == len(a.window_starts(6)) + len(b.window_starts(6))  # never across the seam
    with pytest.raises(DatasetError, match="differ in stride"):
        bad = Dataset(tmp_path / "pusht")
        bad.meta = {**bad.meta, "stride": 3}
        from hma_ros.data.dataset import merged

        merged([a, bad])


def test_bag_round_trip_gives_the_same_steps_as_the_direct_dataset(generated, tmp_path):
    assert hma(["bag2data", str(generated / "bags/pusht"), "--embodiment", "pusht",
                "--out", str(tmp_path / "rt")]) == 0
    direct, rt = Dataset(generated / "pusht"), Dataset(tmp_path / "rt")
    assert direct.episodes == rt.episodes
    np.testing.assert_array_equal(np.asarray(direct.arrays["frames"]), np.asarray(rt.arrays["frames"]))
    np.testing.assert_allclose(rt.arrays["actions"], direct.arrays["actions"], atol=1e-5)
    np.testing.assert_array_equal(rt.arrays["action_mask"], direct.arrays["action_mask"])
    np.testing.assert_allclose(rt.arrays["t"], direct.arrays["t"], atol=1e-6)


def test_reader_windows_split_and_mixture_weights(generated):
    ds = {n: Dataset(generated / n) for n in ("pusht", "reacher")}
    starts = ds["pusht"].window_starts(4)
    assert len(starts) == 3 * (10 - 4 + 1)  # windows never cross episodes
    w = ds["pusht"].window(int(starts[0]), 4)
    assert w.frames.shape == (4, 64, 64, 3) and w.actions.shape == (4, 5, 2) and w.action_mask.all()
    train, val = ds["pusht"].split(0.34, seed=0)
    assert sorted(train + val) == [0, 1, 2] and len(val) == 1
    sampler = MixtureSampler(ds, T=4, batch_size=3, seed=0)
    n = np.array([len(sampler.starts[k]) for k in sampler.names], float)
    expected = (n / n.sum()) ** (1 / 3)
    np.testing.assert_allclose(sampler.weights, expected / expected.sum())
    name, batch = sampler.sample()
    assert len(batch) == 3 and all(b.actions.shape[1] == ds[name].meta["stride"] for b in batch)
    given = MixtureSampler(ds, T=4, batch_size=3, seed=0, shares={"pusht": 3, "reacher": 1})
    np.testing.assert_allclose(given.weights, [0.75, 0.25] if given.names[0] == "pusht" else [0.25, 0.75])
    drawn = [given.sample()[0] for _ in range(400)]
    assert 0.68 < drawn.count("pusht") / 400 < 0.82
    with pytest.raises(DatasetError, match="weight > 0 to each of"):
        MixtureSampler(ds, T=4, batch_size=3, shares={"pusht": 1.0})


def test_a_half_written_dataset_is_never_readable(tmp_path):
    emb = load_embodiment("pusht")
    writer = DatasetWriter(tmp_path / "d", emb)
    ch = Chunker(emb.chunker_config)
    for i in range(30):
        for s in ch.push_frame(i * 0.1, np.zeros((64, 64, 3), np.uint8)) + ch.push_action(i * 0.1, [1.0, 2.0]):
            writer.add(s)
    assert writer.n > 0
    assert not (tmp_path / "d").exists()  # nothing at the destination until close()
    with pytest.raises(DatasetError, match="no meta.json"):
        Dataset(writer.tmp)
    writer.close()
    assert len(Dataset(tmp_path / "d")) == writer.n
    (tmp_path / "d" / "actions.f32").write_bytes(b"\0" * 8)
    with pytest.raises(DatasetError, match="wrong size"):
        Dataset(tmp_path / "d")


def test_embodiment_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\naction: {source: command, topic: c, type: t, dim: 2}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: missing key 'action.hz'"):
        load_embodiment(bad)
    with pytest.raises(ConfigError, match="must be one of"):
        embodiment_from_dict({"name": "x", "action": {"source": "telepathy"}}, "f.yaml")
    with pytest.raises(ConfigError, match="unknown embodiment 'nope'.*Known: .*pusht"):
        load_embodiment("nope")


def test_missing_topic_lists_the_topics_the_bag_has(tmp_path):
    bag = REALBAGS / "pr2_joint_states_2012.bag"
    with pytest.raises(BagError) as e:
        list(bag_steps(bag, load_embodiment("pr2")))
    msg = str(e.value)
    assert "/wide_stereo/left/image_raw" in msg and "not in the bag" in msg
    assert "/joint_states [sensor_msgs/msg/JointState]" in msg


def test_real_pr2_bayer_frames_demosaic_to_plausible_colour_images():
    reader = open_reader(REALBAGS / "pr2_wide_stereo_bayer.bag")
    try:
        conns = [c for c in reader.connections if c.topic == "/wide_stereo/left/image_raw"]
        frames = []
        for conn, _, raw in reader.messages(connections=conns):
            m = reader.deserialize(raw, conn.msgtype)
            assert m.encoding == "bayer_bggr8"
            frames.append(image_to_rgb(m.encoding, m.height, m.width, m.step, m.data, m.is_bigendian))
    finally:
        reader.close()
    assert len(frames) == 19 and frames[0].shape == (480, 640, 3)
    f = frames[0].astype(float)
    assert f.std() > 10
    # demosaiced colour: channels differ (a wrong pattern leaves a checkerboard, not colour)
    assert np.abs(np.diff(f[200:280, 280:360], axis=1)).mean() < 20


def test_real_pr2_joint_states_at_100hz_chunk_into_stride_50(tmp_path):
    emb = load_embodiment("pr2")
    reader = open_reader(REALBAGS / "pr2_joint_states_2012.bag")
    ch = Chunker(emb.chunker_config)
    steps = []
    try:
        conns = [c for c in reader.connections if c.topic == "/joint_states"]
        next_frame = None
        for conn, _, raw in reader.messages(connections=conns):
            m = reader.deserialize(raw, conn.msgtype)
            t = m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec
            next_frame = t if next_frame is None else next_frame
            while next_frame <= t:  # a 2 Hz camera over the same span (the bag has none)
                steps += ch.push_frame(next_frame, next_frame)
                next_frame += 0.5
            idx = {n: i for i, n in enumerate(m.name)}
            steps += ch.push_action(t, [m.position[idx[n]] for n in emb.joint_names])
    finally:
        reader.close()
    steps += ch.flush()
    assert emb.stride == 50 and len(steps) >= 25  # 13.5 s of joints at 2 Hz
    assert all(s.actions.shape == (50, 8) for s in steps)
    assert sum(s.valid for s in steps) >= 20


def test_zero_complete_steps_explains_why(generated, tmp_path, capsys):
    rc = hma(["bag2data", str(generated / "bags/pusht"), "--embodiment", "pusht", "--out",
              str(tmp_path / "z"), "--action-topic", "joint_states", "--action-field", "name"])
    err = capsys.readouterr().err
    assert rc == 2 and "zero complete steps" in err and "no action samples" in err
    assert not (tmp_path / "z").exists()


def test_a_corrupt_bag_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.bag"
    bad.write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 100)
    rc = subprocess.run([sys.executable, "-m", "hma_ros.cli.main", "bag2data", str(bad),
                         "--embodiment", "pusht", "--out", str(tmp_path / "o")],
                        capture_output=True, text=True)
    assert rc.returncode == 2 and "cannot open" in rc.stderr and "broken.bag" in rc.stderr


def test_data_info_summarises_and_draws_a_contact_sheet(generated, tmp_path, capsys):
    assert hma(["data", "info", str(generated / "pusht"), "--sheet", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "episodes 3  steps 30 (valid 30, 100.0%)" in out and "stride 5" in out
    import imageio.v2 as imageio

    sheet = imageio.imread(tmp_path / "s.png")
    assert sheet.shape[0] > 100 and sheet.shape[1] > 400
    meta = json.loads((generated / "pusht" / "meta.json").read_text())
    assert meta["format"] == "hma_ros.dataset" and meta["version"] == 1


def test_a_truncated_mcap_keeps_every_complete_step_and_says_where_it_stopped(generated, tmp_path, capsys):
    import shutil

    bag = tmp_path / "cut"
    shutil.copytree(generated / "bags/pusht", bag)
    mcap = next(bag.glob("*.mcap"))
    size = mcap.stat().st_size
    with open(mcap, "r+b") as f:
        f.truncate(int(size * 0.6))  # the recorder died: no footer, no index, a cut chunk
    assert hma(["bag2data", str(bag), "--embodiment", "pusht", "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "no MCAP footer/index (truncated?)" in out and f"of {int(size * 0.6)}" in out
    cut, full = Dataset(tmp_path / "d"), Dataset(generated / "pusht")
    n = len(cut)
    assert 0.3 * len(full) < n < len(full)
    np.testing.assert_array_equal(np.asarray(cut.arrays["frames"]), np.asarray(full.arrays["frames"][:n]))
    np.testing.assert_allclose(cut.arrays["actions"], full.arrays["actions"][:n], atol=1e-5)


def test_a_conversion_killed_hard_leaves_a_temp_folder_the_next_run_removes(tmp_path):
    """kill -9 mid-write: the destination stays untouched, the temp folder of the dead process is
    left beside it, and the next run into that parent removes it (a live writer's never)."""
    import os
    import signal
    import time

    out = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-c", "from hma_ros.cli.main import main; main()", "gen-data",
                             "--out", str(out), "--embodiments", "pusht", "--episodes", "40", "--seconds", "8",
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    deadline = time.monotonic() + 60
    while not list(out.glob(".pusht.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stale = list(out.glob(".pusht.tmp-*"))
    assert len(stale) == 1 and not (out / "pusht").exists()
    live = out / f".other.tmp-{os.getpid()}-1"  # this (live) process's: must survive
    live.mkdir()
    assert hma(["gen-data", "--out", str(out), "--embodiments", "pusht", "--episodes", "1",
                "--seconds", "3", "--workers", "1"]) == 0
    assert not stale[0].exists() and live.exists()
    assert Dataset(out / "pusht").meta["embodiment"]["name"] == "pusht"
