"""Masked autoregression for video tokens: the training objective and the per-frame sampler,
for discrete FSQ tokens (MaskGIT: cross-entropy, categorical sampling) and continuous soft
tokens (MAR: a diffusion head per token, DDIM sampling) through the same code; what differs
between the two lives in the token-kind object, model/tokens.py.

Training: frames 1..T-1 of a window are masked with ratios drawn from the cosine schedule
(at least `mask_min_ratio`), sorted so later frames are masked more (the paper's horizon
schedule); cross-entropy with label smoothing on masked tokens, summed over FSQ factors, with
an optional weight on tokens whose image patch moved since the previous frame (`motion_weight`:
in these scenes about 90% of the patches are still background, so the few that move -- the ones
actions explain -- otherwise carry little of the loss; motion is measured on pixels because FSQ
codes of still patches flip too); optional random-token corruption of visible tokens. The
forward objective also trains the action head on a share of windows whose last slot hides its frame and its action (so act()
works); "full" masks action inputs at random and predicts them; "policy" trains actions only.

Sampling: one frame at a time, M unmasking steps on the cosine schedule in a random (seeded)
order; each step samples every still-masked token from softmax(logits / temperature) (a real
temperature: 0 = argmax) and commits the ones whose turn it is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from hma_ros.model.dynamics import LEGACY_TRAINING_KEYS, HMADynamics, KVCache


@dataclass
class LossConfig:
    """How the dynamics model is trained -- its masking and loss -- as opposed to what it is
    (DynamicsConfig). Stored in a checkpoint's `loss` section (older checkpoints: inside
    `dynamics`, read by `from_config`); `hma train` options replace it when given."""

    mask_min_ratio: float = 0.1  # least share of a frame's tokens masked
    label_smoothing: float = 0.1
    corrupt_prob: float = 0.0  # discrete: share of visible tokens replaced by random codes
    self_prob: float = 0.0  # discrete: share of samples whose visible tokens are the model's own drawing
    action_drop: float = 0.0  # share of samples that see every action as unknown (the passive path)
    motion_weight: float = 1.0  # loss weight of masked tokens whose patch moved (metrics.moving_tokens); MAR: of their denoising loss
    policy_prob: float = 0.25  # forward objective: share of samples whose last slot also trains act()
    where_weight: float = 1.0  # with action_points: weight of the map's own loss, predicting which
    # tokens change in the frame the action leads into (metrics.moving_tokens)
    state_weight: float = 0.0  # weight of the state heads' loss (StateHead): each slot's change of the
    # dataset's recorded state, predicted from its image tokens' trunk output; 0 = off

    def __post_init__(self):
        if not 0 < self.mask_min_ratio <= 1:
            raise ValueError(f"mask_min_ratio must be in (0, 1], got {self.mask_min_ratio}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.corrupt_prob < 1:
            raise ValueError(f"corrupt_prob must be in [0, 1), got {self.corrupt_prob}")
        if not 0 <= self.self_prob <= 1:
            raise ValueError(f"self_prob must be in [0, 1], got {self.self_prob}")
        if not 0 <= self.action_drop < 1:
            raise ValueError(f"action_drop must be in [0, 1), got {self.action_drop}")
        if self.motion_weight <= 0:
            raise ValueError(f"motion_weight must be > 0, got {self.motion_weight}")
        if not 0 <= self.policy_prob <= 1:
            raise ValueError(f"policy_prob must be in [0, 1], got {self.policy_prob}")
        if self.where_weight < 0:
            raise ValueError(f"where_weight must be >= 0, got {self.where_weight}")
        if self.state_weight < 0:
            raise ValueError(f"state_weight must be >= 0, got {self.state_weight}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> LossConfig:
        """A checkpoint config's loss settings: its `loss` section, or what an older one kept in
        `dynamics`, or the defaults."""
        if "loss" in config:
            return cls(**config["loss"])
        return cls(**{k: v for k, v in config.get("dynamics", {}).items() if k in LEGACY_TRAINING_KEYS})

    def check(self, model: HMADynamics) -> None:
        if self.self_prob > 0 and model.continuous:
            raise ValueError("self_prob applies to discrete tokens only (MAR's soft tokens have no greedy drawing)")


def cosine_ratio(u: torch.Tensor) -> torch.Tensor:
    return torch.cos(u * math.pi / 2)


def training_masks(B: int, T: int, S: int, min_ratio: float, gen: torch.Generator | None = None,
                   device="cpu") -> torch.Tensor:
    """(B, T, S) bool, True = masked. Slot 0 is context (never masked)."""
    u = torch.rand(B, T - 1, generator=gen, device=device)
    r = cosine_ratio(u).clamp(min=min_ratio).sort(dim=1).values  # later frames masked more
    n = (r * S).ceil().long().clamp(1, S)  # (B, T-1)
    scores = torch.rand(B, T - 1, S, generator=gen, device=device)
    ranks = scores.argsort(dim=-1).argsort(dim=-1)
    masked = ranks < n[..., None]
    return torch.cat([torch.zeros(B, 1, S, dtype=torch.bool, device=device), masked], dim=1)


def dynamics_loss(model: HMADynamics, emb: str, codes: torch.Tensor, actions: torch.Tensor,
                  action_valid: torch.Tensor, gen: torch.Generator | None = None,
                  moving: torch.Tensor | None = None, loss: LossConfig | None = None,
                  states: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One training loss. codes (B, T, S, K); actions (B, T, stride, dim) RAW chunks in the data's
    layout (chunk t follows frame t); action_valid (B, T); moving (B, T, S) bool, the tokens whose
    patch moved since the previous frame (`metrics.moving_tokens`; needed when loss.motion_weight
    is not 1); loss: the settings (default LossConfig()); states (B, T, n) raw recorded state
    (needed when loss.state_weight > 0 and the model has a state head for `emb`). Returns
    {"loss", "token_loss", "action_loss", "token_acc"[, "where_loss"][, "state_loss"]}."""
    cfg = model.cfg
    lc = loss or LossConfig()
    lc.check(model)
    B, T, S, K = codes.shape
    dev = codes.device
    stem = model.stems[emb]
    norm = stem.normalize(actions)
    # slot t is conditioned on the chunk that led into it: a_{t-1}
    inp = torch.cat([torch.zeros_like(norm[:, :1]), norm[:, :-1]], dim=1)
    masked = training_masks(B, T, S, lc.mask_min_ratio, gen, dev)
    action_masked = torch.zeros(B, T, dtype=torch.bool, device=dev)
    action_target = torch.zeros(B, T, dtype=torch.bool, device=dev)
    use_actions = model.conditioning.uses_actions
    if cfg.objective == "full":
        action_masked[:, 1:] = torch.rand(B, T - 1, generator=gen, device=dev) < 0.5
        action_target = action_masked.clone()
    elif cfg.objective in ("forward", "policy"):
        share = 1.0 if cfg.objective == "policy" else lc.policy_prob
        pick = torch.rand(B, generator=gen, device=dev) < share
        action_masked[:, -1] = pick
        action_target[:, -1] = pick
        masked[:, -1] |= pick[:, None]  # the frame after the predicted action stays hidden
    if lc.action_drop > 0:  # action dropout: these samples learn the frames without their actions
        drop = torch.rand(B, generator=gen, device=dev) < lc.action_drop
        action_masked = action_masked | drop[:, None]
    valid_in = torch.cat([torch.ones_like(action_valid[:, :1]), action_valid[:, :-1]], dim=1)
    action_target &= valid_in
    inputs = codes
    if lc.corrupt_prob > 0 and not model.continuous:  # random codes exist for FSQ tokens only
        levels = torch.tensor(cfg.levels, device=dev)
        rnd = (torch.rand(B, T, S, K, generator=gen, device=dev) * levels).long()
        flip = (torch.rand(B, T, S, generator=gen, device=dev) < lc.corrupt_prob) & ~masked
        flip[:, 0] = False
        inputs = torch.where(flip[..., None], rnd, codes)
    if lc.self_prob > 0:
        # self-forcing: imagination continues from frames the model drew itself, teacher forcing
        # never does, so a token drawn wrong (the T at contact) was copied forward. A first pass
        # without gradient, under its own random mask, draws each masked token greedily; for the
        # picked samples those drawings (truth where that mask left tokens visible) replace the
        # visible tokens of slots >= 1, and the targets stay the true codes.
        with torch.no_grad():
            first = training_masks(B, T, S, lc.mask_min_ratio, gen, dev)
            out1, _, _ = model(emb, codes, first, inp if use_actions else None, None)
            drawn = torch.where(first[..., None], model.tokens.greedy(out1), codes)
        pick = torch.rand(B, generator=gen, device=dev) < lc.self_prob
        own = pick[:, None, None] & ~masked
        own[:, 0] = False
        inputs = torch.where(own[..., None], drawn, inputs)
    state_head = model.state_heads[emb] if lc.state_weight > 0 and emb in model.state_heads else None
    if state_head is not None and states is None:
        raise ValueError(f"state_weight > 0 needs the recorded states of {emb}'s windows (TokenizedDataset.states)")
    tok_out, act_feat, _, img = model(emb, inputs, masked, inp if use_actions else None,
                                      action_masked if use_actions else None, features=True)
    out: dict[str, torch.Tensor] = {}
    if cfg.objective != "policy" and masked.any():
        sel = masked
        weight = None
        if lc.motion_weight != 1.0:  # weigh the tokens that move (what actions explain) up
            if moving is None:
                raise ValueError("motion_weight != 1 needs the moving-token mask (TokenizedDataset.batch)")
            weight = torch.where(moving[sel], lc.motion_weight, 1.0)
        out["token_loss"], out["token_acc"] = model.tokens.loss(tok_out, codes, sel, weight, gen,
                                                                label_smoothing=lc.label_smoothing)
    else:
        out["token_loss"] = torch.zeros((), device=dev)
        out["token_acc"] = torch.zeros((), device=dev)
    if action_target.any():
        out["action_loss"] = model.action_loss(emb, act_feat[action_target], inp[action_target], gen)
    else:
        out["action_loss"] = torch.zeros((), device=dev) + 0.0 * act_feat.sum()
    out["loss"] = out["token_loss"] + out["action_loss"]
    if model.action_map is not None and use_actions and lc.where_weight > 0:
        # the action map's own task: which tokens change in the frame each known action leads into
        if moving is None:
            raise ValueError("action_points need the moving-token mask (TokenizedDataset.batch)")
        known = valid_in.clone()
        known[:, 0] = False
        logits = model.action_map.where_logits(stem.place(inp))
        target = moving[known].float()
        # balanced: few tokens change, and "nothing changes" must not win by pushing the points away
        pos_weight = (target.numel() - target.sum()) / target.sum().clamp_min(1.0)
        out["where_loss"] = F.binary_cross_entropy_with_logits(logits[known], target, pos_weight=pos_weight)
        out["loss"] = out["loss"] + lc.where_weight * out["where_loss"]
    if state_head is not None:
        # where the scene's recorded state went in each slot, from that slot's image tokens (masked
        # as the token loss masks them: mostly hidden, it is the dynamics' prediction)
        pred = state_head(img[:, 1:].float())
        target = state_head.target(states.float())
        known = torch.isfinite(target)  # a state column a recording lacks (NaN) teaches nothing
        err = torch.where(known, pred - torch.nan_to_num(target), torch.zeros_like(pred))
        out["state_loss"] = err.square().sum() / known.sum().clamp_min(1)
        out["loss"] = out["loss"] + lc.state_weight * out["state_loss"]
    return out


class TrainingLoss(torch.nn.Module):
    """dynamics_loss as a module: wrap this (not the model) in DistributedDataParallel, so every
    parameter the loss touches -- action heads included -- is used inside DDP's forward."""

    def __init__(self, model: HMADynamics, loss: LossConfig | None = None):
        super().__init__()
        self.model = model
        self.settings = loss or LossConfig()

    def forward(self, emb, codes, actions, action_valid, gen=None, moving=None, states=None):
        return dynamics_loss(self.model, emb, codes, actions, action_valid, gen, moving, self.settings, states)


UNMASK_ORDERS = ("random", "confidence")


@torch.no_grad()
def sample_frame(model: HMADynamics, emb: str, action_in: torch.Tensor | None, cache: KVCache | None,
                 context: tuple | None = None, steps: int = 2,
                 temperature: float = 1.0, gen: torch.Generator | None = None,
                 pending: tuple[torch.Tensor, torch.Tensor | None] | None = None,
                 order: str = "random") -> torch.Tensor:
    """Sample the codes of one new slot (B, S, K).

    order: which masked positions are decided at each unmasking step: "random" (a random
    permutation, drawn up front) or "confidence" (discrete tokens: the positions whose most
    likely code is most probable, MaskGIT's rule; the rest wait and see them). The random
    permutation is drawn either way, so the generator advances alike.

    pending (cached path only): (codes (B, S, K), normalized action (B, stride, dim)) of the
    previous, fully decided slot that is not in the cache yet. It is run together with the
    first unmasking step (one forward of two slots instead of a separate commit pass) and its
    keys/values are appended to the cache -- the same numbers, one model call fewer per frame.

    action_in: (B, stride, dim) normalized chunk leading into the new frame (None: passive).
    With `cache`, only the new slot is run (past slots' keys/values are cached). Without it,
    `context` = (past codes (B, Tp, S, K), past normalized action inputs (B, Tp, stride, dim)
    [, (B, Tp) bool: action unknown]) and the whole window is recomputed at every unmasking
    step (the reference behaviour, kept for tests and benchmarks); its first slot is the
    window's start."""
    cfg = model.cfg
    S = cfg.tokens_per_frame
    B = action_in.shape[0] if action_in is not None else (context[0].shape[0] if context else 1)
    dev = model.mask_emb.device
    tokens = model.tokens
    codes = tokens.blank(B, S, dev)
    masked = torch.ones(B, 1, S, dtype=torch.bool, device=dev)
    if order not in UNMASK_ORDERS:
        raise ValueError(f"order must be one of {UNMASK_ORDERS}, got {order!r}")
    by_confidence = order == "confidence"
    if by_confidence and model.continuous:
        raise ValueError("order 'confidence' needs discrete tokens (continuous tokens have no likelihood)")
    perm = torch.rand(B, S, generator=gen, device=dev).argsort(dim=-1)  # random unmask order
    done = 0
    use_actions = model.conditioning.uses_actions
    for i in range(steps):
        remain = int(math.floor(S * float(cosine_ratio(torch.tensor((i + 1) / steps))))) if i + 1 < steps else 0
        n_now = S - remain - done
        if cache is not None and pending is not None and i == 0:
            a = None
            if use_actions and action_in is not None:
                a = torch.stack([pending[1], action_in], dim=1)
            both = torch.cat([pending[0][:, None], codes], dim=1)
            both_mask = torch.cat([torch.zeros_like(masked), masked], dim=1)
            logits, _, kv = cache.forward(model, emb, both, both_mask, a)
            cache.append([(k[:, :, :1], v[:, :, :1]) for k, v in kv])
            logits = tokens.newest(logits)
        elif cache is not None:
            a = action_in[:, None] if (use_actions and action_in is not None) else None
            first = len(cache) == 0 and cache.next_pos == 0
            logits, _, _ = cache.forward(model, emb, codes, masked, a, first_is_start=first)
            logits = tokens.newest(logits)
        else:
            past_codes, past_act = context[:2] if context is not None else (codes[:, :0], None)
            unknown = context[2] if context is not None and len(context) > 2 else None
            all_codes = torch.cat([past_codes, codes], dim=1)
            all_mask = torch.cat([torch.zeros(past_codes.shape[:3], dtype=torch.bool, device=dev), masked], 1)
            a, am = None, None
            if use_actions and action_in is not None:
                pa = past_act if past_act is not None else action_in[:, None][:, :0]
                a = torch.cat([pa, action_in[:, None]], dim=1)
                if unknown is not None:
                    am = torch.cat([unknown, torch.zeros(B, 1, dtype=torch.bool, device=dev)], dim=1)
            logits, _, _ = model(emb, all_codes, all_mask, a, am)
            logits = tokens.newest(logits)
        if by_confidence:  # the surest of the still-masked positions
            conf = tokens.confidence(logits).masked_fill(~masked[:, 0], float("-inf"))
            idx = conf.topk(n_now, dim=-1).indices
        else:
            idx = perm[:, done: done + n_now]  # positions whose turn it is
        bidx = torch.arange(B, device=dev)[:, None]
        codes[bidx, 0, idx] = tokens.sample(logits, idx, temperature, gen)
        masked[bidx, 0, idx] = False
        done += n_now
    return codes[:, 0]



