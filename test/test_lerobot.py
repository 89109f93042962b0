"""LeRobot v3 in and out, and `hma synth`: real parquet (pyarrow) and mp4 (PyAV/FFmpeg), the
shipped world model, gen-data episodes. No mocks."""

from __future__ import annotations

import json
from io import BytesIO

import numpy as np
import pytest

from hma_ros.cli.main import main as hma
from hma_ros.data.dataset import Dataset

from ros_harness import REPO

MODEL = str(REPO / "models" / "hma_discrete_moves")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    assert hma(["gen-data", "--out", str(d / "src"), "--embodiments", "pusht", "--episodes", "3", "--seconds", "4",
                "--workers", "1"]) == 0
    for fmt, out in (("hma", "h"), ("lerobot", "lr")):
        assert hma(["synth", "--ckpt", MODEL, "--data", str(d / "src" / "pusht"), "--episodes", "2",
                    "--out", str(d / out), "--format", fmt, "--threads", "1"]) == 0
    return d


def _psnr(a, b):
    mse = ((np.asarray(a, float) - np.asarray(b, float)) ** 2).mean(axis=(1, 2, 3))
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12))


def test_synth_keeps_the_prompt_real_and_imagines_the_rest_from_the_recorded_actions(synth):
    src, syn = Dataset(synth / "src" / "pusht"), Dataset(synth / "h" / "pusht")
    P = syn.meta["synthetic_from_step"]
    assert P == 4 and syn.meta["synthetic"]["synthetic"] is True and syn.episodes == src.episodes[:2]
    assert np.array_equal(syn.arrays["actions"], src.arrays["actions"][:16])  # the recorded commands
    for a, n in syn.episodes:
        real, imag = np.asarray(src.arrays["frames"][a:a + n]), np.asarray(syn.arrays["frames"][a:a + n])
        assert np.array_equal(imag[:P], real[:P])  # the prompt is the real episode's
        assert not np.array_equal(imag[P:], real[P:])  # the rest is the model's
        assert _psnr(imag[P:], real[P:]).mean() > 20  # and looks like the episode


def test_bc_trains_on_the_synthetic_steps_asked_for(synth, capsys):
    """hma train-bc --synthetic-frames: of an hma synth dataset, the real prompt frames (real),
    the imagined ones (imagined), each episode's first N steps, or all; a plain dataset keeps
    every step whatever is asked; a bad value is refused with what to pass."""
    from hma_ros.evaluation.bc import BCError, synthetic_steps

    syn, src = Dataset(synth / "h" / "pusht"), Dataset(synth / "src" / "pusht")
    P, n = syn.meta["synthetic_from_step"], syn.episodes[0][1]
    assert [int(synthetic_steps(syn, w).sum()) for w in ("all", "real", "imagined", "first:6")] == \
        [2 * n, 2 * P, 2 * (n - P), 2 * 6]
    real = synthetic_steps(syn, "real")
    assert np.array_equal(np.asarray(syn.arrays["frames"])[real],  # the kept frames are the source's real ones
                          np.concatenate([np.asarray(src.arrays["frames"])[a:a + P] for a, _ in syn.episodes]))
    assert synthetic_steps(src, "imagined").all()  # nothing imagined in a plain dataset: all kept
    with pytest.raises(BCError, match="one of all, real, imagined, first:N"):
        synthetic_steps(syn, "first:0")
    assert hma(["train-bc", "--data", str(synth / "h" / "pusht"), "--out", "unused", "--kinds", "random",
                "--synthetic-frames", "some"]) == 2
    assert "--synthetic-frames 'some': one of all, real, imagined, first:N" in capsys.readouterr().err


def test_lerobot_round_trip_gives_back_the_same_steps(synth, tmp_path):
    assert hma(["lerobot2data", str(synth / "lr"), "--embodiment", "pusht", "--out", str(tmp_path / "back")]) == 0
    a, b = Dataset(synth / "h" / "pusht"), Dataset(tmp_path / "back")
    assert a.episodes == b.episodes and b.valid().all()
    assert np.array_equal(a.arrays["actions"], b.arrays["actions"])  # exact
    ta, tb = np.asarray(a.arrays["t"]), np.asarray(b.arrays["t"])
    for s, n in a.episodes:
        assert np.array_equal(ta[s:s + n] - ta[s], tb[s:s + n] - tb[s])  # exact 2 Hz stamps
    assert _psnr(a.arrays["frames"], b.arrays["frames"]).min() >= 35.0  # the codec's loss only
    assert b.meta["lerobot"]["hma"]["synthetic"] is True


def test_lerobot_v3_schema_as_written(synth):
    import pyarrow.parquet as pq

    lr = synth / "lr"
    info = json.loads((lr / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10.0 and info["total_episodes"] == 2
    assert info["features"]["observation.image"]["dtype"] == "video"
    assert info["features"]["action"]["shape"] == [2] and info["features"]["action"]["names"] == ["agent_x", "agent_y"]
    data = pq.read_table(lr / "data/chunk-000/file-000.parquet").to_pydict()
    eps = pq.read_table(lr / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert info["total_frames"] == len(data["index"]) == 2 * (8 * 5 + 1)  # 8 steps x 5 commands + a closing row
    for e in eps:
        rows = range(e["dataset_from_index"], e["dataset_to_index"])
        assert all(data["episode_index"][i] == e["episode_index"] for i in rows) and e["length"] == len(rows)
        assert e["videos/observation.image/from_timestamp"] == e["dataset_from_index"] / 10.0
        assert [data["frame_index"][i] for i in rows] == list(range(len(rows)))
        syn = [data["synthetic"][i] for i in rows]
        assert syn == [j >= 4 * 5 for j in range(len(rows))]  # rows of imagined frames, after 4 real steps
    stats = json.loads((lr / "meta/stats.json").read_text())
    np.testing.assert_allclose(stats["action"]["mean"], np.mean(data["action"], 0), rtol=1e-6)
    assert pq.read_table(lr / "meta/tasks.parquet").column_names == ["task", "task_index"]


def test_lerobot_image_features_are_read_too(tmp_path):
    """A LeRobot folder whose camera is an `image` feature (PNG bytes in the parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from hma_ros.data.lerobot import read_lerobot

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8)
    cells = []
    for f in frames:
        buf = BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        cells.append({"bytes": buf.getvalue(), "path": None})
    (tmp_path / "meta").mkdir()
    (tmp_path / "data/chunk-000").mkdir(parents=True)
    pq.write_table(pa.table({"observation.images.top": cells, "action": [[float(i), 2.0 * i] for i in range(6)],
                             "timestamp": pa.array(np.arange(6) / 10.0, pa.float32()),
                             "episode_index": [0] * 6}), tmp_path / "data/chunk-000/file-000.parquet")
    (tmp_path / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "fps": 10, "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "features": {"observation.images.top": {"dtype": "image", "shape": [64, 64, 3]},
                     "action": {"dtype": "float32", "shape": [2]}}}))
    info, eps = read_lerobot(tmp_path)
    assert len(eps) == 1 and np.array_equal(eps[0].frames, frames)  # PNG: lossless
    assert np.array_equal(eps[0].actions[:, 1], 2.0 * np.arange(6))


def test_lerobot_errors_say_what_and_what_to_do(synth, tmp_path, capsys):
    assert hma(["lerobot2data", str(synth / "lr"), "--embodiment", "reacher", "--out", str(tmp_path / "x")]) == 2
    assert "fps 10 but embodiment reacher's action.hz is 50" in capsys.readouterr().err
    (tmp_path / "old" / "meta").mkdir(parents=True)
    (tmp_path / "old" / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 10}))
    assert hma(["lerobot2data", str(tmp_path / "old"), "--embodiment", "pusht", "--out", str(tmp_path / "y")]) == 2
    assert "this reader takes v3.x (convert with lerobot's convert_dataset_v21_to_v30)" in capsys.readouterr().err
    assert hma(["lerobot2data", str(synth / "lr"), "--embodiment", "pusht", "--camera", "wrist",
                "--out", str(tmp_path / "z")]) == 2
    assert "no camera 'wrist'; it has observation.image" in capsys.readouterr().err
    assert hma(["synth", "--ckpt", MODEL, "--data", str(synth / "src" / "pusht"), "--episodes", "9",
                "--out", str(tmp_path / "s")]) == 2
    assert "3 fully valid episodes longer than the 4-step prompt, asked for 9" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()


def test_synth_skip_replays_the_later_episodes_and_keeps_who_drove_them(synth, tmp_path):
    assert hma(["synth", "--ckpt", MODEL, "--data", str(synth / "src" / "pusht"), "--skip", "2", "--episodes", "1",
                "--out", str(tmp_path / "s"), "--threads", "1"]) == 0
    src, syn = Dataset(synth / "src" / "pusht"), Dataset(tmp_path / "s" / "pusht")
    a, n = src.episodes[2]
    assert syn.episodes == [(0, n)] and syn.meta["synthetic"]["source_episodes"] == [2]
    assert np.array_equal(syn.arrays["actions"], src.arrays["actions"][a:a + n])
    assert syn.meta["policies"] == [src.meta["policies"][2]]


def test_synth_draws_frames_as_mask_steps_and_order_say_and_records_it(synth, tmp_path):
    """`hma synth --mask-steps 4 --mask-order confidence` (the learned simulator's whole-T setting)
    imagines other frames than the default's from the same prompt and actions, and the dataset
    says how its frames were drawn."""
    assert hma(["synth", "--ckpt", MODEL, "--data", str(synth / "src" / "pusht"), "--episodes", "1",
                "--out", str(tmp_path / "c"), "--threads", "1", "--mask-steps", "4", "--mask-order", "confidence"]) == 0
    default, conf = Dataset(synth / "h" / "pusht"), Dataset(tmp_path / "c" / "pusht")
    assert conf.meta["synthetic"]["mask_steps"] == 4 and conf.meta["synthetic"]["mask_order"] == "confidence"
    assert default.meta["synthetic"]["mask_steps"] == 2 and default.meta["synthetic"]["mask_order"] == "random"
    P = conf.meta["synthetic_from_step"]
    a, n = conf.episodes[0]
    c, d = np.asarray(conf.arrays["frames"][a:a + n]), np.asarray(default.arrays["frames"][a:a + n])
    assert np.array_equal(c[:P], d[:P]) and not np.array_equal(c[P:], d[P:])
