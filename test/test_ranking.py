"""Ranking policies in the learned simulator (paper Sec. 5.3), labelled automatically: gym-pusht's
coverage from a pose, the PushT judge that reads the state off frames, the agreement statistics,
the graded frame policies, and `hma policy-eval --rank` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hma_ros.data.images import ImageSpec
from hma_ros.evaluation.pusht_judge import JudgeError, coverage, load_judge, save_judge
from hma_ros.evaluation.ranking import POLICIES, agreement, mmrv, pearson, score_error, spearman
from hma_ros.evaluation.tracking import goal_cover

ROOT = Path(__file__).resolve().parents[1]
JUDGE = ROOT / "models" / "pusht_judge"


@pytest.fixture(scope="module")
def sim():
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from hma_ros.data.sims import make_sim

    s = make_sim("pusht")
    yield s
    s.close()


def test_coverage_from_the_pose_is_gym_pusht_coverage_also_right_after_reset(sim):
    from hma_ros.data.sims import Policy

    covered_at_reset = None
    for seed in range(400):  # some initial poses already overlap the goal
        sim.reset(seed)
        if sim.state()["coverage"] > 0:
            covered_at_reset = seed
            break
    assert covered_at_reset is not None
    st = sim.state()
    assert st["coverage"] == pytest.approx(sim.u._get_coverage(), abs=1e-12)  # not 0 before the first step
    assert coverage(st["block_x"], st["block_y"], st["block_angle"]) == pytest.approx(st["coverage"], abs=1e-9)
    rng = np.random.default_rng(0)
    sim.reset(2)
    pol = Policy(sim, "expert", rng)
    seen = []
    for _ in range(140):
        sim.step(pol())
        st = sim.state()
        seen.append((coverage(st["block_x"], st["block_y"], st["block_angle"]), st["coverage"]))
    seen = np.array(seen)
    assert seen[:, 1].max() > 0.1  # the scripted pusher got the T onto the goal
    np.testing.assert_allclose(seen[:, 0], seen[:, 1], atol=1e-9)
    assert coverage(256.0, 256.0, np.pi / 4) == pytest.approx(1.0)


def test_the_pose_pusher_solves_pusht_where_the_waypoint_pusher_does_not(sim):
    """From starts with the T off the goal, 10 s on the true state: the controller the graded
    policies are built on covers most of the goal; gen-data's waypoint pusher barely touches it."""
    from hma_ros.data.sims import PushTPosePusher, PushTPusher
    from hma_ros.evaluation.ranking import off_goal_seeds

    seeds = off_goal_seeds(sim, 3, 1_000_000)
    pose = PushTPosePusher()
    scores = {"pose": [], "waypoint": []}
    for seed in seeds:
        for kind in scores:
            sim.reset(seed)
            assert sim.state()["coverage"] == 0.0
            pose.reset()
            ctl = pose if kind == "pose" else PushTPusher()
            rng, best = np.random.default_rng(0), 0.0
            for _ in range(100):
                st = sim.state()
                block = [st["block_x"], st["block_y"], st["block_angle"]]
                sim.step(ctl([st["agent_x"], st["agent_y"]], block if kind == "pose" else block[:2],
                             (256.0, 256.0, np.pi / 4) if kind == "pose" else (256.0, 256.0), rng))
                best = max(best, sim.state()["coverage"])
            scores[kind].append(best)
    # an episode is a function of its own inputs: replaying the first one after the others gives
    # the same score (the planner's simulator is restarted per episode)
    sim.reset(seeds[0])
    pose.reset()
    again = 0.0
    for _ in range(100):
        st = sim.state()
        sim.step(pose([st["agent_x"], st["agent_y"]], [st["block_x"], st["block_y"], st["block_angle"]],
                      (256.0, 256.0, np.pi / 4)))
        again = max(again, sim.state()["coverage"])
    assert again == scores["pose"][0]
    pose.close()
    assert np.mean(scores["pose"]) > 0.5 and min(scores["pose"]) > 0.3
    assert np.mean(scores["waypoint"]) < 0.25


def test_agreement_statistics_on_known_values():
    real = np.array([0.1, 0.2, 0.5, 0.6])
    assert pearson(real, 2 * real + 1) == pytest.approx(1.0)
    assert spearman(real, real ** 3) == pytest.approx(1.0)  # monotone, not linear
    assert spearman(real, -real) == pytest.approx(-1.0)
    assert mmrv(real, real ** 3) == 0.0
    # the simulator swaps policies 0 and 1 (0.1 apart) and 2 and 3 (0.1 apart): each of the four
    # has a worst violation of 0.1
    assert mmrv(real, np.array([0.2, 0.1, 0.6, 0.5])) == pytest.approx(0.1)
    # one policy (0.1) ranked above the best (0.6): it violates 0.5, the others their gap to it
    assert mmrv(real, np.array([0.9, 0.2, 0.5, 0.6])) == pytest.approx((0.5 + 0.1 + 0.4 + 0.5) / 4)
    rng = np.random.default_rng(0)
    per_ep_real = real[:, None] + rng.normal(0, 0.05, (4, 30))
    # the score error sees what the correlations cannot: a simulator 0.2 optimistic for everyone
    assert score_error(real, real + 0.2) == pytest.approx(0.2) and pearson(real, real + 0.2) == pytest.approx(1.0)
    assert score_error(real, np.array([0.2, 0.1, 0.6, 0.5])) == pytest.approx(0.1)
    a = agreement(per_ep_real, per_ep_real + 0.01, n_boot=300)
    assert a["pearson"]["value"] == pytest.approx(1.0) and a["mmrv"]["value"] == 0.0
    assert a["score_error"]["value"] == pytest.approx(0.01) and a["score_error"]["ci95"] == pytest.approx([0.01, 0.01])
    assert a["pearson"]["ci95"][0] <= 1.0 and a["spearman"]["ci95"][1] == pytest.approx(1.0)
    noisy = agreement(per_ep_real, rng.normal(0.3, 0.3, (4, 30)), n_boot=300)
    lo, hi = noisy["pearson"]["ci95"]
    assert hi - lo > 0.2  # an unrelated simulator: wide interval


def test_graded_policies_are_deterministic_per_seed_and_noise_grows(sim):
    judge = load_judge(JUDGE)
    spec = ImageSpec(size=(64, 64))
    sim.reset(1_000_000)
    frame = spec.prepare(sim.render())
    chunks = {}
    for pol in POLICIES:
        outs = []
        for _ in range(2):
            pol.start(judge, 5, sim.info, np.random.default_rng(7))
            outs.append(pol(frame))
        np.testing.assert_array_equal(outs[0], outs[1])  # same seed, same frame -> same commands
        assert outs[0].shape == (5, 2) and np.all((outs[0] >= 0) & (outs[0] <= 512))
        chunks[pol.name] = outs[0]
    clean = chunks["pose pusher"]
    dev = [np.abs(chunks[p.name] - clean).mean() for p in POLICIES if p.kind == "pose" and p.noise]
    assert len(dev) == 2 and dev == sorted(dev) and dev[0] > 10  # graded: more noise, further from the plan


def test_the_shipped_judge_reads_the_state_off_fresh_simulator_frames(sim):
    """Frames no dataset holds (seeds 900+): agent and block within a few pixels, coverage close."""
    from pusht_frames import collect

    judge = load_judge(JUDGE)
    frames, states = collect(sim, 900, episodes=6, steps=40, every=4)
    truth = [[st[k] for k in ("agent_x", "agent_y", "block_x", "block_y", "block_angle", "coverage")] for st in states]
    truth = np.array(truth)
    est = judge.estimate(frames)
    px = 64 / 512
    agent_err = np.linalg.norm(est["agent"] - truth[:, :2], axis=1) * px
    block_err = np.linalg.norm(est["block"][:, :2] - truth[:, 2:4], axis=1) * px
    ang = np.degrees(np.abs((est["block"][:, 2] - truth[:, 4] + np.pi) % (2 * np.pi) - np.pi))
    assert np.median(agent_err) < 1.0 and np.median(block_err) < 1.0
    assert np.median(ang) < 5.0
    assert np.abs(est["coverage"] - truth[:, 5]).mean() < 0.03


def test_t_intact_tells_a_whole_t_from_a_dissolved_one(sim):
    from hma_ros.evaluation.ranking import t_intact
    from hma_ros.evaluation.tracking import block_mask

    spec = ImageSpec(size=(64, 64))
    sim.reset(1_000_003)
    real = np.stack([spec.prepare(sim.render()) for _ in range(3)])
    assert t_intact(real, real[0]) == 1.0
    gone = real.copy()
    gone[1][block_mask(gone[1])] = 255  # the T erased from one frame: what a dissolving rollout shows
    assert t_intact(gone, real[0]) == pytest.approx(2 / 3)


def test_posed_frames_can_show_an_empty_table_and_label_it_so():
    """posed_frames(absent=...): gym-pusht's own renderer with the block moved off the table --
    no T pixels, the goal and the agent still drawn -- labelled with an unknown pose and no coverage."""
    from hma_ros.evaluation.pusht_judge import posed_frames
    from hma_ros.evaluation.tracking import block_mask, goal_mask

    frames, states, keys = posed_frames(24, seed=3, progress=False, absent=0.5)
    gone = np.isnan(states[:, keys.index("block_x")])
    assert 4 <= gone.sum() <= 20  # about half
    assert (block_mask(frames[gone]).sum(axis=(1, 2)) <= 3).all()  # a T is ~120 pixels; the agent's rim may tint 1-2
    assert (block_mask(frames[~gone]).sum(axis=(1, 2)) > 50).all()
    assert (states[gone, keys.index("coverage")] == 0).all()
    assert np.isfinite(states[:, keys.index("agent_x")]).all()  # the agent is still there and known
    green = (frames[gone][..., 1].astype(int) - frames[gone][..., 0]) > 40  # the light-green goal still drawn
    assert (green & goal_mask(64)).sum(axis=(1, 2)).min() > 0.8 * goal_mask(64).sum()


def test_a_judge_trained_with_empty_tables_says_no_t_and_reads_no_coverage_there(tmp_path):
    """A judge that saw empty tables in training calls them empty and reads coverage 0 there, where
    a pose regressor reads a pose into the empty table (the shipped version 1: any pose it likes);
    it keeps reading frames with a T. Older judge files (no visibility) still load."""
    from hma_ros.evaluation.pusht_judge import (
        PushTJudge,
        empty_table_errors,
        posed_frames,
        targets,
        train_judge,
    )

    frames, states, keys = posed_frames(300, seed=4, progress=False, absent=0.5)
    judge, _ = train_judge(frames, targets(states, keys), steps=150, batch_size=32, lr=2e-3, width=8,
                           progress=False)
    assert judge.visibility and judge.config["visibility"] is True
    test_frames, test_states, _ = posed_frames(60, seed=5, progress=False, absent=0.5)
    gone = np.isnan(test_states[:, keys.index("block_x")])
    est = judge.estimate(test_frames)
    called = est["t_visible"] < 0.5
    assert (called == gone).mean() > 0.95
    assert (est["coverage"][called] == 0).all()
    again = load_judge(save_judge(judge, tmp_path / "v"))
    np.testing.assert_array_equal(again.estimate(test_frames)["t_visible"] < 0.5, called)
    empty = empty_table_errors(again, n=40)
    assert empty["called_empty"] > 0.9 and empty["coverage_mean"] < 0.05
    old = load_judge(save_judge(PushTJudge(64, 8), tmp_path / "old"))  # a version-1 file: six outputs
    assert not old.visibility and "t_visible" not in old.estimate(test_frames[:2])


def test_a_judge_round_trips_through_safetensors_and_a_missing_one_says_what_to_do(tmp_path):
    judge = load_judge(JUDGE)
    path = save_judge(judge, tmp_path / "j")
    again = load_judge(tmp_path / "j")
    x = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(judge.estimate(x)["agent"], again.estimate(x)["agent"])
    assert path.read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle
    with pytest.raises(JudgeError, match="hma train-judge"):
        load_judge(tmp_path / "nothing")
    with pytest.raises(JudgeError, match="reads 64x64"):
        judge.estimate(np.zeros((32, 32, 3), np.uint8))


def test_policy_eval_rank_end_to_end_on_the_shipped_model(tmp_path, capsys):
    """The user's command on tiny settings: 2 episodes of 1 s per policy in both worlds."""
    from PIL import Image

    from hma_ros.cli.main import main as hma

    out = tmp_path / "rank.json"
    rc = hma(["policy-eval", "--rank", "--ckpt", str(ROOT / "models" / "hma_discrete_small"), "--judge",
              str(JUDGE), "--episodes", "2", "--seconds", "1", "--threads", "2", "--json", str(out),
              "--plot", str(tmp_path / "rank.png"), "--gif", str(tmp_path / "first.gif"),
              "--frames", str(tmp_path / "rank.npz")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "pearson" in printed and "learned simulator vs gym-pusht" in printed
    res = json.loads(out.read_text())
    assert list(res["policies"]) == [p.name for p in POLICIES]
    assert res["native_steps"] == 10 and res["model_steps"] == 2
    for raw in res["episodes_raw"].values():
        assert len(raw["real_sim"]) == 2 and all(0.0 <= v <= 1.0 for v in raw["learned_judge"])
    assert set(res["learned_vs_real"]) == {"pearson", "spearman", "mmrv", "score_error"}
    assert set(res["learned_pixels_vs_real"]) == {"pearson", "spearman", "mmrv", "score_error"}
    assert "learned sim (pixels)" in printed
    assert all(0.0 <= p["learned_t_intact"]["mean"] <= 1.0 for p in res["policies"].values())
    assert all(0.0 <= p["learned_t_shaped"]["mean"] <= 1.0 for p in res["policies"].values())
    assert "imagined T a whole T" in printed
    assert res["wall_s_per_episode"]["learned"] > 0
    assert Image.open(tmp_path / "rank.png").size == (480, 480)
    assert res["prompt_frames"] == 4  # the model's prompt: 1.5 s of the robot standing still, real in both worlds
    gif = Image.open(tmp_path / "first.gif")
    assert gif.size == (128, 64) and gif.n_frames == 3  # real | imagined, the last real frame + 2 steps
    first = np.asarray(gif.convert("RGB"))
    np.testing.assert_array_equal(first[:, :64], first[:, 64:])  # both worlds start from the same real frame
    kept = np.load(tmp_path / "rank.npz")  # --frames: every episode, both worlds, for offline scoring
    assert sorted(kept.files) == sorted(f"{p.name}/{w}" for p in POLICIES for w in ("real", "imagined"))
    for p in POLICIES:
        real, imagined = kept[f"{p.name}/real"], kept[f"{p.name}/imagined"]
        assert real.shape == imagined.shape == (2, 3, 64, 64, 3) and real.dtype == np.uint8
        np.testing.assert_array_equal(real[:, 0], imagined[:, 0])  # the same real start in both worlds
    # the frames score as the run did: the judge's max coverage on them is the JSON's
    judge = load_judge(JUDGE)
    for p in POLICIES:
        for world, key in (("real", "real_judge"), ("imagined", "learned_judge")):
            cov = judge.estimate(kept[f"{p.name}/{world}"].reshape(-1, 64, 64, 3))["coverage"].reshape(2, 3)
            np.testing.assert_allclose(cov.max(1), res["episodes_raw"][p.name][key], atol=1e-6)
        np.testing.assert_allclose(goal_cover(kept[f"{p.name}/imagined"]).max(1),
                                   res["episodes_raw"][p.name]["learned_pixels"], atol=1e-12)
    rescored = tmp_path / "rescored.json"
    stem = str(tmp_path / "rank")
    assert subprocess.run([sys.executable, str(ROOT / "scripts" / "rank_frames.py"), stem, "--judge", str(JUDGE),
                           "--json", str(rescored)], capture_output=True, text=True, check=True).returncode == 0
    again = json.loads(rescored.read_text())
    np.testing.assert_allclose(again["readers"]["judge"]["imagined"],
                               [np.mean(res["episodes_raw"][p.name]["learned_judge"]) for p in POLICIES], atol=1e-6)
    assert len(again["readers"]["pixels"]["curve_imagined"][0]) == 3  # per model step, the start included


def test_policy_eval_rank_refuses_without_a_judge(capsys):
    from hma_ros.cli.main import main as hma

    rc = hma(["policy-eval", "--rank", "--ckpt", str(ROOT / "models" / "hma_discrete_small")])
    assert rc == 2
    assert "--judge" in capsys.readouterr().err


def test_a_bc_policy_learns_the_pose_pushers_chunks_and_is_ranked_from_pixels(tmp_path, capsys):
    """hma train-bc on pose-pusher demonstrations: the trained policy's chunks are closer to the
    demonstrations than its 1-step checkpoint's; it acts in gym-pusht from frames alone; and
    `hma policy-eval --rank --bc` grades it beside the scripted policies."""
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset
    from hma_ros.evaluation.bc import bc_examples, load_bc

    assert hma(["gen-data", "--out", str(tmp_path / "d"), "--embodiments", "pusht", "--episodes", "3",
                "--seconds", "4", "--workers", "1", "--policies", "pose=1"]) == 0
    assert hma(["train-bc", "--data", str(tmp_path / "d" / "pusht"), "--out", str(tmp_path / "bc"), "--steps", "200",
                "--batch-size", "32", "--save-at", "1", "--threads", "2", "--eval-episodes", "1", "--eval-seconds", "1",
                "--json", str(tmp_path / "bc.json")]) == 0
    ev = json.loads((tmp_path / "bc.json").read_text())  # the final policy in gym-pusht, from pixels
    assert ev["episodes"] == 1 and len(ev["max_coverage_raw"]) == 1 and ev["examples"] == 3 * 8
    assert all(0.0 <= c <= 1.0 for c in ev["max_coverage_raw"])
    frames, chunks = bc_examples(Dataset(tmp_path / "d" / "pusht"))
    assert len(bc_examples(Dataset(tmp_path / "d" / "pusht"), episodes=1)[0]) == 8  # PATH:N takes N episodes
    err = {}
    for s in (1, 200):
        pol = load_bc(tmp_path / "bc" / f"step_{s}.safetensors")
        err[s] = np.mean([np.abs(pol.act(f) - c).mean() for f, c in zip(frames, chunks, strict=True)])
    assert err[200] < 0.5 * err[1], err  # it fits its demonstrations (world units of 512)
    bc = str(tmp_path / "bc" / "step_200.safetensors")
    out = tmp_path / "rank.json"
    assert hma(["policy-eval", "--rank", "--ckpt", str(ROOT / "models" / "hma_discrete_moves"), "--judge", str(JUDGE),
                "--bc", bc, "--episodes", "1", "--seconds", "1", "--threads", "2", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res["policies"])[-1] == "BC bc/step_200" and len(res["policies"]) == len(POLICIES) + 1
    assert hma(["policy-eval", "--rank", "--ckpt", str(ROOT / "models" / "hma_discrete_moves"), "--judge", str(JUDGE),
                "--bc", str(tmp_path / "none.safetensors")]) == 2
    assert "no BC policy here; train one with hma train-bc" in capsys.readouterr().err
    assert hma(["gen-data", "--out", str(tmp_path / "w"), "--embodiments", "pusht", "--episodes", "1",
                "--seconds", "2", "--workers", "1", "--policies", "random=1"]) == 0
    assert hma(["train-bc", "--data", str(tmp_path / "w" / "pusht"), "--out", str(tmp_path / "x")]) == 2
    assert "no episodes driven by pose, pose_noisy (it has random)" in capsys.readouterr().err


def test_pool_rank_pools_runs_over_their_starts_and_refuses_shared_starts(tmp_path):
    """scripts/pool_rank.py: two runs' episodes per policy concatenated give the agreement of the
    concatenated arrays (what one run over all the starts would report); runs that share starts
    are refused, since pooling would count those episodes twice."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    runs, real, sim = [], [], []
    for k in range(2):
        r = rng.uniform(0, 1, (3, 6)) * np.array([[1.0], [0.5], [0.1]])
        s = r + rng.normal(0, 0.05, r.shape)
        real.append(r), sim.append(s)
        runs.append({"checkpoint": "m", "seeds": list(range(10 * k, 10 * k + 6)),
                     "episodes_raw": {n: {"real_sim": r[i].tolist(), "learned_judge": s[i].tolist()}
                                      for i, n in enumerate(names)}})
    paths = []
    for k, r in enumerate(runs):
        paths.append(tmp_path / f"r{k}.json")
        paths[-1].write_text(json.dumps(r))
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(repo / "scripts/pool_rank.py"), *map(str, paths), "--json",
                          str(tmp_path / "pooled.json")], capture_output=True, text=True, cwd=repo)
    assert out.returncode == 0, out.stderr
    pooled = json.loads((tmp_path / "pooled.json").read_text())
    want = agreement(np.concatenate(real, 1), np.concatenate(sim, 1))
    assert pooled["episodes"] == 12
    for k in ("pearson", "spearman", "mmrv", "score_error"):
        assert pooled["learned_vs_real"][k]["value"] == pytest.approx(want[k]["value"])
        assert pooled["learned_vs_real"][k]["ci95"] == pytest.approx(want[k]["ci95"])
    assert pooled["policies"]["b"]["real_sim"]["mean"] == pytest.approx(np.concatenate(real, 1)[1].mean())
    twice = subprocess.run([sys.executable, str(repo / "scripts/pool_rank.py"), str(paths[0]), str(paths[0])],
                           capture_output=True, text=True, cwd=repo)
    assert twice.returncode != 0 and "share episode starts" in twice.stderr
    other = dict(runs[1], checkpoint="n")
    (tmp_path / "other.json").write_text(json.dumps(other))
    mixed = subprocess.run([sys.executable, str(repo / "scripts/pool_rank.py"), str(paths[0]), str(tmp_path / "other.json")],
                           capture_output=True, text=True, cwd=repo)
    assert mixed.returncode != 0 and "different checkpoints" in mixed.stderr


def test_open_world_passes_the_sampling_settings_and_refuses_bad_ones():
    """The learned simulator draws its frames as `hma policy-eval --mask-steps/--mask-order/--temperature`
    say; an order the model cannot use is a clear error, not a crash mid-run."""
    from hma_ros.evaluation.policy import PolicyEvalError, open_world

    wm, emb, sim = open_world(str(ROOT / "models" / "hma_discrete_moves"), "pusht", 1.0, 4, "confidence")
    sim.close()
    assert (wm.mask_steps, wm.mask_order, wm.temperature) == (4, "confidence", 1.0)
    with pytest.raises(PolicyEvalError, match="mask_order"):
        open_world(str(ROOT / "models" / "hma_discrete_moves"), "pusht", 0.0, 2, "sideways")


def test_a_token_loop_carries_the_drawn_tokens_forward_not_the_frame_encoded_again(sim):
    """closed_loop(loop="tokens") (`hma policy-eval --rank --loop tokens`): each step is the frame
    imagine() would draw from the same state, and the model's newest step holds the tokens it drew
    (its frame is their decoding), where loop "pixels" encodes the decoded frame again."""
    from hma_ros.evaluation.policy import open_world
    from hma_ros.evaluation.ranking import still_prefix
    from hma_ros.runtime.synth import closed_loop

    wm, emb, s = open_world(str(ROOT / "models" / "hma_discrete_moves"), "pusht")
    s.close()
    wm.render = "tokens"  # frames are exactly the tokens' decoding
    sim.reset(1_000_003)
    prefix = still_prefix(sim, emb.image_spec, wm.stride, 3)
    push = np.repeat(np.array([[250.0, 250.0]], np.float32), wm.stride, 0)  # drive the agent across the table
    a = closed_loop(wm, prefix, lambda f: push, 3, seed=0, loop="tokens")
    drawn = wm.history[-1][0]
    np.testing.assert_array_equal(wm.tok.decode(drawn)[0].cpu().numpy(), a[-1])  # the history holds what it drew
    b = closed_loop(wm, prefix, lambda f: push, 3, seed=0, loop="pixels")
    np.testing.assert_array_equal(a[:2], b[:2])  # the same first step: one imagine() from the real prefix
    assert not np.array_equal(a[2:], b[2:])  # then the round trip through the encoder changes the rollout
    wm.reset(0)
    for frame, chunk in prefix:
        wm.observe(frame, chunk)
    one = wm.imagine(push[None])[0]
    np.testing.assert_array_equal(one, a[1])
    with pytest.raises(ValueError, match="loop must be"):
        closed_loop(wm, prefix, lambda f: push, 1, loop="latent")


def test_replay_goal_replays_a_rankings_episodes_open_loop(tmp_path):
    """scripts/replay_goal.py --rank: the ranking's start, the policy's gym-pusht commands recorded
    and replayed through the model; real and replayed max coverage per policy, paired difference."""
    out = tmp_path / "replay.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "replay_goal.py"), "--rank", "random,waypoint pusher",
                    "--episodes", "2", "--seconds", "1", "--judge", str(JUDGE), "--json", str(out)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    res = json.loads(out.read_text())
    assert list(res["policies"]) == ["random", "waypoint pusher"] and res["episodes"] == 2
    for p in res["policies"].values():
        assert 0.0 <= p["real"]["mean"] <= 1.0 and 0.0 <= p["replayed"]["mean"] <= 1.0
        assert p["replayed_minus_real"]["mean"] == pytest.approx(p["replayed"]["mean"] - p["real"]["mean"])


def test_gen_closed_loop_replays_the_learned_simulators_commands_in_gym_pusht(tmp_path, capsys):
    """`hma gen-closed-loop` on tiny settings: every policy's closed-loop commands in the learned
    simulator, from starts no ranking uses, played in gym-pusht from the same start. The dataset's
    episodes start on that start's real frame, begin with the ranking's standing-still prefix, and
    carry the commands the policy answered to imagined frames; bad policy specs are refused with
    what to write."""
    from hma_ros.cli.main import main as hma
    from hma_ros.data.dataset import Dataset
    from hma_ros.data.sims import make_sim
    from hma_ros.evaluation.policy import SEED_BASE
    from hma_ros.evaluation.ranking import CLOSED_LOOP_BASE, parse_policies

    assert CLOSED_LOOP_BASE - SEED_BASE >= 50 * 10_000  # rank seeds 0..49 start below it
    assert [p.name for p in parse_policies("pose:25,waypoint,random")] == [
        "pose pusher+noise 25", "waypoint pusher", "random"]
    with pytest.raises(ValueError, match="KIND"):
        parse_policies("teleport:3")
    assert hma(["gen-closed-loop", "--ckpt", str(ROOT / "models" / "hma_discrete_small"), "--judge", str(JUDGE),
                "--out", str(tmp_path), "--policies", "pose,waypoint:a"]) == 2
    assert "must be a number" in capsys.readouterr().err
    assert hma(["gen-closed-loop", "--ckpt", str(ROOT / "models" / "hma_discrete_small"), "--judge", str(JUDGE),
                "--out", str(tmp_path), "--seconds", "-1"]) == 2
    assert "--seconds must be > 0" in capsys.readouterr().err

    rc = hma(["gen-closed-loop", "--ckpt", str(ROOT / "models" / "hma_discrete_small"), "--judge", str(JUDGE),
              "--out", str(tmp_path), "--episodes", "2", "--seconds", "2", "--policies", "pose:25,waypoint",
              "--threads", "2"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["episodes"] == 4
    ds = Dataset(tmp_path / "pusht")
    meta, frames, actions = ds.meta, ds.arrays["frames"], ds.arrays["actions"]
    assert meta["policies"] == ["pose pusher+noise 25", "waypoint pusher"] * 2
    starts = meta["closed_loop"]["starts"]
    assert len(starts) == 2 and min(starts) >= CLOSED_LOOP_BASE
    spec = ImageSpec((64, 64), "center")
    sim = make_sim("pusht")
    try:
        for e, (start, length) in enumerate(meta["episodes"]):
            seed = starts[e // 2]
            sim.reset(seed)
            assert sim.state()["coverage"] == 0.0  # an off-goal start
            np.testing.assert_array_equal(frames[start], spec.prepare(sim.render()))
            rest = sim.rest_action()
            acts = actions[start:start + length]  # acts[k]: the chunk from frame k to frame k + 1
            # prompt 4 -> 3 standing-still chunks (the agent held where it starts), then 4 policy chunks
            assert length >= 3 + 4
            np.testing.assert_allclose(acts[0:3], np.broadcast_to(rest, acts[0:3].shape), atol=1e-3)
            assert np.abs(acts[3:7] - rest).max() > 1.0  # the policy moved the agent
    finally:
        sim.close()
