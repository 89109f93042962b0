"""The learned metrics (LPIPS, FID) with random-weight networks of the public architectures:
the public checkpoints' key names and shapes, the known feature-map sizes, the metric's
properties, the Frechet distance against its closed form, the converter, clear errors, and
`hma eval --lpips/--fid` end to end."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hma_ros.evaluation.learned import LPIPS, FIDInception, MetricWeightsError, frechet_distance

from ros_harness import REPO


def random_state(net: torch.nn.Module, seed: int = 0, positive_lin: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in net.state_dict().items():
        if k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("num_batches_tracked"):
            sd[k] = v
        else:
            sd[k] = torch.randn(v.shape, generator=g) * (0.05 if v.ndim > 1 else 0.1)
        if positive_lin and k.startswith("lin"):
            sd[k] = sd[k].abs()  # LPIPS's linear layers are non-negative (trained with a clamp)
    return sd


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    save_file(random_state(LPIPS(), positive_lin=True), str(d / LPIPS.WEIGHTS))
    fid = FIDInception()
    fid.fc = torch.nn.Linear(2048, 1008)
    save_file(random_state(fid), str(d / FIDInception.WEIGHTS))
    return d


def test_lpips_has_the_public_layout_and_behaves_like_a_distance(weights):
    keys = LPIPS().state_dict()
    assert keys["net.features.0.weight"].shape == (64, 3, 11, 11)  # torchvision AlexNet names, under net.
    assert keys["net.features.10.weight"].shape == (256, 256, 3, 3)
    assert keys["lin4.model.1.weight"].shape == (1, 256, 1, 1)  # LPIPS v0.1 names
    m = LPIPS.load(weights)  # a folder finds its file
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    near = np.clip(a.astype(int) + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)
    far = rng.integers(0, 256, a.shape, dtype=np.uint8)
    same, d_near, d_far = m(a, a), m(a, near), m(a, far)
    assert same.shape == (3,) and torch.allclose(same, torch.zeros(3), atol=1e-7)
    assert (d_near > 0).all() and (d_far > d_near).all()
    torch.testing.assert_close(m(near, a), d_near)


def test_fid_inception_has_the_public_layout_and_its_feature_sizes(weights):
    net = FIDInception()
    sd = net.state_dict()
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert sd["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    sizes = {}
    for name in ("Mixed_5d", "Mixed_6e", "Mixed_7c"):
        getattr(net, name).register_forward_hook(lambda mod, i, o, name=name: sizes.__setitem__(name, o.shape[1:]))
    net.eval()
    feats = net(np.zeros((1, 64, 64, 3), np.uint8))  # resized to 299 inside, as the FID graph does
    assert feats.shape == (1, 2048)
    assert sizes == {"Mixed_5d": (288, 35, 35), "Mixed_6e": (768, 17, 17), "Mixed_7c": (2048, 8, 8)}
    loaded = FIDInception.load(weights / FIDInception.WEIGHTS)
    frames = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    f = loaded(frames, batch=3)
    assert f.shape == (4, 2048) and torch.isfinite(f).all()
    torch.testing.assert_close(f[3:], loaded(frames[3:]))  # batching does not change features


def test_frechet_distance_matches_the_closed_form_of_its_sample_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 3))
    b = rng.normal([2.0, 0, 0], [1.0, 2.0, 1.0], (4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # diagonal covariances: |mu1 - mu2|^2 + sum (s1 - s2)^2
    expect = 4.0 + (1 - 2) ** 2
    assert frechet_distance(a, b) == pytest.approx(expect, rel=0.05)
    scipy_linalg = pytest.importorskip("scipy.linalg")
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    exact = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(c1 + c2 - 2 * scipy_linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-6)


def test_missing_or_wrong_weights_are_clear_errors(tmp_path, weights):
    with pytest.raises(MetricWeightsError, match="lpips_alex.safetensors.*nothing is downloaded"):
        LPIPS.load(tmp_path)
    with pytest.raises(MetricWeightsError, match="not fid_inception.safetensors|do not fit"):
        FIDInception.load(weights / LPIPS.WEIGHTS)


def test_the_converter_reads_the_public_files_names(tmp_path):
    """Files laid out as the public checkpoints are (torchvision AlexNet, LPIPS alex.pth,
    pytorch-fid Inception) become the files hma eval reads."""
    alex = {k[len("net."):]: v for k, v in random_state(LPIPS()).items() if k.startswith("net.")}
    alex |= {"classifier.1.weight": torch.zeros(4096, 9216)}  # torchvision's head: dropped
    torch.save(alex, tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in random_state(LPIPS()).items() if k.startswith("lin")}, tmp_path / "alex.pth")
    fid = FIDInception()
    fid.fc = torch.nn.Linear(2048, 1008)
    torch.save(random_state(fid), tmp_path / "pt_inception.pth")
    r = subprocess.run([sys.executable, str(REPO / "scripts/convert_metric_weights.py"), "--alexnet",
                        str(tmp_path / "alexnet.pth"), "--lpips-lin", str(tmp_path / "alex.pth"),
                        "--fid-inception", str(tmp_path / "pt_inception.pth"), "--out", str(tmp_path / "w")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    LPIPS.load(tmp_path / "w")
    FIDInception.load(tmp_path / "w")


def test_hma_eval_reports_lpips_and_fid_beside_copy_last(tmp_path, weights, capsys):
    from hma_ros.cli.main import main as hma

    assert hma(["gen-data", "--out", str(tmp_path / "d"), "--embodiments", "pusht", "--episodes", "2",
                "--seconds", "7", "--workers", "1"]) == 0
    common = ["eval", "--ckpt", str(REPO / "models/hma_discrete_small"), "--data", str(tmp_path / "d"),
              "--episodes", "all", "--windows", "2", "--trials", "1", "--gifs", "0", "--out", str(tmp_path / "e")]
    assert hma(common + ["--lpips", str(tmp_path / "nowhere")]) == 2
    assert "lpips_alex.safetensors" in capsys.readouterr().err
    assert hma(common + ["--lpips", str(weights), "--fid", str(weights)]) == 0
    assert "Learned metrics" in capsys.readouterr().out
    import json

    r = json.loads((tmp_path / "e/eval.json").read_text())["pusht"]["learned"]
    assert r["frames"] == 2 * 8 and r["lpips"] > 0 and r["copy_last_lpips"] > 0 and len(r["lpips_vs_copy_last_ci95"]) == 2
    assert np.isfinite(r["fid"]) and np.isfinite(r["copy_last_fid"])
