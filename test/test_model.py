"""HMA model core: tokenizer, trunk, MaskGIT, KV cache, WorldModel, checkpoints, training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from hma_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, sub_state
from hma_ros.model.dynamics import DynamicsConfig, HMADynamics, KVCache
from hma_ros.model.maskgit import LossConfig, dynamics_loss, sample_frame, training_masks
from hma_ros.model.tokenizer import FSQ, FSQTokenizer, TokenizerConfig
from hma_ros.runtime.world_model import WorldModel

EMB = {"pusht": {"stride": 5, "action_dim": 2,
                 "stats": {"mean": [256.0, 256.0], "std": [100.0, 100.0], "min": [0, 0], "max": [512, 512]}}}


def tiny(conditioning="modulate+concat", objective="forward", seed=0, action_points=0, factor_ar=0):
    torch.manual_seed(seed)
    tcfg = TokenizerConfig(resolution=32, grid=4, channels=(16, 16, 16), levels=(4, 3))
    dcfg = DynamicsConfig(d_model=32, n_layers=2, n_heads=2, window=6, prompt=2, tokens_per_frame=16,
                          levels=(4, 3), conditioning=conditioning, objective=objective,
                          action_points=action_points, factor_ar=factor_ar)
    tok, dyn = FSQTokenizer(tcfg).eval(), HMADynamics(dcfg, EMB).eval()
    for step in dyn.tokens.ar or ():  # intra-token steps that really contribute (they start at zero)
        torch.nn.init.normal_(step.out.weight, std=1.0)
    if dyn.action_map is not None:  # a map that really contributes (it starts at zero)
        torch.nn.init.normal_(dyn.action_map.proj.weight, std=0.5)
    # non-zero adaLN so every sub-layer (and the action path) really contributes
    for blk in dyn.trunk.blocks:
        torch.nn.init.normal_(blk.ada.weight, std=0.05)
        torch.nn.init.normal_(blk.ada.bias, std=0.3)
        if blk.cross is not None:
            torch.nn.init.normal_(blk.cross.attn.out_proj.weight, std=0.05)
    config = {"tokenizer": tcfg.to_dict(), "dynamics": dcfg.to_dict(), "embodiments": EMB}
    return tok, dyn, config


def test_fsq_codes_round_trip_and_the_papers_tokenizer_is_expressible():
    fsq = FSQ((8, 5, 5, 5))
    q, codes = fsq(torch.randn(1000, 4) * 3)
    assert codes.min() >= 0 and torch.equal(codes.max(0).values, torch.tensor([7, 4, 4, 4]))
    torch.testing.assert_close(fsq.codes_to_values(codes), q)  # the decoder sees what was quantized
    big = FSQTokenizer(TokenizerConfig(resolution=256, grid=16, channels=(16, 16, 16, 16)))
    assert big.encode(torch.zeros(1, 256, 256, 3, dtype=torch.uint8)).shape == (1, 256, 6)


def test_training_masks_never_hide_the_first_frame_and_mask_later_frames_more():
    m = training_masks(64, 6, 16, 0.1, torch.Generator().manual_seed(0))
    assert not m[:, 0].any()
    frac = m.float().mean(dim=(0, 2))
    assert (frac[1:] > 0).all() and frac[-1] > frac[1]
    assert (m[:, 1:].sum(-1) >= 2).all()  # minimum ratio 0.1 of 16 -> at least 2


@pytest.mark.parametrize("conditioning", ["modulate+concat", "modulate", "concat", "add", "cross", "none"])
def test_every_conditioning_variant_trains_and_only_action_free_ones_ignore_actions(conditioning):
    tok, dyn, _ = tiny(conditioning)
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    masked = torch.zeros(2, 6, 16, dtype=torch.bool)
    a1 = torch.zeros(2, 6, 5, 2)
    a2 = torch.randn(2, 6, 5, 2) * 3
    l1 = dyn("pusht", codes, masked, a1)[0][0]
    l2 = dyn("pusht", codes, masked, a2)[0][0]
    changed = not torch.allclose(l1, l2)
    assert changed == (conditioning != "none")
    dyn.train()
    out = dynamics_loss(dyn, "pusht", codes, a2, torch.ones(2, 6, dtype=torch.bool), torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_moving_tokens_flags_exactly_the_patches_whose_pixels_changed():
    from hma_ros.model.metrics import moving_tokens
    f = np.full((3, 32, 32, 3), 100, dtype=np.uint8)
    f[1, 9, 26] = [100, 100, 140]  # patch (1, 3) of a 4x4 grid of 8x8 patches: a real change
    f[2] = f[1]
    f[2, 0, 0] = 105  # below the 10-level threshold: noise, not motion
    m = moving_tokens(f, 4)
    assert m.shape == (3, 16) and not m[0].any() and not m[2].any()
    assert np.flatnonzero(m[1]).tolist() == [1 * 4 + 3]


def test_motion_weight_weighs_moving_tokens_in_the_token_loss():
    _, dyn, _ = tiny()
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    acts = torch.randn(2, 6, 5, 2)
    valid = torch.ones(2, 6, dtype=torch.bool)
    moving = torch.zeros(2, 6, 16, dtype=torch.bool)
    moving[:, 1:, :4] = True

    def token_loss(weight, mov):
        return dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(3), mov,
                             LossConfig(motion_weight=weight))["token_loss"]

    plain = token_loss(1.0, None)
    torch.testing.assert_close(token_loss(5.0, torch.zeros_like(moving)), plain)  # nothing moves: plain mean
    torch.testing.assert_close(token_loss(5.0, torch.ones_like(moving)), plain)  # everything moves: same
    # the same masks as inside the loss (the generator's first draw), to count both kinds of token
    masked = training_masks(2, 6, 16, LossConfig().mask_min_ratio, torch.Generator().manual_seed(3))
    n_mov, n_still = (masked & moving).sum().item(), (masked & ~moving).sum().item()
    assert n_mov > 0 and n_still > 0
    mean_mov, mean_still = token_loss(1e9, moving), token_loss(1e-9, moving)  # each kind alone
    expected = (5 * n_mov * mean_mov + n_still * mean_still) / (5 * n_mov + n_still)
    torch.testing.assert_close(token_loss(5.0, moving), expected)
    torch.testing.assert_close(plain, (n_mov * mean_mov + n_still * mean_still) / (n_mov + n_still))
    with pytest.raises(ValueError, match="moving-token mask"):
        token_loss(5.0, None)
    with pytest.raises(ValueError, match="motion_weight"):
        LossConfig(motion_weight=0.0)
    # MAR's denoising loss takes the same weights: test_mar.py


def test_state_loss_is_the_squared_error_of_each_slots_normalized_state_change_and_skips_unrecorded_columns():
    """state_weight: a training-only head predicts, from each slot's image tokens, how the
    recorded state changed since the previous slot (normalized by the data's statistics). Zero-
    started, it predicts no change, so the loss is the mean squared normalized change; a NaN
    column (a recording that lacks it) is left out; the frames' logits do not depend on it."""
    _, dyn, _ = tiny()
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    acts = torch.randn(2, 6, 5, 2)
    valid = torch.ones(2, 6, dtype=torch.bool)
    before = dyn("pusht", codes, torch.zeros(2, 6, 16, dtype=torch.bool), acts)[0][0]
    dyn.add_state_head("pusht", {"keys": ["x", "y", "angle"], "mean": [1.0, 0.0, 0.0], "std": [2.0, 4.0, 1.0]})
    torch.testing.assert_close(dyn("pusht", codes, torch.zeros(2, 6, 16, dtype=torch.bool), acts)[0][0], before)
    states = torch.zeros(2, 6, 3)
    states[:, :, 0] = torch.arange(6.0) * 3  # x moves 3 a slot: (3 - 1) / 2 = 1 normalized
    states[:, 3:, 1] = 8.0  # y jumps once, at slot 3: 8 / 4 = 2
    states[1, :, 2] = float("nan")  # sample 1 has no angle
    cfg = LossConfig(state_weight=0.5)
    out = dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(0), None, cfg, states)
    # 5 slot changes x (x: 1 each; y: one 2; angle: 0) in sample 0, the same without angle in sample 1
    expected = (2 * (5 * 1.0 + 4.0)) / (15 + 10)
    torch.testing.assert_close(out["state_loss"], torch.tensor(expected))
    plain = dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["loss"], plain["loss"] + 0.5 * out["state_loss"])
    out["loss"].backward()
    assert dyn.state_heads["pusht"].out.weight.grad.abs().sum() > 0  # the head learns first
    with pytest.raises(ValueError, match="needs the recorded states"):
        dynamics_loss(dyn, "pusht", codes, acts, valid, None, None, cfg)
    with pytest.raises(ValueError, match="state_weight"):
        LossConfig(state_weight=-1.0)


def test_self_forcing_feeds_the_models_own_greedy_drawing_as_the_visible_tokens():
    """self_prob: a gradient-free first pass draws the tokens its own mask hides; in the picked
    samples those drawings (truth where that mask left tokens visible) are what the second,
    training pass sees at its visible tokens of slots >= 1; slot 0 and the targets stay true."""
    _, dyn, _ = tiny()
    dyn.train()
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    acts = torch.randn(2, 6, 5, 2)
    valid = torch.ones(2, 6, dtype=torch.bool)
    seen = []
    hook = dyn.register_forward_pre_hook(lambda m, args: seen.append((args[1].clone(), args[2].clone())))
    try:
        out = dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(5), None,
                            LossConfig(self_prob=1.0))
    finally:
        hook.remove()
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and len(seen) == 2  # the drawing pass, then the training pass
    (c1, m1), (c2, m2) = seen
    torch.testing.assert_close(c1, codes)  # the first pass reads the true codes under its own mask
    with torch.no_grad():
        acts_in = torch.cat([torch.zeros_like(acts[:, :1]), dyn.stems["pusht"].normalize(acts)[:, :-1]], dim=1)
        drawn = dyn.tokens.greedy(dyn("pusht", codes, m1, acts_in, None)[0])
    own = ~m2
    own[:, 0] = False
    expected = torch.where((m1 & own)[..., None], drawn, codes)
    torch.testing.assert_close(c2, expected)  # visible tokens: the drawing where it drew, truth elsewhere
    assert (c2[(m1 & own)] != codes[(m1 & own)]).any()  # and it did draw something else somewhere
    torch.testing.assert_close(c2[:, 0], codes[:, 0])
    with pytest.raises(ValueError, match="self_prob"):
        LossConfig(self_prob=1.5)

def test_action_dropout_shows_the_picked_samples_every_action_as_unknown():
    """action_drop: a share of samples trains with every action slot marked unknown (what a
    passive model sees); without it only the policy-trained last slot ever is."""
    _, dyn, _ = tiny()
    codes = torch.randint(0, 3, (8, 6, 16, 2))
    acts = torch.randn(8, 6, 5, 2)
    valid = torch.ones(8, 6, dtype=torch.bool)
    seen = []
    hook = dyn.register_forward_pre_hook(lambda m, args: seen.append(args[4].clone()))
    try:
        for drop in (0.0, 0.9):
            out = dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(2), None,
                                LossConfig(action_drop=drop))
            assert torch.isfinite(out["loss"])
    finally:
        hook.remove()
    plain, dropped = seen
    assert not plain[:, :-1].any()  # no dropout: every action before the last slot is given
    assert int(dropped.all(dim=1).sum()) >= 5 and dropped.all(dim=1).any()  # most samples: all unknown
    with pytest.raises(ValueError, match="action_drop"):
        LossConfig(action_drop=1.0)

def test_action_map_puts_each_point_on_its_token_and_a_new_map_changes_nothing_until_it_learns():
    from hma_ros.model.dynamics import ActionMap

    amap = ActionMap(points=1, tokens_per_frame=16, d=8)
    # the centre of the token in row 1, column 2 of the 4x4 grid: x = (2.5/4)*2-1, y = (1.5/4)*2-1
    pts = torch.tensor([0.25, -0.25]).view(1, 1, 1, 2)
    d2 = (amap.grid[:, None] - pts[:, :, None]).square().sum(-1)
    assert int(d2.argmin()) == 1 * 4 + 2
    assert torch.count_nonzero(amap(pts)) == 0  # zero projection: silent at the start
    torch.nn.init.eye_(amap.proj.weight)
    with torch.no_grad():
        narrow = amap(pts)[0, 0, :, 0]  # first channel: the narrow heatmap
    assert int(narrow.argmax()) == 6 and float(narrow[6]) == pytest.approx(1.0)
    assert float(narrow[0]) < 0.01  # far tokens see nothing of the narrow map

    # a trained model grown by a map: identical outputs until the map's projection moves
    _, dyn, _ = tiny()
    grown = HMADynamics(DynamicsConfig(**(dyn.cfg.to_dict() | {"action_points": 2})), EMB).eval()
    missing, unexpected = grown.load_state_dict(dyn.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["action_map.proj.bias", "action_map.proj.weight",
                                                  "action_map.where.bias", "action_map.where.weight",
                                                  "stems.pusht.points.bias", "stems.pusht.points.weight"]
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    masked = torch.rand(2, 6, 16) < 0.5
    acts = torch.randn(2, 6, 5, 2)
    with torch.no_grad():
        for a, b in zip(dyn("pusht", codes, masked, acts)[0], grown("pusht", codes, masked, acts)[0], strict=True):
            torch.testing.assert_close(a, b)
        torch.nn.init.normal_(grown.action_map.proj.weight, std=0.5)
        moved = grown("pusht", codes, masked, acts + 1.0)[0][0]
        assert not torch.allclose(grown("pusht", codes, masked, acts)[0][0], moved)
        # a masked action (the policy's slot to predict) and a window's first slot get no map
        am = torch.ones(2, 6, dtype=torch.bool)
        torch.testing.assert_close(grown("pusht", codes, masked, acts, am)[0][0],
                                   grown("pusht", codes, masked, acts + 1.0, am)[0][0])


def test_the_action_maps_own_task_pulls_a_position_commands_point_onto_the_token_it_commands():
    """Where the action acts: trained only on "which tokens change" for a command that is a
    position (the token under it changes), a stem's point learns the command -> grid map."""
    from hma_ros.model.dynamics import ActionMap, Stem

    torch.manual_seed(0)
    stem = Stem(1, 2, 16, mean=[0.0, 0.0], std=[1.0, 1.0], points=1)
    amap = ActionMap(points=1, tokens_per_frame=64, d=16)
    opt = torch.optim.Adam([*stem.points.parameters(), *amap.where.parameters()], lr=0.05)
    for _ in range(150):
        cmd = torch.rand(256, 1, 1, 2) * 1.6 - 0.8  # commanded places, in grid coordinates
        changed = (amap.grid[None, :] - cmd.view(256, 1, 2)).abs().max(-1).values < 0.125  # the token under it
        logits = amap.where_logits(stem.place(cmd * 3.0 + 1.0).view(256, 1, 1, 2))[:, 0]  # commands in other units
        balance = (~changed).sum() / changed.sum()  # as dynamics_loss weighs the few changed tokens
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, changed.float(), pos_weight=balance)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test = torch.tensor([[0.5, -0.5], [-0.6, 0.2]]).view(2, 1, 1, 2)
    with torch.no_grad():
        placed = stem.place(test * 3.0 + 1.0).view(2, 2)
    assert (placed - test.view(2, 2)).abs().max() < 0.1  # within less than half a token (0.25)


def test_where_temperature_samples_only_the_tokens_the_action_map_ranks_most_likely_to_change():
    """All tokens ranked = sampling the whole frame at that temperature, exactly (same generator
    draws); none = greedy; some = neither. A model without a map refuses the option."""
    tok, dyn, config = tiny(action_points=2)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (4, 5, 2))

    def run(**kw):
        wm = WorldModel(tok, dyn, config, "pusht", seed=4, **kw)
        for t, f in enumerate(frames):
            wm.observe(f, fut[0] if t else None)
        return wm.imagine(fut)

    greedy, hot = run(), run(temperature=1.0)
    assert not np.array_equal(greedy, hot)
    np.testing.assert_array_equal(run(where_temperature=1.0, where_tokens=16), hot)
    np.testing.assert_array_equal(run(where_temperature=1.0, where_tokens=0), greedy)
    some = run(where_temperature=1.0, where_tokens=3)
    assert not np.array_equal(some, greedy) and not np.array_equal(some, hot)
    _, plain, plain_cfg = tiny()
    with pytest.raises(ValueError, match="action map"):
        WorldModel(tok, plain, plain_cfg, "pusht", where_temperature=1.0)


def test_intra_token_autoregression_draws_whole_codes_where_independent_factors_mix_two_modes():
    """A token that is either code (3, 2) or code (0, 0), half and half, in the same context:
    independent factor softmaxes learn the right marginals but draw the mixed codes (3, 0) and
    (0, 2) half the time; with factor_ar the second factor sees the first and every draw is one
    of the two real codes. Grown onto a trained model, factor_ar changes nothing until it learns."""
    from hma_ros.model.tokens import DiscreteTokens

    torch.manual_seed(0)
    h = torch.randn(1, 16).expand(512, 16)  # one context, many tokens
    first = torch.rand(512) < 0.5
    codes = torch.where(first[:, None], torch.tensor([3, 2]), torch.tensor([0, 0]))
    sel = torch.ones(512, dtype=torch.bool)
    mixed = {}
    for width in (0, 16):
        cfg = DynamicsConfig(d_model=16, n_heads=2, levels=(4, 3), factor_ar=width)
        toks = DiscreteTokens(cfg, 16)
        opt = torch.optim.Adam(toks.parameters(), lr=0.05)
        for _ in range(150):
            loss, _ = toks.loss(toks.head(h), codes, sel, label_smoothing=0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out = toks.head(h[None])  # (1, 512) positions
            drawn = toks.sample(out, torch.arange(512)[None], 1.0, torch.Generator().manual_seed(1))[0]
        real = ((drawn == torch.tensor([3, 2])).all(-1) | (drawn == torch.tensor([0, 0])).all(-1)).float().mean()
        mixed[width] = 1 - float(real)
        # the entropy each can reach: ln 2 per factor independent, ln 2 for the whole code with factor_ar
        assert float(loss.detach()) == pytest.approx(0.693 * (2 if width == 0 else 1), abs=0.03)
    assert 0.35 < mixed[0] < 0.65  # independent factors: half the draws are codes never seen
    assert mixed[16] < 0.02

    _, dyn, _ = tiny()
    grown = HMADynamics(DynamicsConfig(**(dyn.cfg.to_dict() | {"factor_ar": 8})), EMB).eval()
    missing, unexpected = grown.load_state_dict(dyn.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("tokens.ar.") for k in missing) and missing
    codes = torch.randint(0, 3, (2, 6, 16, 2))
    masked = torch.ones(2, 6, 16, dtype=torch.bool)
    acts = torch.randn(2, 6, 5, 2)
    with torch.no_grad():
        a = dyn.tokens.newest(dyn("pusht", codes, masked, acts)[0])
        b = grown.tokens.newest(grown("pusht", codes, masked, acts)[0])
        idx = torch.arange(16).expand(2, 16)
        torch.testing.assert_close(dyn.tokens.sample(a, idx, 0.0), grown.tokens.sample(b, idx, 0.0))
    with pytest.raises(ValueError, match="discrete tokens only"):
        DynamicsConfig(token_kind="continuous", factor_ar=8)


def test_action_projectors_use_xavier_gain_0_1():
    _, dyn, _ = tiny()
    w = dyn.stems["pusht"].net[0].weight
    bound = 0.1 * np.sqrt(6 / (w.shape[0] + w.shape[1]))
    assert w.abs().max() <= bound + 1e-6 and w.abs().max() > 0.5 * bound


def test_kv_cached_and_recomputed_windows_give_the_same_samples_for_the_same_seed():
    tok, dyn, _ = tiny()
    past = torch.randint(0, 3, (1, 3, 16, 2))
    acts = torch.randn(1, 4, 5, 2)
    cache = KVCache(2, 5)
    for t in range(3):
        _, _, kv = dyn("pusht", past[:, t:t + 1], torch.zeros(1, 1, 16, dtype=torch.bool),
                       acts[:, t:t + 1] if t else None, None, cache=cache, first_is_start=t == 0)
        cache.append(kv)
    ctx = (past, acts[:, :3])
    for temperature in (1.0, 0.0):
        a = sample_frame(dyn, "pusht", acts[:, 3], cache, steps=3, temperature=temperature,
                         gen=torch.Generator().manual_seed(7))
        b = sample_frame(dyn, "pusht", acts[:, 3], None, context=ctx, steps=3, temperature=temperature,
                         gen=torch.Generator().manual_seed(7))
        assert torch.equal(a, b)
    assert len(cache) == 3  # sampling never commits to the cache


def test_static_kv_cache_gives_the_dynamic_caches_logits_at_fixed_shapes_and_commits_in_place():
    """StaticKVCache (the CUDA-graph path): a pass attends over the whole fixed buffer through a
    mask, yet gives the dynamic cache's logits; its buffers keep their shape and storage from
    window to window (a replayed graph reads them); append commits what the pass wrote; a window
    that does not fit is refused."""
    from hma_ros.model.dynamics import StaticKVCache

    tok, dyn, _ = tiny()
    codes = torch.randint(0, 3, (2, 4, 16, 2))
    acts = torch.randn(2, 4, 5, 2)
    masked = torch.zeros(2, 4, 16, dtype=torch.bool)
    masked[:, 3, ::2] = True
    static = StaticKVCache(2, 5)
    for _ in range(2):  # a second window reuses the buffers
        dynamic = KVCache(2, 5)
        static.reset()
        outs = []
        for cache in (dynamic, static):
            with torch.no_grad():
                _, _, kv = cache.forward(dyn, "pusht", codes[:, :2], masked[:, :2], acts[:, :2], first_is_start=True)
                cache.append(kv)
                one = cache.forward(dyn, "pusht", codes[:, 2:], masked[:, 2:], acts[:, 2:])  # 2 slots
                cache.append([(k[:, :, :1], v[:, :, :1]) for k, v in one[2]])  # commit the first
                two = cache.forward(dyn, "pusht", codes[:, 3:], masked[:, 3:], acts[:, 3:])
            outs.append((one[0], two[0]))
        for a, b in zip(outs[0], outs[1], strict=True):
            for la, lb in zip(a, b, strict=True):
                torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-5)
        assert len(static) == len(dynamic) == 3 and static.next_pos == 3
        ptr = static.buf[0][0].data_ptr()
        assert static.buf[0][0].shape[2] == static.capacity == 7
    assert static.buf[0][0].data_ptr() == ptr  # the same storage in every window
    with pytest.raises(ValueError, match="commits only slots a forward through it wrote"):
        static.append([(torch.zeros(32, 2, 2, 16), torch.zeros(32, 2, 2, 16))] * 2)
    static.n = 6
    with pytest.raises(ValueError, match="do not fit"):
        static.positions(2)


def test_compiled_blocks_imagine_the_same_frames_as_eager_blocks():
    """WorldModel(graphs=True, compile=True) (hma bench --graphs --compile): each block of a static-cache
    pass runs as one compiled `block_step`, which writes its keys into the cache buffers itself
    -- the same imagined frames as the eager blocks over several windows, with one compiled graph
    shared by every block (not one per block). Traced by dynamo and functionalized by AOT
    autograd (backend aot_eager: what inductor compiles, without the C compiler's minutes)."""
    import torch._dynamo

    from hma_ros.model.dynamics import compiled_block_step

    tok, dyn, config = tiny()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (9, 5, 2))  # 9 imagined steps: the window (6) restarts inside
    compiled = []

    def counting(gm, example_inputs):
        compiled.append(gm)
        return torch._dynamo.backends.debugging.aot_eager(gm, example_inputs)

    outs = []
    torch._dynamo.reset()
    for comp in (False, True, False):  # the last: the same model after a compiled world model used it
        wm = WorldModel(tok, dyn, config, "pusht", seed=1, graphs=True, render="tokens", compile=comp)
        assert (wm.block_step is not None) == comp
        if comp:  # the same function through a counting backend (inductor: what a GPU run compiles)
            wm.block_step = compiled_block_step(backend=counting)
        for t, f in enumerate(frames):
            wm.observe(f, fut[0] if t else None)
        outs.append(wm.imagine(fut))
        assert wm._static[1].step is wm.block_step
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    # one graph per pass shape (1 slot, 2 slots: the prefill of a restarted window is 2 slots
    # too; a fresh cache's first prefill runs eager, making the buffers), shared by both blocks;
    # none after: the compiled step stays with its world model, the model it was given is unchanged
    assert len(compiled) == 2, len(compiled)
    with pytest.raises(ValueError, match="needs graphs=True"):
        WorldModel(tok, dyn, config, "pusht", compile=True)
    with pytest.raises(ValueError, match="compile must be one of"):
        WorldModel(tok, dyn, config, "pusht", graphs=True, compile="reduce-overhead")


def test_warm_up_compiles_every_pass_shape_of_the_first_steps_and_leaves_the_model_as_new():
    """WorldModel.warm_up (the nodes call it in on_configure when compile / CUDA graphs are on):
    after it a robot's first steps -- 1, 2, 3, ... observed steps, each followed by an imagined
    future of the configured horizon -- compile nothing more, and the model imagines exactly
    what a model that never warmed up imagines (history empty, same seed)."""
    import torch._dynamo

    from hma_ros.model.dynamics import compiled_block_step

    tok, dyn, config = tiny()
    dyn.cfg.prompt = 4  # as the shipped models (window 6 here): prefills of 1, 2, 3 and 4 slots
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (4, 5, 2))
    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return torch._dynamo.backends.debugging.aot_eager(gm, example_inputs)

    torch._dynamo.reset()
    outs = []
    for warm in (True, False):
        wm = WorldModel(tok, dyn, config, "pusht", seed=2, graphs=True, render="tokens", compile=warm)
        if warm:
            wm.block_step = compiled_block_step(backend=counting)
            assert wm.warm_up(horizon=4) > 0 and wm.steps == 0 and wm.history == []
            compiled = len(graphs)
            assert compiled >= 2
        steps = []
        for t, f in enumerate(frames):
            wm.observe(f, fut[0] if t else None)
            steps.append(wm.imagine(fut))
        outs.append(np.stack(steps))
        if warm:
            assert len(graphs) == compiled, "a first step compiled a pass shape the warm-up missed"
    np.testing.assert_array_equal(outs[0], outs[1])
    # a policy's steps: act() prefills the whole history (up to window - 1 slots), warm_up(act=True) too
    wm = WorldModel(tok, dyn, config, "pusht", seed=2, graphs=True, render="tokens", compile=True)
    wm.block_step = compiled_block_step(backend=counting)
    wm.warm_up(act=True)
    compiled = len(graphs)
    for t, f in enumerate(frames):
        wm.observe(f, fut[0] if t else None)
        wm.act()
    assert len(graphs) == compiled, "a policy step compiled a pass shape the warm-up missed"


def test_half_trunk_computes_what_autocast_computes():
    """precision bf16 holds the trunk's linear weights in bf16 (cast once, not every pass):
    the same imagined tokens as autocast over the fp32 weights, and the caller's model is left
    in fp32."""
    from hma_ros.runtime.world_model import half_trunk

    tok, dyn, config = tiny()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (4, 5, 2))
    outs = []
    for held in (True, False):
        wm = WorldModel(tok, dyn, config, "pusht", seed=2, precision="bf16", render="tokens")
        assert wm.dyn.trunk.blocks[0].mlp[0].weight.dtype == torch.bfloat16
        if not held:  # autocast over the caller's fp32 weights
            wm.dyn, wm.stem = dyn, dyn.stems["pusht"]
        for t, f in enumerate(frames):
            wm.observe(f, fut[0] if t else None)
        outs.append(wm.imagine(fut))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert dyn.trunk.blocks[0].mlp[0].weight.dtype == torch.float32
    half = half_trunk(dyn, torch.float16)
    assert half.trunk.blocks[1].ada.weight.dtype == torch.float16 and half.trunk.norm_out.weight.dtype == torch.float32


def test_stacked_token_head_and_embedding_and_the_stem_compute_each_factors_values_in_fp32():
    """The discrete head runs its K classifiers as one product over their stacked weights, and
    the embedding one lookup in the stacked tables (fewer small ops: ~10% of a bf16 imagined
    frame on a CPU); both, and the stem, run in fp32 also under bf16 autocast (tiny products,
    where autocast's casts cost more than they save). The same values as each factor's own
    layer in fp32."""
    _, dyn, _ = tiny(factor_ar=4)
    tokens, stem = dyn.tokens, dyn.stems["pusht"]
    h = torch.randn(2, 3, 16, 32)
    codes = torch.stack([torch.randint(0, L, (2, 3, 16)) for L in dyn.cfg.levels], dim=-1)
    chunk = torch.randn(2, 3, 5, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, emb, act = tokens.head(h), tokens.embed(codes), stem(chunk)
    assert [lg.shape[-1] for lg in out] == list(dyn.cfg.levels) and out.h is h
    for lg, layer in zip(out, tokens.out, strict=True):
        assert lg.dtype == torch.float32
        torch.testing.assert_close(lg, layer(h), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(emb, sum(e(codes[..., k]) for k, e in enumerate(tokens.token_emb)))
    assert act.dtype == torch.float32
    torch.testing.assert_close(act, stem.net(stem.features(chunk)))


def test_cpu_bf16_units_are_read_from_the_cpu_flags():
    """cpu_has_bf16 (the nodes' speed hint, `hma bench`'s cpu_bf16_units): AVX512_BF16 or AMX
    flags mean bf16 in hardware; AVX2 / AVX-512 without them, or no flags line, do not."""
    from hma_ros.runtime.device import cpu_has_bf16

    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16("flags\t\t: fpu avx2 amx_bf16 amx_tile\n")
    assert not cpu_has_bf16("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not cpu_has_bf16("model name\t: some ARM core\n")


def test_short_attention_is_scaled_dot_product_attention_with_a_causal_cache_mask():
    """The GPU's (and compiled CPU blocks') temporal attention (plain products) computes what the
    fused kernel does, for the pass shapes imagination makes: 1, 2 and a window's worth of new
    slots over a cache; and the compiled CPU blocks' spatial attention (`plain_attention`, no
    mask) over a slot's 65 tokens does too."""
    from hma_ros.model.dynamics import plain_attention, short_attention

    g = torch.Generator().manual_seed(0)
    for T, L in ((1, 7), (2, 9), (6, 6)):
        q, k, v = (torch.randn(33, 4, n, 16, generator=g) for n in (T, L, L))
        mask = torch.ones(T, L, dtype=torch.bool).tril(L - T)
        torch.testing.assert_close(short_attention(q, k, v, mask),
                                   torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                   rtol=1e-5, atol=1e-5)
    q, k, v = (torch.randn(2, 4, 65, 48, generator=g) for _ in range(3))
    torch.testing.assert_close(plain_attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v),
                               rtol=1e-5, atol=1e-5)


def test_bf16_cpu_training_writes_the_attention_out_and_its_gradients_are_the_fused_kernels(monkeypatch):
    """bf16 training on a CPU (autocast, gradients) runs the trunk's attention as plain products:
    the fused kernel's bf16 backward was 6x its fp32 time (docs/architecture.md). The loss and
    every weight gradient match the fused fp32 path's to bf16 precision; bf16 inference and fp32
    training keep the fused kernel."""
    import torch.nn.functional as F

    _, dyn, _ = tiny()
    dyn.train()
    g = torch.Generator().manual_seed(3)
    codes = torch.randint(0, 3, (2, 6, 16, 2), generator=g)
    acts = torch.randn(2, 6, 5, 2, generator=g)
    valid = torch.ones(2, 6, dtype=torch.bool)

    def loss_and_grads(bf16: bool):
        dyn.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = dynamics_loss(dyn, "pusht", codes, acts, valid, torch.Generator().manual_seed(0))["loss"].float()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in dyn.named_parameters() if p.grad is not None}

    fused = F.scaled_dot_product_attention
    calls = []
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or fused(*a, **k))
    ref_loss, ref = loss_and_grads(False)
    assert calls  # fp32 training: the fused kernel
    calls.clear()
    loss, got = loss_and_grads(True)
    assert not calls  # bf16 training: plain products only
    torch.testing.assert_close(loss, ref_loss, rtol=0.02, atol=0.0)
    assert got.keys() == ref.keys()
    for n, r in ref.items():
        err = (got[n].float() - r).norm() / r.norm().clamp_min(1e-12)
        assert err < 0.05, (n, float(err))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 inference: the fused kernel
        dyn.eval()
        dyn("pusht", codes[:1], torch.zeros(1, 6, 16, dtype=torch.bool), acts[:1])
    assert calls


def test_confidence_order_decides_the_surest_tokens_first_and_the_rest_after_seeing_them():
    tok, dyn, _ = tiny()
    past = torch.randint(0, 3, (1, 3, 16, 2))
    acts = torch.randn(1, 4, 5, 2)
    ctx = (past, acts[:, :3])
    # step 1 by hand: the slot fully masked, every position's most likely code and its log-probability
    all_codes = torch.cat([past, dyn.tokens.blank(1, 16, "cpu")], dim=1)
    mask = torch.cat([torch.zeros(1, 3, 16, dtype=torch.bool), torch.ones(1, 1, 16, dtype=torch.bool)], 1)
    with torch.no_grad():
        logits, _, _ = dyn("pusht", all_codes, mask, acts, None)
    first = dyn.tokens.newest(logits)
    conf = dyn.tokens.confidence(first)[0]
    argmax = torch.stack([lg.argmax(-1) for lg in first], dim=-1)[0]
    n_first = 16 - int(np.floor(16 * np.cos(np.pi / 2 * 0.5)))  # the cosine schedule's first share
    out = sample_frame(dyn, "pusht", acts[:, 3], None, context=ctx, steps=2, temperature=0.0,
                       gen=torch.Generator().manual_seed(7), order="confidence")[0]
    sure = conf.topk(n_first).indices
    assert torch.equal(out[sure], argmax[sure])  # the surest decided first, as argmax
    rest = torch.ones(16, dtype=torch.bool)
    rest[sure] = False
    # the rest are decided seeing them: a different answer than step 1's argmax somewhere
    assert not torch.equal(out[rest], argmax[rest])
    rnd = sample_frame(dyn, "pusht", acts[:, 3], None, context=ctx, steps=2, temperature=0.0,
                       gen=torch.Generator().manual_seed(7))[0]
    assert not torch.equal(out, rnd)  # the order matters
    with pytest.raises(ValueError, match="order must be one of"):
        sample_frame(dyn, "pusht", acts[:, 3], None, context=ctx, steps=2, order="sorted")


def test_temperature_really_changes_the_distribution():
    tok, dyn, _ = tiny()
    cache = KVCache(2, 5)
    _, _, kv = dyn("pusht", torch.zeros(1, 1, 16, 2, dtype=torch.long), torch.zeros(1, 1, 16, dtype=torch.bool),
                   None, None, cache=cache)
    cache.append(kv)
    a = torch.zeros(1, 5, 2)

    def distinct(temp):
        draws = {tuple(sample_frame(dyn, "pusht", a, cache, steps=1, temperature=temp,
                                    gen=torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(20)}
        return len(draws)

    assert distinct(0.0) == 1  # argmax
    assert distinct(0.05) < distinct(5.0)


def test_world_model_observe_imagine_act_shapes_determinism_and_history():
    tok, dyn, config = tiny()
    wm = WorldModel(tok, dyn, config, "pusht", seed=3)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    chunk = np.full((5, 2), 300.0)
    wm.observe(frames[0])
    wm.observe(frames[1], chunk)
    fut = np.stack([chunk] * 4)
    a = wm.imagine(fut)
    assert a.shape == (4, 32, 32, 3) and a.dtype == np.uint8
    assert wm.steps == 2 and len(wm.history) == 2  # imagination leaves the history alone
    wm.reset(3)
    wm.observe(frames[0])
    wm.observe(frames[1], chunk)
    assert np.array_equal(wm.imagine(fut), a)  # same seed, same frames
    act = wm.act()
    assert act.shape == (5, 2) and np.isfinite(act).all()
    with pytest.raises(ValueError, match=r"must be \(5, 2\)"):
        wm.observe(frames[2], np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        wm.imagine(np.full((1, 5, 2), np.nan))
    with pytest.raises(ValueError, match="no embodiment 'cheetah'.*pusht"):
        WorldModel(tok, dyn, config, "cheetah")


def test_long_rollouts_slide_the_window_and_stay_finite():
    tok, dyn, config = tiny()
    wm = WorldModel(tok, dyn, config, "pusht", seed=0)
    wm.observe(np.zeros((32, 32, 3), np.uint8))
    frames = wm.imagine(np.random.default_rng(0).uniform(0, 512, (100, 5, 2)))
    assert frames.shape == (100, 32, 32, 3)
    assert len(wm.history) == 1
    for _ in range(12):
        wm.observe(frames[0], np.zeros((5, 2)))
    assert len(wm.history) == dyn.cfg.window - 1  # bounded: the newest window-1 steps


def test_checkpoints_round_trip_in_fp16_and_bad_ones_are_explained(tmp_path):
    tok, dyn, config = tiny()
    state = {**{f"tokenizer.{k}": v for k, v in tok.state_dict().items()},
             **{f"dynamics.{k}": v for k, v in dyn.state_dict().items()}}
    save_checkpoint(tmp_path / "c", state, config, dtype=torch.float16)
    wm = WorldModel.load(tmp_path / "c", "pusht")
    assert wm.stride == 5
    cfg, st = load_checkpoint(tmp_path / "c")
    assert st["dynamics.mask_emb"].dtype == torch.float32
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        (tmp_path / "c" / "model.safetensors").rename(tmp_path / "w")
        load_checkpoint(tmp_path / "c")
    (tmp_path / "c" / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")


def test_a_tiny_model_learns_a_window_token_accuracy_rises():
    tok, dyn, _ = tiny()
    dyn.train()
    codes = torch.randint(0, 3, (1, 6, 16, 2)).repeat(4, 1, 1, 1)
    acts = torch.randn(4, 6, 5, 2) * 100 + 256
    opt = torch.optim.AdamW(dyn.parameters(), lr=3e-3)
    accs = []
    for step in range(60):
        out = dynamics_loss(dyn, "pusht", codes, acts, torch.ones(4, 6, dtype=torch.bool),
                            torch.Generator().manual_seed(step))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        accs.append(float(out["token_acc"]))
    assert np.mean(accs[-10:]) > np.mean(accs[:10]) + 0.3


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from hma_ros.cli.main import main as hma

    out = tmp_path_factory.mktemp("d")
    assert hma(["gen-data", "--out", str(out), "--embodiments", "pusht,reacher", "--episodes", "4",
                "--seconds", "7", "--workers", "1"]) == 0
    assert hma(["train-tokenizer", "--data", str(out), "--out", str(out / "tok"), "--max-steps", "3",
                "--batch-size", "4", "--channels", "16,16,16", "--levels", "4,3"]) == 0
    return out


TINY = ["--d-model", "32", "--layers", "1", "--heads", "2", "--window", "6", "--prompt", "2",
        "--batch-size", "2", "--eval-every", "0"]


def test_bf16_training_computes_the_fp32_loss_and_keeps_fp32_weights(small_data, tmp_path):
    """hma train --precision bf16 (autocast over the forward pass and loss): the same batches and
    masks give the fp32 run's losses to bf16's precision, the stored weights are fp32 and the
    checkpoint records the precision; an unknown precision is refused."""
    import csv

    from hma_ros.cli.main import main as hma

    losses = {}
    for prec in ("fp32", "bf16"):
        assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                    "--out", str(tmp_path / prec), "--steps", "10", "--precision", prec, *TINY]) == 0
        rows = list(csv.DictReader(open(tmp_path / prec / "train_log.csv")))
        losses[prec] = [float(r["loss"]) for r in rows]
    assert len(losses["bf16"]) == len(losses["fp32"]) >= 2
    np.testing.assert_allclose(losses["bf16"][0], losses["fp32"][0], rtol=0.02)  # the same first step
    assert all(np.isfinite(losses["bf16"]))
    cfg, state = load_checkpoint(tmp_path / "bf16")
    assert cfg["training"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    from hma_ros.train import TrainError
    from hma_ros.train.dynamics import DynamicsTraining, train_dynamics

    with pytest.raises(TrainError, match="precision must be fp32 or bf16"):
        train_dynamics(DynamicsTraining(data=[str(small_data / "pusht")], tokenizer=str(small_data / "tok"),
                                        out=str(tmp_path / "x"), precision="fp16"))


def test_bf16_tokenizer_training_follows_the_fp32_run_and_writes_fp32_weights(small_data, tmp_path):
    """hma train-tokenizer --precision bf16 (the convolutions under autocast, FSQ's rounding and
    the losses in fp32): the same seed's losses follow the fp32 run's, the held-out reconstruction
    is as good, the weights are stored fp32 and the precision recorded; the code-shaping and
    adversarial terms run under it too."""
    import csv

    from hma_ros.cli.main import main as hma

    common = ["train-tokenizer", "--data", str(small_data), "--max-steps", "40", "--batch-size", "4",
              "--channels", "16,16,16", "--levels", "4,3", "--lr", "2e-3"]
    losses, psnrs = {}, {}
    for prec in ("fp32", "bf16"):
        assert hma(common + ["--out", str(tmp_path / prec), "--precision", prec]) == 0
        losses[prec] = [float(r["loss"]) for r in csv.DictReader(open(tmp_path / prec / "train_log.csv"))]
        cfg, state = load_checkpoint(tmp_path / prec)
        assert cfg["training"]["precision"] == prec
        assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
        psnrs[prec] = cfg["training"]["val_psnr"]
    assert len(losses["bf16"]) == len(losses["fp32"]) == 2
    np.testing.assert_allclose(losses["bf16"], losses["fp32"], rtol=0.05)
    assert losses["bf16"][1] < losses["bf16"][0]  # it learns
    for name, v in psnrs["fp32"].items():
        assert abs(psnrs["bf16"][name] - v) < 0.5, (name, psnrs)
    assert hma(common[:3] + ["--out", str(tmp_path / "sa"), "--precision", "bf16", "--max-steps", "20",
                             "--batch-size", "4", "--channels", "16,16,16", "--levels", "4,3",
                             "--shift-weight", "0.1", "--adv-weight", "0.5", "--adv-start", "5"]) == 0
    row = list(csv.DictReader(open(tmp_path / "sa" / "train_log.csv")))[-1]
    assert all(np.isfinite(float(row[k])) for k in ("loss", "shift", "adv_g", "adv_d", "adv_w"))


def test_eval_windows_come_from_the_split_asked_for_train_and_val_never_share_an_episode(small_data):
    from hma_ros.data.dataset import Dataset
    from hma_ros.evaluation.heldout import pick_windows

    ds = Dataset(small_data / "pusht")
    train_eps, val_eps = ds.split(0.1, seed=0)
    tr = pick_windows(ds, 6, 20, episodes="train")
    va = pick_windows(ds, 6, 20, episodes="val")
    assert tr and va
    assert {e for e, _ in tr} <= set(train_eps) and {e for e, _ in va} <= set(val_eps)
    assert not {e for e, _ in tr} & {e for e, _ in va}
    assert {e for e, _ in pick_windows(ds, 6, 40, episodes="all")} == set(range(len(ds.episodes)))
    with pytest.raises(ValueError, match="use val, train or all"):
        pick_windows(ds, 6, 4, episodes="test")


def test_training_resumes_exactly_where_it_stopped(small_data, tmp_path):
    from hma_ros.cli.main import main as hma

    common = ["train", "--data", str(small_data / "pusht"), str(small_data / "reacher"), "--tokenizer",
              str(small_data / "tok"), "--save-every", "3", *TINY]
    assert hma(common + ["--out", str(tmp_path / "a"), "--steps", "6"]) == 0
    assert hma(common + ["--out", str(tmp_path / "b"), "--steps", "3"]) == 0
    # the interrupted run continues with the full schedule
    assert hma(["train", "--data", str(small_data / "pusht"), str(small_data / "reacher"), "--out",
                str(tmp_path / "b"), "--resume", "--steps", "6", "--save-every", "3", *TINY]) == 0
    _, sa = load_checkpoint(tmp_path / "a")
    _, sb = load_checkpoint(tmp_path / "b")
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], msg=k)


def test_save_every_zero_writes_the_checkpoint_only_at_the_end_and_a_negative_one_is_refused(small_data, tmp_path,
                                                                                           capsys):
    """--save-every 0 (as --eval-every 0): no checkpoint during the run, the last one at the end
    (it once divided by zero at the first step); a negative count is a clear error."""
    from hma_ros.cli.main import main as hma

    common = ["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"), *TINY]
    assert hma(common + ["--out", str(tmp_path / "z"), "--steps", "3", "--save-every", "0"]) == 0
    cfg, _ = load_checkpoint(tmp_path / "z")
    assert cfg["training"]["steps"] == 3
    assert hma(common + ["--out", str(tmp_path / "n"), "--steps", "3", "--save-every", "-5"]) == 2
    assert "--save-every -5: give a number of steps, or 0 for never" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_state_weight_adds_a_state_head_from_the_datas_recorded_state_that_resumes_and_loads(small_data, tmp_path):
    """hma train --init CKPT --state-weight W: a head for each dataset that records state, its
    statistics from the training episodes' step changes, in the checkpoint (config and weights)
    beside an unchanged image path; the loss is logged, the run resumes, and the world model
    loads it. Without recorded state it is refused with what to do."""
    import csv

    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset
    from hma_ros.train.state import state_record

    base = ["train", "--data", str(small_data / "pusht"), "--save-every", "2", *TINY]
    assert hma(base + ["--tokenizer", str(small_data / "tok"), "--out", str(tmp_path / "a"), "--steps", "2"]) == 0
    assert hma(base + ["--init", str(tmp_path / "a"), "--state-weight", "1", "--out", str(tmp_path / "s"),
                       "--steps", "4"]) == 0
    cfg, state = load_checkpoint(tmp_path / "s")
    ds = Dataset(small_data / "pusht")
    rec = cfg["embodiments"]["pusht"]["state"]
    assert rec == state_record(ds, ds.split(0.1, seed=0)[0])
    assert rec["keys"] == ds.meta["state_keys"] and "block_angle" in rec["keys"]
    assert any(k.startswith("dynamics.state_heads.pusht.") for k in state)
    assert cfg["loss"]["state_weight"] == 1.0
    rows = list(csv.DictReader(open(tmp_path / "s" / "train_log.csv")))
    assert rows and all(float(r["state_loss"]) > 0 for r in rows)
    assert hma(["train", "--data", str(small_data / "pusht"), "--out", str(tmp_path / "s"), "--resume",
                "--steps", "6", "--save-every", "2", *TINY]) == 0
    assert load_checkpoint(tmp_path / "s")[0]["training"]["steps"] == 6
    wm = WorldModel.load(str(tmp_path / "s"), "pusht")
    assert "pusht" in wm.dyn.state_heads
    bare = tmp_path / "nostate"
    shutil.copytree(small_data / "pusht", bare)
    meta = json.loads((bare / "meta.json").read_text())
    meta["state_keys"] = []
    (bare / "meta.json").write_text(json.dumps(meta))
    (bare / "state.f32").unlink()
    from hma_ros.train import TrainError
    from hma_ros.train.dynamics import DynamicsTraining, train_dynamics

    with pytest.raises(TrainError, match="no dataset records state"):
        train_dynamics(DynamicsTraining(data=[str(bare)], init=str(tmp_path / "a"), out=str(tmp_path / "x"),
                                        state_weight=1.0, steps=1, batch_size=2, eval_every=0))


def test_learning_rate_anneals_by_whichever_budget_ends_first():
    """The cosine after warm-up ends at --steps, or -- with --minutes -- when the time budget is
    spent, if that comes first: a run stopped by the clock has annealed to 5% of the base rate."""
    from hma_ros.train.dynamics import _lr

    assert _lr(4, 1000, 1e-3, 10) == pytest.approx(5e-4)  # warm-up: by steps only
    assert _lr(4, 1000, 1e-3, 10, time_frac=0.9) == pytest.approx(5e-4)
    assert _lr(10, 1000, 1e-3, 10) == pytest.approx(1e-3)
    assert _lr(1000, 1000, 1e-3, 10) == pytest.approx(5e-5)  # the end of the step budget
    half = 1e-3 * (0.05 + 0.95 * 0.5)
    assert _lr(505, 1000, 1e-3, 10) == pytest.approx(half)  # half the steps
    assert _lr(20, 1000, 1e-3, 10, time_frac=0.5) == pytest.approx(half)  # half the time, few steps
    assert _lr(505, 1000, 1e-3, 10, time_frac=0.1) == pytest.approx(half)  # steps ahead of the clock
    assert _lr(20, 1000, 1e-3, 10, time_frac=1.3) == pytest.approx(5e-5)  # over time: the floor


def test_training_device_is_checked_before_anything_is_written(small_data, tmp_path, capsys):
    from hma_ros.cli.main import main as hma

    common = ["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"), "--steps", "1", *TINY]
    assert hma(common + ["--out", str(tmp_path / "bad"), "--device", "mps"]) == 2
    assert "--device mps: only cpu and cuda are supported" in capsys.readouterr().err
    assert hma(common + ["--out", str(tmp_path / "bad"), "--device", "gpu0"]) == 2
    assert "not a device name; use cpu or cuda" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert hma(common + ["--out", str(tmp_path / "bad"), "--device", "cuda"]) == 2
        assert "no CUDA device is visible to torch here" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # the tokenizer trainer checks --device the same way, before anything is written
    tok = ["train-tokenizer", "--data", str(small_data / "pusht"), "--out", str(tmp_path / "badtok"), "--max-steps", "1"]
    assert hma(tok + ["--device", "mps"]) == 2
    assert "--device mps: only cpu and cuda are supported" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert hma(tok + ["--device", "cuda"]) == 2
        assert "no CUDA device is visible to torch here" in capsys.readouterr().err
    assert not (tmp_path / "badtok").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_writes_cpu_checkpoints_and_resumes_on_the_cpu(small_data, tmp_path):
    from hma_ros.cli.main import main as hma

    common = ["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
              "--save-every", "2", *TINY, "--out", str(tmp_path / "g")]
    assert hma(common + ["--steps", "2", "--device", "cuda"]) == 0
    _, st = load_checkpoint(tmp_path / "g")
    assert all(v.device.type == "cpu" for v in st.values())
    assert hma(common + ["--steps", "4", "--resume"]) == 0
    assert load_checkpoint(tmp_path / "g")[0]["training"]["steps"] == 4


def test_tokenized_dataset_motion_mask_is_the_same_across_chunk_boundaries(small_data):
    from hma_ros.data.dataset import Dataset
    from hma_ros.model.metrics import moving_tokens
    from hma_ros.runtime.world_model import build_models
    from hma_ros.train.state import TokenizedDataset

    tok, _ = build_models(*load_checkpoint(small_data / "tok"), "tok")
    ds = Dataset(small_data / "pusht")
    td = TokenizedDataset(ds, tok, batch=5, progress=False)  # many chunks
    one_pass = moving_tokens(np.array(ds.arrays["frames"]), tok.cfg.grid)
    assert one_pass.any() and np.array_equal(td.moving.numpy(), one_pass)
    assert td.batch([0, 3], 4)[3].shape == (2, 4, tok.tokens_per_frame)


def test_token_cache_returns_the_same_tokens_and_misses_when_the_encoder_or_frames_change(small_data, tmp_path):
    from hma_ros.data.dataset import Dataset, find_datasets
    from hma_ros.model.checkpoint import load_checkpoint
    from hma_ros.runtime.world_model import build_models
    from hma_ros.train.state import TokenizedDataset

    cfg, state = load_checkpoint(small_data / "tok")
    tok, _ = build_models(cfg, state, "tok")
    ds = Dataset(small_data / "pusht")
    cache = tmp_path / "cache"
    plain = TokenizedDataset(ds, tok, progress=False)
    first = TokenizedDataset(ds, tok, progress=False, cache=cache)
    again = TokenizedDataset(ds, tok, progress=False, cache=cache)
    assert (first.misses, first.hits, again.misses, again.hits) == (1, 0, 0, 1)
    for td in (first, again):
        assert torch.equal(td.codes, plain.codes) and torch.equal(td.moving, plain.moving)
        assert td.codes.dtype == torch.uint8 and td.moving.dtype == torch.bool
    with torch.no_grad():  # a new decoder keeps the token code, so the entry serves it
        next(tok.decoder.parameters()).add_(1.0)
    assert TokenizedDataset(ds, tok, progress=False, cache=cache).hits == 1
    with torch.no_grad():  # a new encoder does not
        next(tok.encoder.parameters()).add_(0.5)
    changed = TokenizedDataset(ds, tok, progress=False, cache=cache)
    assert changed.misses == 1 and not torch.equal(changed.codes, plain.codes)
    # a merged dataset (the same folder's frames under another folder): one entry per folder, all hits
    other = tmp_path / "more" / "pusht"
    __import__("shutil").copytree(small_data / "pusht", other)
    both = find_datasets([small_data / "pusht", other])["pusht"]
    merged = TokenizedDataset(both, tok, progress=False, cache=cache)
    assert (merged.hits, merged.misses) == (2, 0) and len(merged.codes) == 2 * len(ds)
    # a corrupt entry is rebuilt, not trusted
    for f in cache.glob("*.npz"):
        f.write_bytes(b"not a cache entry")
    rebuilt = TokenizedDataset(ds, tok, progress=False, cache=cache)
    assert rebuilt.misses == 1 and torch.equal(rebuilt.codes, changed.codes)



def test_token_cache_folder_comes_from_the_option_then_the_environment_and_off_disables_it(monkeypatch, tmp_path):
    from hma_ros.train.state import token_cache_dir

    monkeypatch.setenv("HMA_TOKEN_CACHE", str(tmp_path / "env"))
    assert token_cache_dir() == tmp_path / "env"
    assert token_cache_dir(str(tmp_path / "opt")) == tmp_path / "opt"
    assert token_cache_dir("off") is None and token_cache_dir("OFF") is None
    monkeypatch.setenv("HMA_TOKEN_CACHE", "off")
    assert token_cache_dir() is None
    monkeypatch.delenv("HMA_TOKEN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert token_cache_dir() == tmp_path / "xdg" / "hma_ros" / "tokens"


def test_optimizer_state_follows_parameter_names_when_registration_order_changes():
    from hma_ros.train.state import load_optimizer_state, optimizer_state_tensors

    class AB(torch.nn.Module):
        def __init__(self, reverse: bool):
            super().__init__()
            mods = [("a", torch.nn.Linear(3, 4)), ("b", torch.nn.Linear(4, 2))]
            for name, m in (reversed(mods) if reverse else mods):
                self.add_module(name, m)

    torch.manual_seed(0)
    m1 = AB(reverse=False)
    opt1 = torch.optim.AdamW(m1.parameters(), lr=0.1)
    m1.a(torch.randn(5, 3)).pow(2).sum().backward()
    m1.b(torch.randn(5, 4)).pow(2).sum().backward()
    opt1.step()
    tensors, meta = optimizer_state_tensors(opt1, m1)
    m2 = AB(reverse=True)  # the same parameters, registered in the other order (a code change)
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.1)
    load_optimizer_state(opt2, tensors, meta, m2)
    s1 = {n: opt1.state[p]["exp_avg"] for n, p in m1.named_parameters()}
    s2 = {n: opt2.state[p]["exp_avg"] for n, p in m2.named_parameters()}
    assert set(s1) == set(s2)
    for n in s1:
        torch.testing.assert_close(s1[n], s2[n], msg=n)


def test_checkpoints_and_train_states_from_before_the_named_trunk_load_under_todays_names():
    """The shipped checkpoints were saved before Trunk/SpatialAttention/TemporalAttention/
    Conditioning had names (blocks.i.qkv_s, cond_bias, ...): they load onto today's modules
    weight for weight, and an optimizer state saved under the old names resumes."""
    from pathlib import Path

    from hma_ros.runtime.world_model import build_models
    from hma_ros.train.state import load_optimizer_state, optimizer_state_tensors

    ckpt = Path(__file__).resolve().parents[1] / "models" / "hma_discrete_small"
    config, st = load_checkpoint(ckpt)
    assert "dynamics.blocks.0.qkv_s.weight" in st and "dynamics.cond_bias" in st  # the old names
    # and the old config: loss settings inside `dynamics`, read as the LossConfig they were
    assert "label_smoothing" in config["dynamics"] and "loss" not in config
    old = {k: config["dynamics"][k] for k in ("mask_min_ratio", "label_smoothing", "corrupt_prob", "policy_prob")}
    assert LossConfig.from_config(config) == LossConfig(**old)
    _, dyn = build_models(config, dict(st))
    blk = dyn.trunk.blocks[1]
    for now, old in ((blk.spatial.qkv.weight, "blocks.1.qkv_s.weight"), (blk.temporal.out.bias, "blocks.1.out_t.bias"),
                     (dyn.trunk.norm_out.weight, "norm_out.weight"), (dyn.conditioning.bias, "cond_bias")):
        torch.testing.assert_close(now, st["dynamics." + old], rtol=0, atol=0)

    legacy = (("trunk.blocks.", "blocks."), ("trunk.norm_out.", "norm_out."), ("conditioning.bias", "cond_bias"),
              (".spatial.qkv.", ".qkv_s."), (".temporal.out.", ".out_t."), (".temporal.qkv.", ".qkv_t."),
              (".spatial.out.", ".out_s."))

    def old_name(n):
        for a, b in legacy:
            n = n.replace(a, b)
        return n

    _, m1, _ = tiny()
    opt1 = torch.optim.AdamW(m1.parameters(), lr=0.1)
    codes, acts = torch.randint(0, 3, (1, 6, 16, 2)), torch.randn(1, 6, 5, 2)
    dynamics_loss(m1, "pusht", codes, acts, torch.ones(1, 6, dtype=torch.bool))["loss"].backward()
    opt1.step()
    tensors, meta = optimizer_state_tensors(opt1, m1)
    tensors = {("opt." + old_name(k[4:]) if k.startswith("opt.") else k): v for k, v in tensors.items()}
    meta = meta | {"param_names": [old_name(n) for n in meta["param_names"]],
                   "scalars": {old_name(k): v for k, v in meta["scalars"].items()}}
    assert "blocks.0.qkv_s.weight" in meta["param_names"]
    _, m2, _ = tiny()
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.1)
    load_optimizer_state(opt2, tensors, meta, m2)
    p1, p2 = m1.trunk.blocks[0].spatial.qkv.weight, m2.trunk.blocks[0].spatial.qkv.weight
    torch.testing.assert_close(opt1.state[p1]["exp_avg"], opt2.state[p2]["exp_avg"])


def test_finetuning_adds_a_new_stem_and_head_and_can_freeze_the_trunk(small_data, tmp_path, capsys):
    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "pre"), "--steps", "2", *TINY]) == 0
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "pre"),
                "--freeze-trunk", "--out", str(tmp_path / "ft"), "--steps", "3", *TINY]) == 0
    cfg, st = load_checkpoint(tmp_path / "ft")
    _, pre = load_checkpoint(tmp_path / "pre")
    assert set(cfg["embodiments"]) == {"pusht", "reacher"}
    assert "dynamics.stems.reacher.net.0.weight" in st
    torch.testing.assert_close(st["dynamics.trunk.blocks.0.temporal.qkv.weight"], pre["dynamics.trunk.blocks.0.temporal.qkv.weight"])
    WorldModel.load(tmp_path / "ft", "reacher").observe(np.zeros((32, 32, 3), np.uint8))
    assert cfg["loss"]["motion_weight"] == 1.0 and "motion_weight" not in cfg["dynamics"]
    # a training setting given with --init replaces the checkpoint's, and the weighted loss trains
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"),
                "--motion-weight", "4", "--out", str(tmp_path / "mw"), "--steps", "2", *TINY]) == 0
    assert load_checkpoint(tmp_path / "mw")[0]["loss"]["motion_weight"] == 4.0
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"),
                "--motion-weight", "0", "--out", str(tmp_path / "bad"), "--steps", "1", *TINY]) == 2
    assert "motion_weight must be > 0" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"),
                "--mixture", "pusht=1", "--out", str(tmp_path / "bad"), "--steps", "1", *TINY]) == 2
    assert "--mixture: mixture shares {'pusht': 1.0} must give a weight > 0 to each of reacher" in capsys.readouterr().err
    # --init with another tokenizer and an action map: the trunk as loaded, the new tokenizer's weights
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "tok2"), "--max-steps", "1",
                "--batch-size", "2", "--channels", "16,16,16", "--levels", "4,3", "--seed", "9"]) == 0
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"), "--tokenizer",
                str(tmp_path / "tok2"), "--action-points", "2", "--out", str(tmp_path / "ap"), "--steps", "1",
                "--lr", "0", *TINY]) == 0
    cfg, st = load_checkpoint(tmp_path / "ap")
    _, tok2 = load_checkpoint(tmp_path / "tok2")
    assert cfg["dynamics"]["action_points"] == 2 and st["dynamics.stems.reacher.points.weight"].shape == (4, 50)
    torch.testing.assert_close(st["dynamics.trunk.blocks.0.temporal.qkv.weight"], pre["dynamics.trunk.blocks.0.temporal.qkv.weight"])
    for k, v in tok2.items():
        if k.startswith("tokenizer."):
            torch.testing.assert_close(st[k], v, msg=k)
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ap"),
                "--action-points", "3", "--out", str(tmp_path / "bad"), "--steps", "1", *TINY]) == 2
    assert "already has action_points = 2" in capsys.readouterr().err
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "tok3"), "--max-steps", "1",
                "--batch-size", "2", "--channels", "16,16,16", "--levels", "3,3"]) == 0
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"), "--tokenizer",
                str(tmp_path / "tok3"), "--out", str(tmp_path / "bad"), "--steps", "1", *TINY]) == 2
    assert "differ from --init's" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    # another token grid (8x8 -> 16x16 tokens, the same levels): trunk and action token as loaded, the
    # image positions resampled, and the model imagines on the new grid; a grid the channels cannot make: an error
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "bad"), "--max-steps", "1",
                "--channels", "16,16,16", "--grid", "16"]) == 2
    assert "need log2(4) = 2 channel stages, got 3" in capsys.readouterr().err
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "tok16"), "--max-steps", "1",
                "--batch-size", "2", "--channels", "16,16", "--grid", "16", "--levels", "4,3"]) == 0
    assert hma(["train", "--data", str(small_data / "reacher"), "--init", str(tmp_path / "ft"), "--tokenizer",
                str(tmp_path / "tok16"), "--out", str(tmp_path / "g16"), "--steps", "1", "--lr", "0", *TINY]) == 0
    assert "16x16 tokens under --init's 64 a frame: its position embeddings resampled" in capsys.readouterr().out
    cfg, st = load_checkpoint(tmp_path / "g16")
    _, ft = load_checkpoint(tmp_path / "ft")
    assert cfg["dynamics"]["tokens_per_frame"] == 256 and ft["dynamics.pos_emb"].shape[0] == 65
    assert st["dynamics.pos_emb"].shape == (257, ft["dynamics.pos_emb"].shape[1])
    torch.testing.assert_close(st["dynamics.pos_emb"][256], ft["dynamics.pos_emb"][64])  # the action token's
    torch.testing.assert_close(st["dynamics.trunk.blocks.0.temporal.qkv.weight"], ft["dynamics.trunk.blocks.0.temporal.qkv.weight"])
    wm = WorldModel.load(tmp_path / "g16", "reacher")
    wm.observe(np.zeros((32, 32, 3), np.uint8))
    assert wm.imagine(np.zeros((2, wm.stride, wm.action_dim), np.float32)).shape == (2, 64, 64, 3)


def test_regrid_positions_keeps_where_a_position_embedding_points():
    """An embedding that is a linear function of a token's centre (in frame units) is resampled to
    the same function at the new tokens' centres (bilinear interpolation is exact on linear
    functions, away from the border), and an appended action token's embedding is kept."""
    from hma_ros.train.dynamics import TrainError, regrid_positions

    def centres(g):
        c = (torch.arange(g, dtype=torch.float32) + 0.5) / g
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        return xx.flatten(), yy.flatten()

    x, y = centres(8)
    old = torch.stack([x, y, 2 * x - y + 1], -1)  # (64, 3)
    new = regrid_positions(torch.cat([old, torch.tensor([[7.0, 8.0, 9.0]])]), 64, 256)
    assert new.shape == (257, 3) and new[256].tolist() == [7.0, 8.0, 9.0]
    x1, y1 = centres(16)
    inside = ((x1 > 1 / 16) & (x1 < 15 / 16) & (y1 > 1 / 16) & (y1 < 15 / 16))
    want = torch.stack([x1, y1, 2 * x1 - y1 + 1], -1)
    torch.testing.assert_close(new[:256][inside], want[inside])
    with pytest.raises(TrainError, match="square grids"):
        regrid_positions(old, 64, 200)



def test_init_with_more_layers_appends_blocks_that_start_as_identities(small_data, tmp_path, capsys):
    """hma train --init X --layers N, N above X's: blocks appended to X's trunk whose adaLN-Zero gates
    start at zero, so before it trains the deeper model imagines exactly X's frames; X's blocks keep
    their weights; fewer layers than X's is refused (it would drop trained blocks), nothing written."""
    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "pre"), "--steps", "3", *TINY]) == 0
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "pre"), "--out",
                str(tmp_path / "deep"), "--steps", "1", "--lr", "0", *TINY, "--layers", "3"]) == 0
    cfg, st = load_checkpoint(tmp_path / "deep")
    _, pre = load_checkpoint(tmp_path / "pre")
    assert cfg["dynamics"]["n_layers"] == 3 and "dynamics.trunk.blocks.2.ada.weight" in st
    for k, v in pre.items():
        torch.testing.assert_close(st[k], v, rtol=0, atol=0, msg=k)
    assert not st["dynamics.trunk.blocks.2.ada.weight"].any() and st["dynamics.trunk.blocks.2.mlp.0.weight"].any()
    from hma_ros.data.dataset import Dataset

    frames = np.asarray(Dataset(small_data / "pusht").arrays["frames"][:2])
    acts = np.full((6, 5, 2), 300.0)
    out = []
    for ckpt in ("pre", "deep"):
        wm = WorldModel.load(tmp_path / ckpt, "pusht", render="tokens")
        wm.reset(0)
        for f in frames:
            wm.observe(f, acts[0])
        out.append(wm.imagine(acts[:4]))
    assert out[0].shape[0] == 4 and np.array_equal(out[0], out[1])
    # and the check can fail: one step of training moves the new blocks' gates, and the frames
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "pre"), "--out",
                str(tmp_path / "deep1"), "--steps", "1", "--lr", "0.05", "--warmup", "1", *TINY, "--layers", "3"]) == 0
    wm = WorldModel.load(tmp_path / "deep1", "pusht", render="tokens")
    wm.reset(0)
    for f in frames:
        wm.observe(f, acts[0])
    assert not np.array_equal(out[0], wm.imagine(acts[:4]))
    capsys.readouterr()
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "deep"), "--out",
                str(tmp_path / "bad"), "--steps", "1", *TINY, "--layers", "2"]) == 2
    assert "would drop trained ones" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_init_with_objective_passive_makes_a_passive_control_from_the_models_weights(small_data, tmp_path, capsys):
    """`hma train --init X --objective passive`: X's trunk and tokens as loaded, the action
    pathway left behind (no action token, no modulation by actions): its imagined frames do not
    depend on the actions. Other objectives cannot be switched with --init."""
    from hma_ros.cli.main import main as hma
    from hma_ros.runtime.world_model import WorldModel

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "pre"), "--steps", "2", *TINY]) == 0
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "pre"), "--objective", "passive",
                "--out", str(tmp_path / "pas"), "--steps", "1", "--lr", "0", *TINY]) == 0
    cfg, st = load_checkpoint(tmp_path / "pas")
    _, pre = load_checkpoint(tmp_path / "pre")
    assert cfg["dynamics"]["objective"] == "passive" and cfg["dynamics"]["conditioning"] == "none"
    S = cfg["dynamics"]["tokens_per_frame"]
    assert pre["dynamics.pos_emb"].shape[0] == S + 1  # the concat action token's position ...
    torch.testing.assert_close(st["dynamics.pos_emb"], pre["dynamics.pos_emb"][:S])  # ... is left behind
    torch.testing.assert_close(st["dynamics.trunk.blocks.0.temporal.qkv.weight"],
                               pre["dynamics.trunk.blocks.0.temporal.qkv.weight"])
    wm = WorldModel.load(tmp_path / "pas", "pusht")
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    futures = []
    for target in (0.0, 500.0):
        wm.reset(0)
        for f in frames:
            wm.observe(f, np.full((5, 2), 250.0))
        futures.append(wm.imagine(np.full((3, 5, 2), target)))
    np.testing.assert_array_equal(futures[0], futures[1])
    # a part grown at the same time grows on the passive model
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "pre"), "--objective", "passive",
                "--factor-ar", "4", "--out", str(tmp_path / "pas_ar"), "--steps", "1", *TINY]) == 0
    cfg_ar, _ = load_checkpoint(tmp_path / "pas_ar")
    assert cfg_ar["dynamics"]["objective"] == "passive" and cfg_ar["dynamics"]["factor_ar"] == 4
    assert hma(["train", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "pre"), "--objective", "policy",
                "--out", str(tmp_path / "bad"), "--steps", "1", *TINY]) == 2
    assert "can only turn it passive" in capsys.readouterr().err and not (tmp_path / "bad").exists()

def test_two_process_ddp_training_with_gloo(small_data, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "hma_ros.cli.main", "train", "--data", str(small_data / "pusht"), "--tokenizer",
           str(small_data / "tok"), "--out", str(tmp_path / "ddp"), "--steps", "3", *TINY]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=170, env={**__import__("os").environ,
                                                                             "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    cfg, _ = load_checkpoint(tmp_path / "ddp")
    assert cfg["training"]["steps"] == 3 and cfg["training"]["batch_size"] == 4


def test_eval_scores_the_reachers_arm_for_the_model_and_every_comparison_arm(small_data, tmp_path):
    import json

    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "reacher"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "r"), "--steps", "2", *TINY]) == 0
    assert hma(["eval", "--ckpt", str(tmp_path / "r"), "--data", str(small_data / "reacher"), "--windows", "2",
                "--trials", "1", "--gifs", "0", "--passive", str(tmp_path / "r")]) == 0
    res = json.loads((tmp_path / "r/eval/eval.json").read_text())["reacher"]
    mv = res["moves"]
    for arm in ("model", "copy_last", "tokenizer", "ground_truth", "passive"):
        assert {"arm_f", "arm_f_moved", "arm_f_still", "arm_f_per_horizon"} <= set(mv[arm]), arm
    assert mv["ground_truth"]["arm_f"] == 1.0  # the true frames' arm lies on itself
    assert mv["passive"]["arm_f"] == pytest.approx(mv["model"]["arm_f"])  # the same model as its own passive arm
    assert mv["model"]["arm_f_vs_passive"] == pytest.approx(0.0)
    assert "agent_within" not in mv["model"]  # PushT's agent: PushT only
    assert "arm moved: F [95% CI]" in (tmp_path / "r/eval/table.md").read_text()


def test_eval_bench_and_imagine_commands_produce_their_outputs(small_data, tmp_path, capsys):
    import json

    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "2", *TINY]) == 0
    assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(small_data / "pusht"), "--windows", "2",
                "--trials", "2", "--passive", str(tmp_path / "m"), "--scratch", str(tmp_path / "m"),
                "--control", str(tmp_path / "m")]) == 0
    res = json.loads((tmp_path / "m/eval/eval.json").read_text())["pusht"]
    for k in ("psnr", "copy_last_frame_psnr", "delta_psnr_ci95", "tokenizer_psnr", "perplexity", "passive_psnr",
              "vs_passive_ci95", "passive_psnr_moving", "vs_passive_moving_ci95", "action_mse", "mean_action_mse"):
        assert k in res
    assert res["psnr"] == pytest.approx(res["passive_psnr"])  # the same model as its own passive arm
    assert res["psnr_moving"] == pytest.approx(res["passive_psnr_moving"])
    assert res["scratch_psnr"] == pytest.approx(res["psnr"]) and res["vs_scratch_ci95"] == [0.0, 0.0]
    assert res["scratch_perplexity"] == pytest.approx(res["perplexity"])
    assert res["control_psnr"] == pytest.approx(res["psnr"]) and res["vs_control_ci95"] == [0.0, 0.0]
    assert res["passive_ppl_ratio"] == pytest.approx(1.0) and res["passive_ppl_ratio_ci95"] == pytest.approx([1, 1])
    mv = res["moves"]  # what moves: PushT agent tracking and motion IoU, per arm and horizon
    assert mv["ground_truth"]["agent_within"] == 1.0 and mv["ground_truth"]["agent_present"] == 1.0
    assert len(mv["model"]["agent_within_per_horizon"]) == len(mv["model"]["motion_iou_per_horizon"]) == 4
    assert mv["copy_last"]["motion_iou"] == 0.0  # copying moves nothing
    assert not any(k.startswith("arm_f") for v in mv.values() for k in v)  # the reacher's arm: reacher only
    assert mv["model"]["agent_within"] == pytest.approx(mv["passive"]["agent_within"])  # same model
    assert mv["model"]["motion_iou_vs_passive"] == pytest.approx(0.0)
    assert mv["ground_truth"]["goal_bias"] == 0.0 and mv["model"]["goal_bias_vs_passive"] == pytest.approx(0.0)
    assert -1.0 <= mv["model"]["goal_bias"] <= 1.0 and len(mv["model"]["goal_bias_per_horizon"]) == 4
    assert mv["ground_truth"]["t_shape"] >= 0.75 and mv["model"]["t_shape_vs_passive"] == pytest.approx(0.0)
    assert 0.0 <= mv["tokenizer"]["agent_within"] <= 1.0
    gt = mv["ground_truth"]  # the truth tracks itself in contact with the T and free of it (where either occurs)
    assert all(gt[k] == 1.0 for k in ("agent_within_contact", "agent_within_free") if gt[k] == gt[k])
    lo, hi = mv["model"]["agent_within_first_ci95"]
    assert lo <= mv["model"]["agent_within_per_horizon"][0] <= hi
    table = (tmp_path / "m/eval/table.md").read_text()
    assert "agent within 1/16 side [95% CI]" in table and "motion IoU [95% CI]" in table
    assert "T shape (true frames)" in table
    assert "at h=1 [95% CI]" in table and "touching the T" in table and "T on goal, imagined - true [95% CI]" in table
    assert "vs passive [95% CI]" in table and "vs scratch moving [95% CI]" in table and "scratch ppl / ppl [95% CI]" in table
    assert res["render"] == "residual" and res["episode_set"] == "val" and res["episodes"] == 1
    threads = torch.get_num_threads()
    try:
        assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(small_data / "pusht"), "--windows", "4",
                    "--trials", "1", "--episodes", "all", "--gifs", "0", "--threads", "1",
                    "--out", str(tmp_path / "all")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "all/eval.json").read_text())["pusht"]["episodes"] == 4  # every episode
    # the nodes' speed settings evaluated as the nodes run them: bf16 trunk under autocast through the
    # fixed-shape caches, the teacher-forced pass too (its trunk holds bf16 weights), every arm alike
    assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(small_data / "pusht"), "--windows", "2",
                "--trials", "1", "--gifs", "0", "--precision", "bf16", "--graphs", "--passive", str(tmp_path / "m"),
                "--out", str(tmp_path / "bf16")]) == 0
    half = json.loads((tmp_path / "bf16/eval.json").read_text())["pusht"]
    assert half["sampling"]["precision"] == "bf16" and half["sampling"]["graphs"] is True
    assert half["perplexity"] == pytest.approx(res["perplexity"], rel=0.05)
    assert half["psnr"] == pytest.approx(half["passive_psnr"])
    capsys.readouterr()
    assert hma(["eval", "--ckpt", str(tmp_path / "m"), "--data", str(small_data / "pusht"), "--compile"]) == 2
    assert "--compile compiles the fixed-shape cached passes: add --graphs" in capsys.readouterr().err
    assert len(list((tmp_path / "m/eval").glob("pusht_*.gif"))) == 2
    capsys.readouterr()
    assert hma(["bench", "--ckpt", str(tmp_path / "m"), "--repeats", "2"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["kv_cache"]["imagined_fps"] > 0 and bench["peak_rss_mb"] > 0
    assert hma(["imagine", "--ckpt", str(tmp_path / "m"), "--data", str(small_data / "pusht"),
                "--horizon", "4", "--out", str(tmp_path / "i.gif")]) == 0
    import imageio.v2 as imageio

    gif = imageio.mimread(tmp_path / "i.gif")
    assert len(gif) == 4 and gif[0].shape[1] == 2 * gif[0].shape[0]  # truth | imagined, 4 imagined frames
    imageio.imwrite(tmp_path / "start.png", np.zeros((48, 48, 3), np.uint8))  # any size: resized
    np.save(tmp_path / "plan.npy", np.full((3, 5, 2), 256.0))
    assert hma(["imagine", "--ckpt", str(tmp_path / "m"), "--image", str(tmp_path / "start.png"), "--actions",
                str(tmp_path / "plan.npy"), "--out", str(tmp_path / "p.gif")]) == 0
    from PIL import Image, ImageSequence

    with Image.open(tmp_path / "p.gif") as im:  # 3 frames at 2 fps (identical ones merged by the GIF writer)
        assert sum(f.info["duration"] for f in ImageSequence.Iterator(im)) == 1500
    np.save(tmp_path / "bad.npy", np.zeros((3, 7)))
    capsys.readouterr()
    assert hma(["imagine", "--ckpt", str(tmp_path / "m"), "--image", str(tmp_path / "start.png"), "--actions",
                str(tmp_path / "bad.npy"), "--out", str(tmp_path / "b.gif")]) == 2
    assert "cannot be read as (K, 5, 2) chunks for pusht" in capsys.readouterr().err
    assert hma(["export", "--ckpt", str(tmp_path / "m"), "--out", str(tmp_path / "shipped")]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "shipped/model.safetensors"), "pt") as f:
        assert f.get_tensor("dynamics.mask_emb").dtype == torch.float16
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == ["config.yaml", "model.safetensors"]


def test_decoder_only_tokenizer_keeps_the_token_code_and_ships_with_the_dynamics_model(small_data, tmp_path, capsys):
    """train-tokenizer --decoder-only from an HMA checkpoint: every frame's tokens stay bitwise, the
    decoder learns; export --decoder takes it into the checkpoint and refuses a tokenizer whose
    encoder (token code) is another."""
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset
    from hma_ros.runtime.world_model import build_models

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "1", *TINY]) == 0
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "dec"), "--decoder-only",
                "--max-steps", "3", "--batch-size", "2"]) == 2
    assert "--decoder-only needs --init" in capsys.readouterr().err
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "dec"), "--init",
                str(tmp_path / "m"), "--decoder-only", "--max-steps", "3", "--batch-size", "2", "--lr", "1e-2"]) == 0
    mcfg, mstate = load_checkpoint(tmp_path / "m")
    dcfg, dstate = load_checkpoint(tmp_path / "dec")
    assert dcfg["training"]["decoder_only"] is True
    enc = [k for k in mstate if k.startswith("tokenizer.encoder.")]
    dec = [k for k in mstate if k.startswith("tokenizer.decoder.")]
    assert enc and dec and all(torch.equal(mstate[k], dstate[k]) for k in enc)
    assert any(not torch.equal(mstate[k], dstate[k]) for k in dec)  # the decoder learned
    frames = torch.from_numpy(np.array(Dataset(small_data / "pusht").arrays["frames"][:6]))
    tok_m, _ = build_models({"tokenizer": mcfg["tokenizer"]}, mstate, "m")
    tok_d, _ = build_models({"tokenizer": dcfg["tokenizer"]}, dstate, "dec")
    with torch.no_grad():
        assert torch.equal(tok_m.encode(frames), tok_d.encode(frames))
    assert hma(["export", "--ckpt", str(tmp_path / "m"), "--decoder", str(tmp_path / "dec"), "--fp32",
                "--out", str(tmp_path / "shipped")]) == 0
    scfg, sstate = load_checkpoint(tmp_path / "shipped")
    for k in dec:
        assert torch.equal(sstate[k], dstate[k]), k
    for k in enc + [k for k in mstate if k.startswith("dynamics.")]:
        assert torch.equal(sstate[k], mstate[k]), k
    assert scfg["training"]["decoder"]["from"] == str(tmp_path / "dec") and scfg["training"]["steps"] == 1
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "other"), "--max-steps", "1",
                "--batch-size", "2", "--channels", "16,16,16", "--levels", "4,3", "--seed", "5"]) == 0
    capsys.readouterr()
    assert hma(["export", "--ckpt", str(tmp_path / "m"), "--decoder", str(tmp_path / "other"),
                "--out", str(tmp_path / "bad")]) == 2
    assert "its encoder is not the checkpoint's" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_decoder_learns_to_draw_the_world_models_imagined_tokens_as_the_true_frames(small_data, tmp_path, capsys):
    """train-tokenizer --decoder-only --imagined CKPT: imagine(tokens=True) gives the codes imagine()
    decodes; the pairs are rollouts of training windows (true actions), each imagined frame's
    codes with the index of the true frame it stands for; the decoder trained on them draws the
    held-out rollouts' tokens closer to the truth (PSNR before < after, recorded), the encoder
    stays bitwise; refused without --decoder-only, and with a world model of another code."""
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import find_datasets
    from hma_ros.runtime.world_model import WorldModel
    from hma_ros.train.imagined import imagined_pairs

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "2", *TINY]) == 0
    wm = WorldModel.load(tmp_path / "m", "pusht", render="tokens")
    ds = find_datasets([small_data / "pusht"])["pusht"]
    w = ds.window(0, wm.window)
    for frame, chunk in w.steps(wm.prompt):
        wm.observe(frame, chunk)
    codes = wm.imagine(w.actions[wm.prompt - 1:-1], tokens=True)
    frames = wm.imagine(w.actions[wm.prompt - 1:-1])
    assert codes.shape == (wm.window - wm.prompt, 64, 2) and codes.dtype == np.int64
    assert np.array_equal(wm.tok.decode(torch.from_numpy(codes)).numpy(), frames)
    pairs = imagined_pairs(str(tmp_path / "m"), {"pusht": ds}, {"pusht": [0, 1]}, windows=3)["pusht"]
    assert pairs.tokens.shape == (3 * (wm.window - wm.prompt), 64, 2)
    starts = pairs.frame_index[::wm.window - wm.prompt] - wm.prompt
    assert set(np.asarray(ds.arrays["episode"])[starts]) <= {0, 1}  # the episodes asked for
    wm.reset(0)
    w = ds.window(int(starts[0]), wm.window)
    for frame, chunk in w.steps(wm.prompt):
        wm.observe(frame, chunk)
    assert np.array_equal(pairs.tokens[:wm.window - wm.prompt], wm.imagine(w.actions[wm.prompt - 1:-1], tokens=True))

    args = ["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "m"), "--max-steps", "1",
            "--batch-size", "2", "--imagined-windows", "4"]
    assert hma([*args, "--imagined", str(tmp_path / "m"), "--out", str(tmp_path / "bad")]) == 2
    assert "--imagined trains the decoder on the world model's tokens" in capsys.readouterr().err
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "other"), "--max-steps", "1",
                "--batch-size", "2", "--channels", "16,16,16", "--levels", "4,3", "--seed", "5"]) == 0
    capsys.readouterr()
    assert hma([*args, "--decoder-only", "--imagined", str(tmp_path / "other"), "--out", str(tmp_path / "bad")]) == 2
    assert "its tokenizer gives frames other tokens than --init" in capsys.readouterr().err

    assert hma(["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(tmp_path / "m"),
                "--decoder-only", "--imagined", str(tmp_path / "m"), "--imagined-windows", "10",
                "--imagined-share", "0.5", "--max-steps", "30", "--batch-size", "8", "--lr", "3e-3",
                "--out", str(tmp_path / "dec")]) == 0
    cfg, state = load_checkpoint(tmp_path / "dec")
    before, after = cfg["training"]["imagined_psnr"]["pusht"]
    assert after > before + 1.0, (before, after)
    assert cfg["training"]["imagined"] == str(tmp_path / "m") and cfg["training"]["imagined_share"] == 0.5
    _, mstate = load_checkpoint(tmp_path / "m")
    assert all(torch.equal(mstate[k], state[k]) for k in mstate if k.startswith("tokenizer.encoder."))
    assert f"PSNR {before} dB with the --init decoder, {after} dB now" in capsys.readouterr().out


def test_shift_penalty_measures_how_far_a_one_pixel_move_moves_the_code_and_training_lowers_it(small_data, tmp_path,
                                                                                           capsys):
    """shift_frames moves frames by whole pixels (edges replicated); shift_penalty is the mean
    absolute change of the soft latent (FSQ levels) under a one-pixel move, against the training
    pass's own latent; train-tokenizer --shift-weight lowers it against the same run without
    (same seed, batches), records the weight and logs the penalty; refused with --decoder-only."""
    import csv

    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset
    from hma_ros.model.tokenizer import shift_frames, shift_penalty, to_float

    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    y = shift_frames(x, 1, 0)
    assert torch.equal(y[..., 1:], x[..., :-1]) and torch.equal(y[..., 0], x[..., 0])  # right, edge replicated
    z = shift_frames(x, -1, 1)
    assert torch.equal(z[..., 1:, :-1], x[..., :-1, 1:]) and torch.equal(shift_frames(x, 0, 0), x)
    frames = torch.from_numpy(np.array(Dataset(small_data / "pusht").arrays["frames"][:8]))
    cfg, state = load_checkpoint(small_data / "tok")
    tok = FSQTokenizer(TokenizerConfig(**cfg["tokenizer"]))
    tok.load_state_dict(sub_state(state, "tokenizer"))
    with torch.no_grad():
        xf = to_float(frames)
        tok(frames)
        assert torch.equal(tok.last_soft, tok.soft_latent(xf)) and torch.equal(tok.soft_latent(xf).round(),
                                                                               tok.fsq(tok.encoder(xf).movedim(1, -1))[0])
        moved = [tok.soft_latent(shift_frames(xf, dx, dy)) for dx, dy in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1),
                                                                         (1, -1), (1, 0), (1, 1))]
        expect = {round(float((m - tok.last_soft).abs().mean()), 6) for m in moved}
        assert round(float(shift_penalty(tok, xf, torch.Generator().manual_seed(3))), 6) in expect
        tok.last_soft = tok.soft_latent(xf)
        still = frames[:1].expand(8, -1, -1, -1).clone()
        still[:] = still[0, 0, 0]  # one colour everywhere: a move changes nothing
        tok(still)
        assert float(shift_penalty(tok, to_float(still))) == 0.0
    pen = {}
    for w in ("0", "20"):
        assert hma(["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(small_data / "tok"),
                    "--shift-weight", w, "--max-steps", "40", "--batch-size", "4", "--lr", "1e-2",
                    "--out", str(tmp_path / f"s{w}")]) == 0
        c, st = load_checkpoint(tmp_path / f"s{w}")
        assert c["training"]["shift_weight"] == float(w)
        t = FSQTokenizer(TokenizerConfig(**c["tokenizer"]))
        t.load_state_dict(sub_state(st, "tokenizer"))
        with torch.no_grad():
            t(frames)
            pen[w] = float(np.mean([float(shift_penalty(t, to_float(frames), torch.Generator().manual_seed(i)))
                                    for i in range(8)]))
        rows = list(csv.DictReader(open(tmp_path / f"s{w}" / "train_log.csv")))
        assert (rows[-1]["shift"] != "") == (w != "0")
    assert pen["20"] < 0.5 * pen["0"], pen
    capsys.readouterr()
    assert hma(["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(small_data / "tok"),
                "--decoder-only", "--shift-weight", "1", "--max-steps", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "--shift-weight shapes the code (the encoder), which --decoder-only keeps bitwise" in capsys.readouterr().err


def test_adversarial_decoder_discriminator_sees_38_px_patches_learns_real_from_decoded_and_balances_by_gradients(
        small_data, tmp_path, capsys):
    """train/adversarial.py: the PatchGAN gives 8x8 logits at 64 px, its convolutions each seeing a 38-px patch; the
    hinge loss is 2 for a blind discriminator; the adaptive weight is the ratio of the pixel and
    adversarial gradients at the decoder's last layer. train-tokenizer --decoder-only --adv-weight:
    the discriminator learns to tell real frames from decoded ones (its loss falls below a blind
    one's), the decoder feels it only from --adv-start, the encoder stays bitwise, the weight is
    recorded; a negative weight is refused."""
    import csv

    from hma_ros.cli.main import main as hma
    from hma_ros.train.adversarial import (
        PatchDiscriminator,
        adaptive_weight,
        discriminator_loss,
        generator_loss,
    )

    disc = PatchDiscriminator()
    assert disc(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 8, 8)
    convs = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.GroupNorm) else m for m in disc.net])
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    convs(x)[0, 0, 4, 4].backward()  # the convolutions' receptive field (the norms' statistics are the frame's)
    cols = torch.nonzero(x.grad.abs().sum((0, 1, 2)) > 0).flatten()
    rows = torch.nonzero(x.grad.abs().sum((0, 1, 3)) > 0).flatten()
    assert int(cols[-1] - cols[0]) + 1 == 38 and int(rows[-1] - rows[0]) + 1 == 38
    z = torch.zeros(2, 1, 8, 8)
    assert float(discriminator_loss(z, z)) == 2.0 and float(discriminator_loss(z + 1, z - 1)) == 0.0
    assert float(generator_loss(z + 0.5)) == -0.5
    w = torch.ones(3, 4, requires_grad=True)
    assert abs(float(adaptive_weight((2 * w).sum(), (3 * w).sum(), w)) - 2 * 12 ** 0.5 / (3 * 12 ** 0.5 + 1e-4)) < 1e-6
    assert hma(["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(small_data / "tok"),
                "--decoder-only", "--adv-weight", "0.5", "--adv-start", "40", "--max-steps", "120", "--batch-size", "8",
                "--lr", "3e-4", "--out", str(tmp_path / "adv")]) == 0
    cfg, state = load_checkpoint(tmp_path / "adv")
    assert cfg["training"]["adv_weight"] == 0.5 and cfg["training"]["adv_start"] == 40
    assert not any(k.startswith("disc") for k in state)  # the discriminator is training-only
    _, tstate = load_checkpoint(small_data / "tok")
    assert all(torch.equal(tstate[k], state[k]) for k in tstate if k.startswith("tokenizer.encoder."))
    log = list(csv.DictReader(open(tmp_path / "adv" / "train_log.csv")))
    assert [r["adv_g"] == "" for r in log] == [int(r["step"]) <= 40 for r in log]  # the decoder feels it from step 40
    assert all(float(r["adv_w"]) > 0 for r in log if int(r["step"]) > 40)
    assert np.mean([float(r["adv_d"]) for r in log[-2:]]) < 1.8, log
    capsys.readouterr()
    assert hma(["train-tokenizer", "--data", str(small_data / "pusht"), "--init", str(small_data / "tok"),
                "--decoder-only", "--adv-weight", "-1", "--max-steps", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "--adv-weight -1.0 --adv-start 200: both >= 0" in capsys.readouterr().err


def test_policy_eval_runs_act_in_closed_loop_in_gym_pusht_against_random(small_data, tmp_path, capsys):
    import json

    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "2", *TINY]) == 0
    assert hma(["policy-eval", "--ckpt", str(tmp_path / "m"), "--episodes", "2", "--seconds", "2", "--scripted",
                "--json", str(tmp_path / "pe.json"), "--gif", str(tmp_path / "pe.gif")]) == 0
    res = json.loads((tmp_path / "pe.json").read_text())
    assert set(res["arms"]) == {"model act()", "random", "scripted"}
    for arm in res["arms"].values():
        assert 0.0 <= arm["coverage_max"]["mean"] <= 1.0 and arm["coverage_end"]["mean"] <= arm["coverage_max"]["mean"]
        assert arm["success_max"]["mean"] in (0.0, 0.5, 1.0)
    assert res["act_ms_p50"] > 0 and res["seeds"].startswith("1000000")
    assert "| model act() |" in capsys.readouterr().out
    assert (tmp_path / "pe.gif").stat().st_size > 0


def test_loading_with_an_unknown_embodiment_is_a_clear_error(small_data, tmp_path):
    from hma_ros.cli.main import main as hma

    assert hma(["train", "--data", str(small_data / "pusht"), "--tokenizer", str(small_data / "tok"),
                "--out", str(tmp_path / "m"), "--steps", "1", *TINY]) == 0
    with pytest.raises(ValueError, match="has no embodiment 'cheetah'"):
        WorldModel.load(tmp_path / "m", "cheetah")
    with pytest.raises(CheckpointError, match="tokenizer-only"):
        WorldModel.load(small_data / "tok", "pusht")




def test_residual_rendering_keeps_real_pixels_where_nothing_changes_and_decoded_ones_where_it_does():
    from hma_ros.runtime.world_model import render_residual

    real = torch.full((8, 8, 3), 120, dtype=torch.uint8)
    recon = torch.full((8, 8, 3), 110, dtype=torch.uint8)  # the tokenizer's 10-level error
    decoded = recon.clone()[None].repeat(2, 1, 1, 1)
    decoded[1, :4] = 250  # frame 1: top half predicted to change a lot
    out = render_residual(decoded, real, recon, tau=8.0)
    assert torch.equal(out[0], real)  # unchanged prediction -> the real frame exactly
    assert torch.equal(out[1, 4:], real[4:])
    assert (out[1, :4].int() - 250).abs().max() <= 1  # changed pixels: the decoding (gate ~ e^-17.5)


def test_world_model_render_modes_tokens_vs_residual():
    tok, dyn, config = tiny()
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (3, 5, 2))
    outs = {}
    for render in ("tokens", "residual"):
        wm = WorldModel(tok, dyn, config, "pusht", seed=3, render=render)
        wm.observe(frame)
        outs[render] = wm.imagine(fut)
        assert wm._newest is not None and torch.equal(wm._newest[0], torch.from_numpy(frame))
    assert outs["tokens"].shape == outs["residual"].shape == (3, 32, 32, 3)
    assert not np.array_equal(outs["tokens"], outs["residual"])  # random-noise frames: a real residual
    with pytest.raises(ValueError, match="render must be one of"):
        WorldModel(tok, dyn, config, "pusht", render="blurry")


@pytest.mark.parametrize("planned,action_points,factor_ar", [(False, 0, 0), (True, 0, 0), (False, 3, 0),
                                                             (True, 3, 0), (False, 0, 8)])
def test_cached_imagination_equals_the_recomputed_window_after_100_observed_steps(planned, action_points,
                                                                                  factor_ar):
    """One definition of the temporal context: after 100 observed steps (far past the window),
    imagining 2 windows' worth of frames through the KV cache gives exactly the frames of the
    reference path that recomputes the whole window at every unmasking step -- with given
    actions and with the policy head planning them (and with an action map: planned chunks get
    none; with intra-token autoregression). Positions stay within the window."""
    tok, dyn, config = tiny(action_points=action_points, factor_ar=factor_ar)
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 255, (100, 32, 32, 3), dtype=np.uint8)
    chunks = rng.uniform(0, 512, (100, 5, 2))
    fut = None if planned else rng.uniform(0, 512, (2 * dyn.cfg.window, 5, 2))
    out, acts = [], []
    # the dynamic KV cache, the fixed-shape one (what CUDA graphs replay; eager here), the reference
    for use_cache, graphs in ((True, False), (True, True), (False, False)):
        wm = WorldModel(tok, dyn, config, "pusht", seed=5, use_cache=use_cache, temperature=0.0, graphs=graphs)
        for t in range(100):
            wm.observe(frames[t], chunks[t - 1] if t else None)
        out.append(wm.imagine(fut, horizon=2 * dyn.cfg.window))
        acts.append(wm.act())
    assert out[0].shape == (2 * dyn.cfg.window, 32, 32, 3)
    for path in (1, 2):
        for k in range(len(out[0])):  # every frame identical
            np.testing.assert_array_equal(out[path][k], out[0][k], err_msg=f"path {path}, frame {k}")
        np.testing.assert_allclose(acts[path], acts[0], rtol=1e-4, atol=1e-3)


def test_world_model_rollouts_are_identical_with_and_without_the_kv_cache():
    tok, dyn, config = tiny()
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    fut = rng.uniform(0, 512, (4, 5, 2))  # 2 observed + 4 imagined = the 6-slot window
    out = []
    for use_cache in (True, False):
        wm = WorldModel(tok, dyn, config, "pusht", seed=11, use_cache=use_cache)
        for t, f in enumerate(frames):
            wm.observe(f, fut[0] if t else None)
        out.append(wm.imagine(fut))
    np.testing.assert_array_equal(out[0], out[1])


@pytest.mark.parametrize("use_cache,graphs", [(True, False), (False, False), (True, True)])
def test_many_futures_at_once_are_each_future_imagined_alone(use_cache, graphs):
    """imagine() with (B, K, stride, dim) chunks imagines B futures from the same history in one
    batched call per unmasking step (planning): with one unmasking pass and greedy decoding (no
    random order or draw to differ), future b's frames are exactly those imagine() gives for it
    alone -- across a window restart (K past the window), with an action map."""
    tok, dyn, config = tiny(action_points=2)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    futs = rng.uniform(0, 512, (3, dyn.cfg.window + 2, 5, 2))
    wm = WorldModel(tok, dyn, config, "pusht", seed=1, mask_steps=1, use_cache=use_cache, graphs=graphs)
    for t, f in enumerate(frames):
        wm.observe(f, futs[0, 0] if t else None)
    many = wm.imagine(futs)
    assert many.shape == (3, dyn.cfg.window + 2, 32, 32, 3)
    for b in range(3):
        np.testing.assert_array_equal(many[b], wm.imagine(futs[b]), err_msg=f"future {b}")
    assert not np.array_equal(many[0], many[1])  # the futures really differ
    wm.where_temperature, wm.where_tokens = 1.0, 4  # decoding by the map ranks each future's own tokens
    assert wm.imagine(futs[:, :3]).shape == (3, 3, 32, 32, 3)
    with pytest.raises(ValueError, match=r"future chunk 1 of future 2"):
        bad = futs.copy()
        bad[2, 1, 0, 0] = np.nan
        wm.imagine(bad)
    with pytest.raises(ValueError, match=r"\(B, K, 5, 2\)"):
        wm.imagine(futs[:, :0])


def test_every_shipped_checkpoint_has_a_card_and_imagines_for_each_embodiment_it_knows():
    """models/*: fp16 safetensors + config + MODEL_CARD.md; each dynamics checkpoint loads by name
    (as a node's `checkpoint:` parameter does) and imagines for every embodiment it was trained on."""
    from pathlib import Path

    from hma_ros import paths

    root = Path(__file__).resolve().parents[1] / "models"
    found = sorted(d.name for d in root.iterdir() if (d / "config.yaml").is_file())
    assert {"hma_discrete_small", "hma_discrete_moves", "hma_mar_small", "tokenizer_moves"} <= set(found)
    for name in found:
        assert (root / name / "MODEL_CARD.md").is_file(), name
        config, _ = load_checkpoint(root / name)
        from safetensors import safe_open

        with safe_open(str(root / name / "model.safetensors"), "pt") as f:  # stored as shipped: fp16
            assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64", "BOOL"}, name
        if "dynamics" not in config:
            continue
        for emb in config["embodiments"]:
            assert paths.checkpoint(name).resolve() == (root / name).resolve()
            wm = WorldModel.load(paths.checkpoint(name), emb)
            wm.observe(np.zeros((*wm.image_size, 3), np.uint8))
            mean = np.asarray(config["embodiments"][emb]["stats"]["mean"], np.float32)
            frames = wm.imagine(np.broadcast_to(mean, (2, wm.stride, wm.action_dim)))
            assert frames.shape == (2, *wm.image_size, 3) and frames.dtype == np.uint8, (name, emb)


def test_mixed_precision_runs_the_same_code_path_and_stays_close_to_fp32(small_data):
    """precision bf16/fp16 autocasts the model calls (the GPU path) through the same code as fp32:
    on the shipped model and real PushT frames (the simulator's), the imagined frames stay within
    40 dB PSNR of fp32's, and a bad precision is a clear error."""
    from pathlib import Path

    from hma_ros.data.dataset import Dataset

    ckpt = Path(__file__).resolve().parents[1] / "models" / "hma_discrete_small"
    ds = Dataset(small_data / "pusht")
    w = ds.window(ds.episodes[0][0], 8)
    out = {}
    for precision in ("fp32", "bf16", "fp16"):
        wm = WorldModel.load(ckpt, "pusht", precision=precision, render="tokens")
        for frame, chunk in w.steps(4):
            wm.observe(frame, chunk)
        out[precision] = wm.imagine(w.actions[3:7]).astype(np.float64)
        assert wm.act().shape == (5, 2)
    for precision in ("bf16", "fp16"):
        mse = np.mean((out[precision] - out["fp32"]) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 40, precision
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        WorldModel.load(ckpt, "pusht", precision="int4")


def test_bench_runs_any_geometry_with_random_weights_and_counts_flops(tmp_path, capsys):
    import json

    from hma_ros.cli.main import main as hma

    g = "layers=2,d=32,heads=2,grid=4,res=32,levels=4-3,window=6,prompt=2"
    assert hma(["bench", "--geometry", g, "--repeats", "2", "--horizon", "4", "--threads", "1",
                "--json", str(tmp_path / "b.json")]) == 0
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["geometry"] == g and res["layers"] == 2 and res["d_model"] == 32 and res["tokens_per_frame"] == 16
    assert res["kv_cache"]["imagined_fps"] > 0 and res["matmul_peak_gflops"] > 0
    assert 0 < res["gflops_per_frame"] < 1 and 0 < res["share_of_matmul_peak"] < 1
    # many futures at once: the same work per imagined frame (one real frame's decode is shared)
    assert hma(["bench", "--geometry", g, "--repeats", "2", "--horizon", "4", "--threads", "1", "--batch", "3",
                "--json", str(tmp_path / "b3.json")]) == 0
    res3 = json.loads((tmp_path / "b3.json").read_text())
    assert res3["batch"] == 3 and res3["kv_cache"]["imagined_fps"] > 0
    assert res3["gflops_per_frame"] == pytest.approx(res["gflops_per_frame"], rel=0.2)
    assert res3["gflops_per_frame"] < res["gflops_per_frame"]
    assert hma(["bench", "--geometry", g, "--batch", "0"]) == 2
    assert "--batch must be >= 1" in capsys.readouterr().err
    assert hma(["bench", "--geometry", "layers=2,width=9"]) == 2
    assert "keys are layers, d, heads" in capsys.readouterr().err
    assert hma(["bench"]) == 2  # neither --ckpt nor --geometry


def test_resolve_device_accepts_cpu_and_refuses_what_is_not_a_usable_device():
    """One device check for hma train, train-tokenizer, bench, the WorldModel and the nodes:
    the message names the setting and what to use instead."""
    import torch

    from hma_ros.runtime.device import DeviceError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match=r"--device 'tpu': not a device name; use cpu or cuda"):
        resolve_device("tpu", "--device")
    with pytest.raises(DeviceError, match="only cpu and cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="device cuda: no CUDA device is visible to torch here"):
            resolve_device("cuda")
    else:
        with pytest.raises(DeviceError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_worst_patch_loss_ranks_a_lost_small_object_above_the_same_error_spread_thin():
    """Hard-frame mining's score: a frame whose one small disc is dropped (PushT's agent, ~3x3 px
    of 64x64) has a *lower* frame-mean loss than a frame drawn slightly off everywhere, yet the
    larger worst-patch loss -- so mining finds the frames a mean would hide."""
    from hma_ros.model.tokenizer import tokenizer_loss, worst_patch_loss

    target = torch.ones(2, 3, 64, 64)  # white frames (values in [-1, 1])
    target[:, :, 30:33, 40:43] = torch.tensor([-0.6, -0.2, 0.9])[:, None, None]  # a blue disc
    lost = target.clone()
    lost[0, :, 30:33, 40:43] = 1.0  # frame 0: the disc is gone, the rest exact
    lost[1] = target[1] - 0.02  # frame 1: every pixel a little off
    per_frame = [float(tokenizer_loss(lost[i:i + 1], target[i:i + 1])) for i in range(2)]
    assert per_frame[0] < per_frame[1]
    worst = worst_patch_loss(lost, target, patch=8)
    assert worst[0] > 10 * worst[1]
    # moving pixels weigh in as in training: the same drop scores higher where the disc moved
    moving = torch.zeros(2, 64, 64, dtype=torch.bool)
    moving[:, 30:33, 40:43] = True
    assert float(worst_patch_loss(lost, target, 8, moving, 20.0)[0]) > float(worst[0]) * 5


def test_hard_frame_mining_draws_from_the_worst_drawn_frames(small_data, tmp_path, capsys, monkeypatch):
    """rank_hard_frames keeps, per embodiment, the training frames with the largest worst-patch
    loss under the current model; `hma train-tokenizer --hard-share` trains with them and records
    the share; a share outside [0, 1) is refused with what to pass."""
    import hma_ros.train.tokenizer as T
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import find_datasets
    from hma_ros.model.tokenizer import worst_patch_loss
    from hma_ros.runtime.world_model import build_models

    cfg, state = load_checkpoint(small_data / "tok")
    tok, _ = build_models({"tokenizer": cfg["tokenizer"]}, state, "tok")
    ds = find_datasets([small_data])
    idx = {n: np.arange(len(d.arrays["frames"]))[np.asarray(d.arrays["frame_mask"]).astype(bool)] for n, d in ds.items()}
    monkeypatch.setattr(T, "HARD_POOL", 10_000)
    monkeypatch.setattr(T, "HARD_TOP", 5)
    hard = T.rank_hard_frames(tok, ds, idx, None, T.TokenizerTraining(data=[], out=""), np.random.default_rng(0),
                              "cpu")
    assert set(hard) == {"pusht", "reacher"}
    with torch.no_grad():
        x = torch.from_numpy(np.array(ds["pusht"].arrays["frames"])[idx["pusht"]])
        scores = worst_patch_loss(*tok(x), patch=cfg["tokenizer"]["resolution"] // cfg["tokenizer"]["grid"]).numpy()
    assert sorted(hard["pusht"].tolist()) == sorted(idx["pusht"][np.argsort(scores)[-5:]].tolist())
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "h"), "--init",
                str(small_data / "tok"), "--hard-share", "0.5", "--hard-every", "2", "--motion-weight", "5",
                "--max-steps", "3", "--batch-size", "4"]) == 0
    assert load_checkpoint(tmp_path / "h")[0]["training"]["hard_share"] == 0.5
    capsys.readouterr()
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "h2"), "--hard-share", "1",
                "--max-steps", "1"]) == 2
    assert "--hard-share 1.0: a share of the batch in [0, 1)" in capsys.readouterr().err


def test_local_encoder_codes_a_token_from_its_own_patch_and_continues_a_conv_tokenizer(small_data, tmp_path, capsys):
    """TokenizerConfig(encoder="local"): paint anything outside one 8x8 patch and that token's code
    stays the same, while the conv encoder's flips; `train-tokenizer --encoder local --init` carries
    the conv tokenizer's conv and decoder weights (not its GroupNorms) and records the encoder;
    --decoder-only with another encoder is refused (the code would change)."""
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset

    torch.manual_seed(0)
    frames = torch.from_numpy(np.array(Dataset(small_data / "pusht").arrays["frames"][:4]))
    painted = frames.clone()
    painted[:, :, 16:] = 255 - painted[:, :, 16:]  # every column from the third token on
    painted[:, 8:, :16] = 0  # and every row below the first token
    flips = {}
    for kind in ("conv", "local"):
        tok = FSQTokenizer(TokenizerConfig(channels=(16, 16, 16), encoder=kind)).eval()
        with torch.no_grad():
            tok.encoder[-1].weight.mul_(100)  # spread the untrained latents over the FSQ levels
            a, b = tok.encode(frames), tok.encode(painted)
        kept = slice(0, 2)  # tokens (0, 0) and (0, 1): their patches were not painted
        flips[kind] = int((a[:, kept] != b[:, kept]).any(-1).sum())
        assert (a[:, 2:] != b[:, 2:]).any()  # painted tokens change code for both
        assert tok.decode(a).shape == frames.shape
    assert flips["local"] == 0 and flips["conv"] > 0, flips
    with pytest.raises(ValueError, match="encoder must be 'conv' or 'local'"):
        TokenizerConfig(encoder="patch")
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "loc"), "--init",
                str(small_data / "tok"), "--encoder", "local", "--max-steps", "2", "--batch-size", "2"]) == 0
    src, sstate = load_checkpoint(small_data / "tok")
    cfg, state = load_checkpoint(tmp_path / "loc")
    assert src["tokenizer"].get("encoder", "conv") == "conv" and cfg["tokenizer"]["encoder"] == "local"
    norms = [k for k in sstate if k.startswith("tokenizer.encoder.") and k not in state]
    assert norms and all(sstate[k].dim() == 1 for k in norms)  # only GroupNorm weights and biases stay behind
    convs = [k for k in sstate if k.startswith("tokenizer.encoder.") and sstate[k].dim() == 4]
    assert convs and all(k in state for k in convs)
    capsys.readouterr()
    assert hma(["train-tokenizer", "--data", str(small_data), "--out", str(tmp_path / "bad"), "--init",
                str(small_data / "tok"), "--encoder", "local", "--decoder-only", "--max-steps", "1"]) == 2
    assert "--decoder-only keeps the --init tokenizer's encoder (conv)" in capsys.readouterr().err
