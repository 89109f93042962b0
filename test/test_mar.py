"""The continuous (MAR) variant: soft-token tokenizer, diffusion heads, the shared code path."""

from __future__ import annotations

import numpy as np
import torch

from hma_ros.model.diffusion import DiffusionHead
from hma_ros.model.dynamics import DynamicsConfig, HMADynamics, KVCache
from hma_ros.model.maskgit import LossConfig, dynamics_loss, sample_frame
from hma_ros.model.tokenizer import ContinuousTokenizer, TokenizerConfig, build_tokenizer
from hma_ros.runtime.world_model import WorldModel

EMB = {"pusht": {"stride": 5, "action_dim": 2,
                 "stats": {"mean": [256.0, 256.0], "std": [100.0, 100.0], "min": [0, 0], "max": [512, 512]}}}


def tiny_mar(ddim_steps=4):
    torch.manual_seed(0)
    tcfg = TokenizerConfig(kind="continuous", resolution=32, grid=4, channels=(16, 16, 16), latent_dim=4)
    dcfg = DynamicsConfig(d_model=32, n_layers=2, n_heads=2, window=6, prompt=2, tokens_per_frame=16,
                          token_kind="continuous", token_dim=4, diff_width=32, diff_depth=1, ddim_steps=ddim_steps)
    tok, dyn = build_tokenizer(tcfg).eval(), HMADynamics(dcfg, EMB).eval()
    for m in dyn.modules():  # non-zero output layers so samples depend on the conditions
        if isinstance(m, DiffusionHead):
            torch.nn.init.normal_(m.out.weight, std=0.1)
            for blk in m.blocks:
                torch.nn.init.normal_(blk.ada[1].weight, std=0.05)
    config = {"tokenizer": tcfg.to_dict(), "dynamics": dcfg.to_dict(), "embodiments": EMB}
    return tok, dyn, config


def test_continuous_tokenizer_gives_soft_tokens_on_the_same_grid():
    tok = ContinuousTokenizer(TokenizerConfig(kind="continuous", latent_dim=8)).eval()
    z = tok.encode(torch.zeros(2, 64, 64, 3, dtype=torch.uint8))
    assert z.shape == (2, 64, 8) and z.dtype == torch.float32
    assert tok.decode(z).shape == (2, 64, 64, 3)


def test_diffusion_head_learns_a_conditional_distribution_and_ddim_steps_matter():
    torch.manual_seed(0)
    head = DiffusionHead(2, 4, width=64, depth=2)
    opt = torch.optim.AdamW(head.parameters(), 2e-3)
    for _ in range(800):
        z = torch.randn(128, 4)
        loss = head.loss(z[:, :2] * 0.8, z, torch.Generator().manual_seed(_))
        opt.zero_grad()
        loss.backward()
        opt.step()
    z = torch.randn(256, 4)
    err = {n: float(((head.sample(z, n, gen=torch.Generator().manual_seed(1)) - 0.8 * z[:, :2]) ** 2).mean())
           for n in (2, 25)}
    assert err[25] < 0.1 < 0.64  # far below the target's variance (0.64)
    assert err[25] < err[2]
    a = head.sample(z, 5, gen=torch.Generator().manual_seed(3))
    b = head.sample(z, 5, gen=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_mar_trains_through_the_shared_loss_and_its_action_head_is_a_diffusion_decoder():
    tok, dyn, _ = tiny_mar()
    dyn.train()
    assert isinstance(dyn.heads["pusht"], DiffusionHead)
    codes = torch.randn(4, 6, 16, 4)
    acts = torch.randn(4, 6, 5, 2) * 100 + 256
    opt = torch.optim.AdamW(dyn.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        out = dynamics_loss(dyn, "pusht", codes, acts, torch.ones(4, 6, dtype=torch.bool),
                            torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["token_loss"].detach()))
    assert np.isfinite(losses).all() and np.mean(losses[-10:]) < np.mean(losses[:10])


def test_mar_cached_and_recomputed_sampling_agree_for_a_seed():
    tok, dyn, _ = tiny_mar()
    past = torch.randn(1, 3, 16, 4)
    acts = torch.randn(1, 4, 5, 2)
    cache = KVCache(2, 5)
    for t in range(3):
        _, _, kv = dyn("pusht", past[:, t:t + 1], torch.zeros(1, 1, 16, dtype=torch.bool),
                       acts[:, t:t + 1] if t else None, None, cache=cache, first_is_start=t == 0)
        cache.append(kv)
    a = sample_frame(dyn, "pusht", acts[:, 3], cache, steps=2, gen=torch.Generator().manual_seed(7))
    b = sample_frame(dyn, "pusht", acts[:, 3], None, context=(past, acts[:, :3]), steps=2,
                     gen=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_mar_world_model_is_deterministic_acts_and_survives_100_frames():
    tok, dyn, config = tiny_mar()
    wm = WorldModel(tok, dyn, config, "pusht", seed=2, temperature=1.0)
    f = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    fut = np.random.default_rng(1).uniform(0, 512, (100, 5, 2))
    wm.observe(f)
    a = wm.imagine(fut[:3])
    wm.reset(2)
    wm.observe(f)
    assert np.array_equal(wm.imagine(fut[:3]), a)
    chunk = wm.act()
    assert chunk.shape == (5, 2) and np.isfinite(chunk).all()
    # the mean of N samples: one batched head call, deterministic per seed, not one sample
    wm.reset(5)
    wm.observe(f)
    m8 = wm.act(samples=8, temperature=1.0)
    wm.reset(5)
    wm.observe(f)
    assert np.array_equal(wm.act(samples=8, temperature=1.0), m8)
    assert m8.shape == (5, 2) and not np.allclose(m8, wm.act(temperature=1.0))
    long = wm.imagine(fut)
    assert long.shape == (100, 32, 32, 3)
    dyn.cfg.ddim_steps = 2
    wm.reset(2)
    wm.observe(f)
    assert not np.array_equal(wm.imagine(fut[:3]), a)  # DDIM steps change the samples


def test_mar_through_the_commands_tokenizer_train_eval_bench(tmp_path, capsys):
    import json

    from hma_ros.cli.main import main as hma

    assert hma(["gen-data", "--out", str(tmp_path), "--embodiments", "pusht", "--episodes", "3",
                "--seconds", "7", "--workers", "1"]) == 0
    assert hma(["train-tokenizer", "--data", str(tmp_path), "--out", str(tmp_path / "tok"), "--kind", "continuous",
                "--max-steps", "3", "--batch-size", "4", "--channels", "16,16,16", "--latent-dim", "4"]) == 0
    tiny = ["--d-model", "32", "--layers", "1", "--heads", "2", "--window", "6", "--prompt", "2",
            "--batch-size", "2", "--eval-every", "0", "--ddim-steps", "3"]
    assert hma(["train", "--data", str(tmp_path / "pusht"), "--tokenizer", str(tmp_path / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "3", "--objective", "full", *tiny]) == 0
    wm = WorldModel.load(tmp_path / "m", "pusht")
    assert wm.dyn.continuous and wm.dyn.cfg.ddim_steps == 3
    assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(tmp_path / "pusht"), "--windows", "1",
                "--trials", "1", "--ddim-steps", "2"]) == 0
    res = json.loads((tmp_path / "m/eval/eval.json").read_text())["pusht"]
    assert np.isfinite(res["psnr"]) and np.isfinite(res["action_mse"]) and np.isfinite(res["action_mse_avg8"])
    assert res["perplexity"] is None and res["token_accuracy"] is None  # no categorical over soft tokens
    assert "| - | - |" in (tmp_path / "m/eval/table.md").read_text()
    capsys.readouterr()
    # MaskGIT's confidence order needs a likelihood: refused with the reason, nothing written
    assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(tmp_path / "pusht"), "--windows", "1",
                "--trials", "1", "--mask-order", "confidence", "--out", str(tmp_path / "conf")]) == 2
    assert "has continuous tokens (MAR)" in capsys.readouterr().err and not (tmp_path / "conf").exists()
    assert hma(["bench", "--ckpt", str(tmp_path / "m"), "--repeats", "1", "--ddim-steps", "5"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["tokens"] == "continuous" and bench["ddim_steps"] == 5


def test_mar_motion_weight_weighs_the_denoising_loss_of_moving_tokens():
    """--motion-weight for MAR: the diffusion head's loss is the per-token weighted mean (equal
    weights give the plain loss, bitwise for the same noise draw; weight on one token makes the
    loss that token's), and dynamics_loss trains with a moving-token mask."""
    head = DiffusionHead(4, 8, 16, 1)
    x0, z = torch.randn(6, 4), torch.randn(6, 8)
    plain = head.loss(x0, z, torch.Generator().manual_seed(0))
    same = head.loss(x0, z, torch.Generator().manual_seed(0), torch.full((6,), 3.0))
    torch.testing.assert_close(plain, same)
    only = head.loss(x0, z, torch.Generator().manual_seed(0), torch.tensor([0.0, 0, 1, 0, 0, 0]))
    g = torch.Generator().manual_seed(0)  # the head's own draws, replayed: each token's loss
    t = torch.randint(0, head.train_steps, (6,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    ab = head.alphas_cumprod[t][:, None]
    with torch.no_grad():
        per = (head(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t, z) - noise).pow(2).mean(-1)
    torch.testing.assert_close(only.detach(), per[2])
    torch.testing.assert_close(plain.detach(), per.mean())
    tok, dyn, _ = tiny_mar()
    dyn.train()
    codes = torch.randn(2, 6, 16, 4)
    acts = torch.randn(2, 6, 5, 2) * 100 + 256
    moving = torch.zeros(2, 6, 16, dtype=torch.bool)
    moving[:, :, :3] = True
    lc = LossConfig(motion_weight=5.0)
    lc.check(dyn)  # MAR accepts it now
    out = dynamics_loss(dyn, "pusht", codes, acts, torch.ones(2, 6, dtype=torch.bool),
                        torch.Generator().manual_seed(1), loss=lc, moving=moving)
    base = dynamics_loss(dyn, "pusht", codes, acts, torch.ones(2, 6, dtype=torch.bool),
                         torch.Generator().manual_seed(1), loss=LossConfig(), moving=moving)
    assert torch.isfinite(out["token_loss"]) and not torch.allclose(out["token_loss"], base["token_loss"])


def test_train_trunk_takes_a_discrete_models_trunk_under_the_mar_token_pathway(tmp_path, capsys):
    """`hma train --trunk CKPT`: the trunk, stems and slot embeddings come from another HMA model of
    the same geometry and the other token kind (a discrete model's, under a MAR model's token
    pathway), exactly; the token pathway and action heads stay the --init model's; the run's config
    records it; a model of another geometry, or a tokenizer, is refused with the reason."""
    from hma_ros.cli.main import main as hma
    from hma_ros.model.checkpoint import load_checkpoint
    from hma_ros.runtime.world_model import build_models

    assert hma(["gen-data", "--out", str(tmp_path), "--embodiments", "pusht", "--episodes", "3",
                "--seconds", "7", "--workers", "1"]) == 0
    tok_args = ["--max-steps", "1", "--batch-size", "4", "--channels", "16,16,16"]
    assert hma(["train-tokenizer", "--data", str(tmp_path), "--out", str(tmp_path / "tokc"), "--kind", "continuous",
                "--latent-dim", "4", *tok_args]) == 0
    assert hma(["train-tokenizer", "--data", str(tmp_path), "--out", str(tmp_path / "tokd"), *tok_args]) == 0
    tiny = ["--d-model", "32", "--layers", "1", "--heads", "2", "--window", "6", "--prompt", "2",
            "--batch-size", "2", "--eval-every", "0", "--steps", "2"]
    data = ["--data", str(tmp_path / "pusht")]
    assert hma(["train", *data, "--tokenizer", str(tmp_path / "tokd"), "--out", str(tmp_path / "disc"), *tiny]) == 0
    assert hma(["train", *data, "--tokenizer", str(tmp_path / "tokc"), "--out", str(tmp_path / "mar"), *tiny]) == 0
    # lr 0: the saved weights are what the run started from
    assert hma(["train", *data, "--init", str(tmp_path / "mar"), "--trunk", str(tmp_path / "disc"),
                "--out", str(tmp_path / "both"), *tiny, "--lr", "0"]) == 0
    assert "--trunk: " in capsys.readouterr().out

    def dyn_state(path):
        cfg, state = load_checkpoint(path)
        return cfg, build_models(cfg, state, path)[1].state_dict()

    _, disc = dyn_state(tmp_path / "disc")
    _, mar = dyn_state(tmp_path / "mar")
    cfg, both = dyn_state(tmp_path / "both")
    assert cfg["dynamics"]["token_kind"] == "continuous" and cfg["training"]["trunk"] == str(tmp_path / "disc")
    trunk = [k for k in both if not k.startswith(("tokens.", "heads."))]
    assert any(k.startswith("trunk.blocks.") for k in trunk) and any(k.startswith("stems.pusht") for k in trunk)
    for k in trunk:
        torch.testing.assert_close(both[k], disc[k], rtol=0, atol=0, msg=k)
    for k in both:
        if k.startswith(("tokens.", "heads.")):
            torch.testing.assert_close(both[k], mar[k], rtol=0, atol=0, msg=k)
    assert not torch.equal(disc["trunk.blocks.0.spatial.qkv.weight"], mar["trunk.blocks.0.spatial.qkv.weight"])
    # another geometry, or no dynamics at all: refused, nothing written
    assert hma(["train", *data, "--tokenizer", str(tmp_path / "tokc"), "--out", str(tmp_path / "wide"),
                *tiny[:1], "48", *tiny[2:]]) == 0
    capsys.readouterr()
    for src, why in (("wide", "d_model 48 (this model: 32)"), ("tokd", "not an HMA checkpoint")):
        assert hma(["train", *data, "--init", str(tmp_path / "mar"), "--trunk", str(tmp_path / src),
                    "--out", str(tmp_path / "no"), *tiny]) == 2
        assert why in capsys.readouterr().err and not (tmp_path / "no").exists()
