"""What a token is: one object per token kind, owning everything that differs between them.

- `DiscreteTokens` (MaskGIT): FSQ code vectors (K factors, levels L_k); an embedding per factor
  in, a linear classifier per factor out; cross-entropy (label smoothing, optional weights per
  token); categorical sampling at a temperature (0 = argmax); action chunks regressed (MSE).
  With `factor_ar` (intra-token autoregression, as Open-MAGVIT2's "next sub-token prediction"):
  factor k's logits also see the factors before it (teacher-forced in training, drawn one factor
  after another in sampling), so a token is drawn as one coherent code -- independent factor
  softmaxes turn a token that is either "agent" or "background" into a mix that decodes to
  neither. Zero-started: a model given it from `--init` predicts exactly as before.
- `ContinuousTokens` (MAR): soft tokens (C channels); a linear layer in, the trunk's output is a
  condition z for a small diffusion head that denoises each token; DDIM sampling; action chunks
  denoised by a diffusion head too (a sample, or the mean of several).

The trunk, the masks, the unmasking schedule and the KV cache are the same for both
(model/dynamics.py, model/maskgit.py); they call these methods and never ask which kind.
State-dict names (`token_emb`, `out`, `token_in`, `token_head`) are the ones checkpoints have
always used, under this module (`tokens.`); HMADynamics maps older checkpoints' names.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from hma_ros.model.diffusion import DiffusionHead


class DiscreteTokens(nn.Module):
    kind = "discrete"
    continuous = False

    def __init__(self, cfg, d: int):
        super().__init__()
        self.cfg = cfg
        self.width = len(cfg.levels)  # K: values per token
        self.token_emb = nn.ModuleList(nn.Embedding(L, d) for L in cfg.levels)
        # factor k's rows in the stacked tables (embed: one lookup for the K factors)
        self.register_buffer("offsets", torch.tensor([0, *cfg.levels[:-1]]).cumsum(0), persistent=False)
        self.out = nn.ModuleList(nn.Linear(d, L) for L in cfg.levels)
        self.ar = None
        if getattr(cfg, "factor_ar", 0):
            self.ar = nn.ModuleList(FactorStep(d, cfg.factor_ar, cfg.levels[:k], cfg.levels[k])
                                    for k in range(1, self.width))

    def blank(self, B: int, S: int, device) -> torch.Tensor:
        """Placeholder codes of one slot (B, 1, S, K), every token to be decided."""
        return torch.zeros(B, 1, S, self.width, dtype=torch.long, device=device)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:  # (..., K) long -> (..., D)
        """The sum of the K factors' embeddings: one lookup in the stacked tables (K lookups and
        K - 1 additions were ~3% of an imagined frame on a CPU, in small ops)."""
        table = torch.cat([e.weight for e in self.token_emb])
        return F.embedding(codes + self.offsets, table).sum(-2)

    def head(self, h: torch.Tensor) -> FactorLogits:  # (..., D) -> K logits (..., L_k)
        """Each factor's own logits; with factor_ar they are factor k's logits before the factors
        ahead of it are known, and `h` (kept on the list) is what the intra-token steps read.

        The K classifiers run as one product (their weights stacked) and in fp32 also under
        autocast: K products of 64 tokens x 5-8 classes were ~10% of a bf16 imagined frame on a
        CPU (each ~20 us of call overhead, plus autocast's casts), and logits in fp32 are what
        the softmax, the confidences and the loss want anyway."""
        w = torch.cat([o.weight for o in self.out])
        b = torch.cat([o.bias for o in self.out])
        with torch.autocast(h.device.type, enabled=False):
            logits = F.linear(h.float(), w.float(), b.float()).split(list(self.cfg.levels), dim=-1)
        return FactorLogits(list(logits), h if self.ar is not None else None)

    @staticmethod
    def newest(out: FactorLogits) -> FactorLogits:
        """The newest slot's output of head((B, T, S, D)): K logits (B, S, L_k)."""
        return FactorLogits([lg[:, -1] for lg in out], None if out.h is None else out.h[:, -1])

    def _given(self, k: int, lg: torch.Tensor, h: torch.Tensor | None, prev: torch.Tensor) -> torch.Tensor:
        """Factor k's logits given the factors before it (prev (..., k)); lg and h at the same positions."""
        return lg if self.ar is None or k == 0 else lg + self.ar[k - 1](h, prev)

    def loss(self, out, codes: torch.Tensor, sel: torch.Tensor, weight: torch.Tensor | None = None,
             gen=None, label_smoothing: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy on the selected tokens (sel: bool over codes' leading dims), summed over
        factors, weighted per token when given; and exact-token accuracy."""
        tgt = codes[sel]
        h = None if out.h is None else out.h[sel]
        ce = sum(F.cross_entropy(self._given(k, lg[sel], h, tgt[:, :k]), tgt[:, k],
                                 label_smoothing=label_smoothing, reduction="none")
                 for k, lg in enumerate(out))
        ce = (ce * weight).sum() / weight.sum() if weight is not None else ce.mean()
        with torch.no_grad():
            acc = (self.greedy(FactorLogits([lg[sel] for lg in out], h)) == tgt).all(-1).float().mean()
        return ce, acc

    @torch.no_grad()
    def greedy(self, out: FactorLogits) -> torch.Tensor:
        """The most likely code per position (..., K): each factor's argmax, factor after factor
        (given the ones chosen before it) with factor_ar."""
        pred = out[0].new_zeros(*out[0].shape[:-1], 0, dtype=torch.long)
        for k, lg in enumerate(out):
            pred = torch.cat([pred, self._given(k, lg, out.h, pred).argmax(-1, keepdim=True)], dim=-1)
        return pred

    @torch.no_grad()
    def nll(self, out: FactorLogits, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token negative log-likelihood (nats, summed over factors, no smoothing) of codes
        (..., K) under head output `out` of the same leading shape, and the greedy decoding
        (..., K) (factor after factor with factor_ar): what perplexity and token accuracy read."""
        nll = torch.zeros(codes.shape[:-1], device=codes.device)
        for k, lg in enumerate(out):
            logits = self._given(k, lg, out.h, codes[..., :k])
            nll = nll + F.cross_entropy(logits.flatten(0, -2), codes[..., k].flatten(), reduction="none").view(nll.shape)
        return nll, self.greedy(out)

    @staticmethod
    def confidence(out_slot) -> torch.Tensor:
        """(B, S): log-probability of each position's most likely code (the sum over factors of
        each factor's largest log-softmax), MaskGIT's order of unmasking: surest first."""
        return sum(F.log_softmax(lg.float(), dim=-1).amax(dim=-1) for lg in out_slot)

    def sample(self, out_slot, idx: torch.Tensor, temperature: float, gen=None) -> torch.Tensor:
        """Tokens at positions idx (B, n) of a slot's output (newest()) -> (B, n, K). Every
        position is drawn and idx's kept: the generator advances as it always has, so a seed
        gives the same futures as before this module existed."""
        bidx = torch.arange(idx.shape[0], device=idx.device)[:, None]
        if self.ar is None:
            return torch.stack([_categorical(lg, temperature, gen) for lg in out_slot], dim=-1)[bidx, idx]
        # intra-token autoregression: only the positions whose turn it is, factor after factor
        h = out_slot.h[bidx, idx]
        temp = temperature[bidx, idx] if torch.is_tensor(temperature) else temperature
        drawn = idx.new_zeros(*idx.shape, 0)
        for k, lg in enumerate(out_slot):
            f = _categorical(self._given(k, lg[bidx, idx], h, drawn), temp, gen)
            drawn = torch.cat([drawn, f[..., None]], dim=-1)
        return drawn

    # action chunks (the per-embodiment heads are made here, owned by HMADynamics)
    def action_head(self, stride: int, action_dim: int, d: int) -> nn.Module:
        from hma_ros.model.dynamics import Head

        return Head(stride, action_dim, d)

    def action_loss(self, head, feat, target, gen=None) -> torch.Tensor:
        return F.mse_loss(head(feat), target)

    def predict_actions(self, head, feat, stride: int, action_dim: int, gen=None, temperature: float = 1.0,
                        samples: int = 1) -> torch.Tensor:
        return head(feat)


class ContinuousTokens(nn.Module):
    kind = "continuous"
    continuous = True

    def __init__(self, cfg, d: int):
        super().__init__()
        self.cfg = cfg
        self.width = cfg.token_dim  # C channels per soft token
        self.token_in = nn.Linear(cfg.token_dim, d)
        self.token_head = DiffusionHead(cfg.token_dim, d, cfg.diff_width, cfg.diff_depth)

    def blank(self, B: int, S: int, device) -> torch.Tensor:
        return torch.zeros(B, 1, S, self.width, dtype=torch.float32, device=device)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.token_in(codes.float())

    def head(self, h: torch.Tensor) -> torch.Tensor:  # the conditions z for the diffusion head
        return h

    @staticmethod
    def newest(out: torch.Tensor) -> torch.Tensor:
        return out[:, -1]

    def loss(self, out, codes, sel, weight=None, gen=None, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """The diffusion head's denoising loss on the selected tokens, weighted per token when given."""
        return self.token_head.loss(codes[sel].float(), out[sel], gen, weight), torch.zeros((), device=codes.device)

    @staticmethod
    def confidence(out_slot) -> None:
        """Continuous tokens have no likelihood to order by (MAR unmasks in random order)."""
        return None

    def sample(self, out_slot, idx, temperature, gen=None) -> torch.Tensor:
        """Denoise only the tokens at idx (B, n) from their conditions -> (B, n, C)."""
        B, n = idx.shape
        bidx = torch.arange(B, device=idx.device)[:, None]
        z = out_slot[bidx, idx]
        x = self.token_head.sample(z.reshape(-1, z.shape[-1]), self.cfg.ddim_steps, self.cfg.ddim_clip,
                                   temperature, gen)
        return x.reshape(B, n, self.width)

    def action_head(self, stride: int, action_dim: int, d: int) -> nn.Module:
        return DiffusionHead(stride * action_dim, d, self.cfg.diff_width, self.cfg.diff_depth)

    def action_loss(self, head, feat, target, gen=None) -> torch.Tensor:
        return head.loss(target.flatten(1), feat, gen)

    def predict_actions(self, head, feat, stride: int, action_dim: int, gen=None, temperature: float = 1.0,
                        samples: int = 1) -> torch.Tensor:
        """A DDIM sample per chunk, or with samples > 1 the mean of that many (an estimate of the
        conditional mean, the MSE-optimal chunk, where one sample is one mode of a multimodal policy)."""
        n = feat.shape[0]
        x = head.sample(feat.repeat_interleave(samples, 0), self.cfg.ddim_steps, self.cfg.ddim_clip,
                        temperature, gen)
        return x.view(n, samples, -1).mean(1).unflatten(-1, (stride, action_dim))


TOKEN_KINDS = {"discrete": DiscreteTokens, "continuous": ContinuousTokens}


class FactorLogits(list):
    """A discrete head's output: K factor logits (a list, as before), plus the features `h` the
    intra-token steps read (None without factor_ar)."""

    def __init__(self, logits, h: torch.Tensor | None = None):
        super().__init__(logits)
        self.h = h


class FactorStep(nn.Module):
    """Factor k's logits correction from the trunk's feature h and the factors before it:
    out(gelu(proj(h) + sum_j emb_j[f_j])); `out` starts at zero (independent factors)."""

    def __init__(self, d: int, width: int, prev_levels: tuple[int, ...], levels: int):
        super().__init__()
        self.proj = nn.Linear(d, width)
        self.prev = nn.Embedding(sum(prev_levels), width)
        self.register_buffer("offset", torch.tensor([0, *prev_levels[:-1]]).cumsum(0), persistent=False)
        self.out = nn.Linear(width, levels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return self.out(F.gelu(self.proj(h) + self.prev(prev + self.offset).sum(-2)))


def _categorical(logits: torch.Tensor, temperature, gen) -> torch.Tensor:
    """logits (B, S, L) -> (B, S) samples; temperature 0 = argmax. A (B, S) tensor of
    temperatures samples each position at its own (0: argmax there)."""
    if torch.is_tensor(temperature):
        greedy = logits.argmax(-1)
        hot = temperature > 0
        if not bool(hot.any()):
            return greedy
        probs = F.softmax(logits.float() / temperature.clamp_min(1e-6)[..., None].float(), dim=-1)
        drawn = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=gen).reshape(probs.shape[:-1])
        return torch.where(hot, drawn, greedy)
    if temperature <= 0:
        return logits.argmax(-1)
    probs = F.softmax(logits.float() / temperature, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=gen).reshape(probs.shape[:-1])
