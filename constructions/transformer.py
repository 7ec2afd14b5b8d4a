"""A causal transformer whose weights are data, named and shaped as in TransformerLens.

Every hand-built circuit of the project runs through this one forward pass:

    resid_0   = W_E[tokens] + W_pos[:pos]
    resid_l+1 = resid_l + sum_h Attn_h(resid_l) (+ MLP(resid_l + attn_out))
    logits    = resid_L W_U + b_U

with, for head h of a layer,

    scores_h = (x W_Q[h] + b_Q[h]) (x W_K[h] + b_K[h])^T / attn_scale     (causal: k <= q)
    A_h      = softmax(scores_h)            attention="softmax"
             = uniform over argmax(scores_h) attention="hard" (the beta -> infinity limit of
                                             softmax(beta * scores): exact ties share equally)
    out_h    = A_h (x W_V[h] + b_V[h]) W_O[h]

There is no LayerNorm: hand-set weights want the residual stream to be a plain sum. Scores are
divided by ``attn_scale`` (1.0 by default, not sqrt(d_head): hand-set weights state their own
temperature). Computation is float64 by default.

Parameter names equal TransformerLens's (``embed.W_E``, ``blocks.0.attn.W_Q`` ...), so
``state_dict()`` loads into a ``HookedTransformer`` with ``attn_only=True``,
``normalization_type=None`` and ``use_attn_scale=False`` (with ``W_Q``, ``b_Q`` divided by
``attn_scale`` when it is not 1), and ``run_with_cache`` uses its hook names (the logits are
``unembed.hook_out``, the stream they are read from ``unembed.hook_in``, as in TransformerLens).
`Transformer` refuses, before allocating, parameters estimated to exceed the memory limit
(`validation.memory_limit`).

References: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits";
TransformerLens (Nanda and Bloom) for names and shapes; nanoGPT for the shape of the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from constructions import validation
from constructions.attention_ops import _per_head, attention_pattern  # noqa: F401
from constructions.random_init import random_weights  # noqa: F401 - re-exported

ACT_FNS = ("relu", "quadratic")
ATTENTION_KINDS = ("softmax", "hard")


@dataclass(frozen=True)
class Config:
    """Shape and semantics of a `Transformer`; TransformerLens's words for each field."""

    n_layers: int                     # number of blocks
    n_heads: int                      # attention heads per block (>= 1)
    d_model: int                      # width of the residual stream
    d_head: int                       # width of each head's query/key/value space
    d_vocab: int                      # input vocabulary size (token ids 0 .. d_vocab-1)
    n_ctx: int                        # longest sequence the model accepts
    d_mlp: int | None = None          # MLP hidden width; None = attention-only blocks
    act_fn: str | None = None         # "relu" | "quadratic" (x -> x^2); None iff d_mlp is None
    attn_scale: float = 1.0           # scores are divided by this; hand-set weights use 1.0
    attention: str = "softmax"        # "softmax" | "hard" (argmax limit, ties share equally)
    d_vocab_out: int | None = None    # output vocabulary; None = d_vocab
    dtype: torch.dtype = field(default=torch.float64)  # float64: rounding stays far below margins

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "d_vocab", "n_ctx"):
            validation.check_int(name, getattr(self, name), minimum=1)
        if self.d_mlp is None:
            if self.act_fn is not None:
                raise ValueError("act_fn must be None when d_mlp is None (attention-only blocks)")
        else:
            validation.check_int("d_mlp", self.d_mlp, minimum=1)
            validation.check_choice("act_fn", self.act_fn, ACT_FNS)
        validation.check_positive_real("attn_scale", self.attn_scale)
        validation.check_choice("attention", self.attention, ATTENTION_KINDS)
        if self.d_vocab_out is not None:
            validation.check_int("d_vocab_out", self.d_vocab_out, minimum=1)
        if self.dtype not in (torch.float64, torch.float32):
            raise ValueError(f"dtype must be torch.float64 or torch.float32, got {self.dtype}")

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    @property
    def vocab_out(self) -> int:
        return self.d_vocab if self.d_vocab_out is None else self.d_vocab_out

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's TransformerLens name and shape."""
        h, d, e = self.n_heads, self.d_model, self.d_head
        shapes: dict[str, tuple[int, ...]] = {
            "embed.W_E": (self.d_vocab, d),
            "pos_embed.W_pos": (self.n_ctx, d),
        }
        for layer in range(self.n_layers):
            a = f"blocks.{layer}.attn."
            shapes.update({a + "W_Q": (h, d, e), a + "W_K": (h, d, e), a + "W_V": (h, d, e),
                           a + "W_O": (h, e, d), a + "b_Q": (h, e), a + "b_K": (h, e),
                           a + "b_V": (h, e), a + "b_O": (d,)})
            if self.d_mlp is not None:
                m = f"blocks.{layer}.mlp."
                shapes.update({m + "W_in": (d, self.d_mlp), m + "b_in": (self.d_mlp,),
                               m + "W_out": (self.d_mlp, d), m + "b_out": (d,)})
        shapes.update({"unembed.W_U": (d, self.vocab_out), "unembed.b_U": (self.vocab_out,)})
        return shapes

    def parameter_count(self) -> int:
        """Number of scalars in the parameters (exact integer arithmetic, no allocation)."""
        return sum(math.prod(shape) for shape in self.parameter_shapes().values())

    def parameter_bytes(self) -> int:
        """Bytes the parameters take in ``dtype`` (8 for float64, 4 for float32)."""
        return self.parameter_count() * (8 if self.dtype == torch.float64 else 4)


def _zeros(cfg: Config, *shape: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(*shape, dtype=cfg.dtype))


class Embed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.W_E = _zeros(cfg, cfg.d_vocab, cfg.d_model)


class PosEmbed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.W_pos = _zeros(cfg, cfg.n_ctx, cfg.d_model)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        self.cfg = cfg
        self.W_Q, self.W_K, self.W_V = _zeros(cfg, h, d, e), _zeros(cfg, h, d, e), _zeros(cfg, h, d, e)
        self.W_O = _zeros(cfg, h, e, d)
        self.b_Q, self.b_K, self.b_V = _zeros(cfg, h, e), _zeros(cfg, h, e), _zeros(cfg, h, e)
        self.b_O = _zeros(cfg, d)

    def forward(self, x: Tensor, cache: dict[str, Tensor] | None, prefix: str) -> Tensor:
        batch, n, _ = x.shape
        h, e = self.cfg.n_heads, self.cfg.d_head
        q = _per_head(x, self.W_Q, self.b_Q)  # [batch, pos, head, d_head]
        k = _per_head(x, self.W_K, self.b_K)
        v = _per_head(x, self.W_V, self.b_V)
        scores = q.transpose(1, 2) @ k.permute(0, 2, 3, 1)  # [batch, head, q, k]
        if self.cfg.attn_scale != 1.0:
            scores = scores / self.cfg.attn_scale
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill_(future, float("-inf"))  # in place: matmul keeps no output
        pattern = attention_pattern(scores, self.cfg.attention)
        z = (pattern @ v.transpose(1, 2)).transpose(1, 2)  # [batch, pos, head, d_head]
        # concatenate the heads and project: sum_h z_h W_O[h] as one matrix product
        out = torch.nn.functional.linear(z.reshape(batch, n, h * e),
                                         self.W_O.reshape(h * e, -1).T, self.b_O)
        if cache is not None:
            cache.update({prefix + "hook_q": q, prefix + "hook_k": k, prefix + "hook_v": v,
                          prefix + "hook_attn_scores": scores, prefix + "hook_pattern": pattern,
                          prefix + "hook_z": z})
        return out  # [batch, pos, d_model]


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        assert cfg.d_mlp is not None
        self.act_fn = cfg.act_fn
        self.W_in, self.b_in = _zeros(cfg, cfg.d_model, cfg.d_mlp), _zeros(cfg, cfg.d_mlp)
        self.W_out, self.b_out = _zeros(cfg, cfg.d_mlp, cfg.d_model), _zeros(cfg, cfg.d_model)

    def forward(self, x: Tensor, cache: dict[str, Tensor] | None, prefix: str) -> Tensor:
        pre = x @ self.W_in + self.b_in  # [batch, pos, d_mlp]
        post = torch.relu(pre) if self.act_fn == "relu" else pre * pre
        if cache is not None:
            cache.update({prefix + "hook_pre": pre, prefix + "hook_post": post})
        return post @ self.W_out + self.b_out


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = None if cfg.attn_only else MLP(cfg)

    def forward(self, resid: Tensor, cache: dict[str, Tensor] | None, prefix: str) -> Tensor:
        _store(cache, prefix + "hook_resid_pre", resid)
        attn_out = self.attn(resid, cache, prefix + "attn.")
        _store(cache, prefix + "hook_attn_out", attn_out)
        resid = resid + attn_out
        if self.mlp is not None:
            _store(cache, prefix + "hook_resid_mid", resid)
            mlp_out = self.mlp(resid, cache, prefix + "mlp.")
            _store(cache, prefix + "hook_mlp_out", mlp_out)
            resid = resid + mlp_out
        _store(cache, prefix + "hook_resid_post", resid)
        return resid


class Unembed(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.W_U = _zeros(cfg, cfg.d_model, cfg.vocab_out)
        self.b_U = _zeros(cfg, cfg.vocab_out)


def _store(cache: dict[str, Tensor] | None, name: str, value: Tensor) -> None:
    if cache is not None:
        cache[name] = value


class Transformer(nn.Module):
    """The forward pass of the module docstring; all parameters start at zero."""

    def __init__(self, cfg: Config):
        super().__init__()
        if not isinstance(cfg, Config):
            raise TypeError(f"cfg must be a transformer.Config, got {type(cfg).__name__}")
        # estimate before allocating: a vocabulary of 10^9 is refused here, not by the allocator
        validation.check_memory(f"a Transformer with {cfg.parameter_count():,} parameters "
                                f"(d_vocab={cfg.d_vocab}, d_model={cfg.d_model}, n_ctx={cfg.n_ctx})",
                                cfg.parameter_bytes())
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.unembed = Unembed(cfg)

    @classmethod
    def from_weights(cls, cfg: Config, weights: Mapping[str, object]) -> Transformer:
        """A frozen model from TransformerLens-named weights; missing biases stay zero."""
        model = cls(cfg)
        model.set_weights(weights)
        return model.requires_grad_(False)

    def set_weights(self, weights: Mapping[str, object]) -> None:
        """Copy TransformerLens-named arrays into the parameters, checking names and shapes."""
        shapes = self.cfg.parameter_shapes()
        params = dict(self.named_parameters())
        for name, value in weights.items():
            if name not in shapes:
                raise ValueError(f"weights: unknown parameter {name!r}; expected TransformerLens "
                                 f"names such as {', '.join(list(shapes)[:4])}, ...")
            tensor = torch.as_tensor(value, dtype=self.cfg.dtype)
            if tuple(tensor.shape) != shapes[name]:
                raise ValueError(f"weights[{name!r}] must have shape {shapes[name]}, "
                                 f"got {tuple(tensor.shape)}")
            with torch.no_grad():
                params[name].copy_(tensor)

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens [batch, pos] (long) -> logits [batch, pos, d_vocab_out]."""
        return self._run(tokens, None)

    def run_with_cache(self, tokens: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and every activation, keyed by TransformerLens hook names."""
        cache: dict[str, Tensor] = {}
        logits = self._run(tokens, cache)
        return logits, cache

    def _run(self, tokens: Tensor, cache: dict[str, Tensor] | None) -> Tensor:
        tokens = validation.check_tokens(tokens, d_vocab=self.cfg.d_vocab, n_ctx=self.cfg.n_ctx)
        tokens = tokens.to(self.embed.W_E.device)
        embed = self.embed.W_E[tokens]  # [batch, pos, d_model]
        pos_embed = self.pos_embed.W_pos[: tokens.shape[1]].expand_as(embed)
        _store(cache, "hook_embed", embed)
        _store(cache, "hook_pos_embed", pos_embed)
        resid = embed + pos_embed
        for layer, block in enumerate(self.blocks):
            resid = block(resid, cache, f"blocks.{layer}.")
        _store(cache, "unembed.hook_in", resid)  # TransformerLens's name for the final stream
        logits = resid @ self.unembed.W_U + self.unembed.b_U  # [batch, pos, d_vocab_out]
        _store(cache, "unembed.hook_out", logits)
        return logits

    def attention(self, layer: int) -> Attention:
        """The attention module of block ``layer`` (typed access for circuit code)."""
        block = self.blocks[layer]
        assert isinstance(block, Block)
        return block.attn

    def weights(self) -> dict[str, Tensor]:
        """Detached copies of the parameters under their TransformerLens names."""
        return {name: p.detach().clone() for name, p in self.named_parameters()}
