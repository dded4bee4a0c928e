"""The M+ forward in PyTorch, batched over episodes, with gradients through injections.

Same algorithm as the TypeScript engine (../shared/MPLUS-SPEC.md): injection with the `default`
LoRA adapter, θ update with a random (or planned) drop, the dropped-token cache with retriever
keys, merges into Θ with recall-frequency expiry, retrieval by mean sigmoid(q·k) over the
question rows, and generation with the `decoder_adapter` adapter over [bos; Θ retrieved; θ; q].

Module and parameter names are chosen so that `state_dict()` already uses mplus-8b's Hugging Face
names (PEFT `base_layer` / `lora_A.default` / `lora_A.decoder_adapter`, `query_proj.0/.2`,
`memory`, `bos_embedding`, `new_memory_positional_emb`, `ltm.{l}`): export only renames nothing.

Shapes (B episodes in a batch, L layers, d hidden, K = num_tokens, N θ rows, R retrieved rows,
s = selector_hidden_dim): θ [B, N, d] per layer; Θ values [B, M, d], keys [B, M, s], ages/rf
[B, M]; every episode in a batch performs the same sequence of operations, so M, cache size and
update_step are the same across the batch (expiry depends only on counts, never on content).
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

ADAPTERS = ('default', 'decoder_adapter')  # write (inject) and read (generate)


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


class LoraLinear(nn.Module):
    """W x + (alpha/r) B A x, one (A, B) pair per adapter; PEFT's tensor names."""

    def __init__(self, inp: int, out: int, r: int, alpha: float, dropout: float):
        super().__init__()
        self.base_layer = nn.Linear(inp, out, bias=False)
        self.lora_A = nn.ModuleDict({a: nn.Linear(inp, r, bias=False) for a in ADAPTERS})
        self.lora_B = nn.ModuleDict({a: nn.Linear(r, out, bias=False) for a in ADAPTERS})
        self.scale = alpha / r
        self.dropout = dropout
        for a in ADAPTERS:
            nn.init.zeros_(self.lora_B[a].weight)  # PEFT's init: the adapter starts as identity

    def forward(self, x, adapter: str):
        if self.dropout > 0 and self.training:
            xa = F.dropout(x, self.dropout, self.training)
            return self.base_layer(x) + self.scale * self.lora_B[adapter](self.lora_A[adapter](xa))
        # W x + s·B(A x) = (W + s·B A) x. The merged weight costs out·in·r multiply-adds, against
        # rows·(out+in)·r for the adapter path plus an extra add over the output: at d 128 with
        # thousands of rows per call, one matmul instead of three (and 2 instead of ~6 backward)
        # makes a training step ~35% faster. Gradients reach A and B through the merge unchanged.
        w = torch.addmm(self.base_layer.weight, self.lora_B[adapter].weight, self.lora_A[adapter].weight, alpha=self.scale)
        return F.linear(x, w)


def projector(d: int, s: int) -> nn.Sequential:
    # num_selector_layers 2: Linear(d→2s, no bias) · silu · Linear(2s→s); names `.0` and `.2`.
    return nn.Sequential(nn.Linear(d, 2 * s, bias=False), nn.SiLU(), nn.Linear(2 * s, s, bias=False))


class Attention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        hd = c.head_dim
        lora = lambda i, o: LoraLinear(i, o, c.lora_r, c.lora_alpha, c.lora_dropout)
        self.q_proj = lora(c.hidden_size, c.num_heads * hd)
        self.k_proj = lora(c.hidden_size, c.num_kv_heads * hd)
        self.v_proj = lora(c.hidden_size, c.num_kv_heads * hd)
        self.o_proj = nn.Linear(c.num_heads * hd, c.hidden_size, bias=False)
        self.query_proj = projector(c.hidden_size, c.selector_hidden_dim)
        self.key_proj = projector(c.hidden_size, c.selector_hidden_dim)
        # Trained jointly in the paper, unused at inference; kept so the layout matches mplus-8b.
        self.encoder_query_proj = projector(c.hidden_size, c.selector_hidden_dim)
        self.c = c


class MLP(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        lora = lambda i, o: LoraLinear(i, o, c.lora_r, c.lora_alpha, c.lora_dropout)
        self.gate_proj = lora(c.hidden_size, c.intermediate_size)
        self.up_proj = lora(c.hidden_size, c.intermediate_size)
        self.down_proj = lora(c.intermediate_size, c.hidden_size)

    def forward(self, x, adapter):
        return self.down_proj(F.silu(self.gate_proj(x, adapter)) * self.up_proj(x, adapter), adapter)


def rope_inv_freq(c: ModelConfig) -> torch.Tensor:
    """transformers' LlamaRotaryEmbedding inv_freq, with the llama3 rescaling when configured."""
    dim = c.head_dim
    inv = 1.0 / (c.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = c.rope_scaling
    if rs is not None and rs.get('rope_type') == 'llama3':
        factor, lo, hi, orig = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor'], rs['original_max_position_embeddings']
        low_wavelen, high_wavelen = orig / lo, orig / hi
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (orig / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.c = c

    def forward(self, S, p: int, cos, sin, adapter: str):
        """S [B, T, d]; rows 0..p−1 are a prefix (keys/values only). Returns [B, T−p, d]."""
        c, a = self.c, self.self_attn
        B, T, _ = S.shape
        hd = c.head_dim
        xn = self.input_layernorm(S)
        q = a.q_proj(xn[:, p:], adapter).view(B, T - p, c.num_heads, hd).transpose(1, 2)
        k = a.k_proj(xn, adapter).view(B, T, c.num_kv_heads, hd).transpose(1, 2)
        v = a.v_proj(xn, adapter).view(B, T, c.num_kv_heads, hd).transpose(1, 2)
        cq, sq = cos[p:T], sin[p:T]
        q = q * cq + rotate_half(q) * sq
        k = k * cos[:T] + rotate_half(k) * sin[:T]
        g = c.num_heads // c.num_kv_heads
        if g > 1:
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        # Query row i (absolute p+i) sees every key j ≤ p+i (bottom-right causal alignment).
        mask = torch.ones(T - p, T, dtype=torch.bool, device=S.device).tril(diagonal=p)
        att = att.masked_fill(~mask, float('-inf'))
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        o = (att @ v).transpose(1, 2).reshape(B, T - p, c.num_heads * hd)
        h = S[:, p:] + a.o_proj(o)
        return h + self.mlp(self.post_attention_layernorm(h), adapter)

    def keys(self, x):
        """Retriever keys of memory rows x [..., d] (map_from_hidden_states: normed inputs)."""
        return self.self_attn.key_proj(self.input_layernorm(x))

    def queries(self, x):
        return self.self_attn.query_proj(self.input_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


@dataclass
class Memory:
    """One batch of episodes' memory, per layer (lists of length L)."""
    stm: List[torch.Tensor]          # [B, N, d]
    stm_ages: List[torch.Tensor]     # [B, N] (long)
    ltm: List[torch.Tensor]          # [B, M, d]
    ltm_keys: List[torch.Tensor]     # [B, M, s]
    ltm_ages: List[torch.Tensor]     # [B, M] (long)
    ltm_rf: List[torch.Tensor]       # [B, M] (float)
    cache: List[torch.Tensor]        # [B, C, d]
    cache_keys: List[torch.Tensor]   # [B, C, s]
    cache_ages: List[torch.Tensor]   # [B, C] (long)
    update_step: int = 0
    # Optional provenance, for the retriever's labels: a tag per row (−1 = none).
    stm_tag: Optional[List[torch.Tensor]] = None
    ltm_tag: Optional[List[torch.Tensor]] = None
    cache_tag: Optional[List[torch.Tensor]] = None


def question_view(mem: Memory, episode: torch.Tensor) -> Memory:
    """What retrieval reads of episodes `episode` [B'] (repeats allowed: several questions per
    episode): keys, ages and tags per question. Θ and the cache rows stay per episode
    (generate_logits gathers the retrieved ones by episode), so no question copies them."""
    pick = lambda xs: None if xs is None else [x.index_select(0, episode) for x in xs]
    return Memory(mem.stm, mem.stm_ages, mem.ltm, pick(mem.ltm_keys), pick(mem.ltm_ages), pick(mem.ltm_rf),
                  mem.cache, pick(mem.cache_keys), pick(mem.cache_ages), mem.update_step,
                  mem.stm_tag, pick(mem.ltm_tag), pick(mem.cache_tag))


def retrieval_scores(logits: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The retrieval score of each candidate: mean over question rows of sigmoid(q·k).
    logits [B, m_q, C], w [B, m_q, 1] (1 on question rows) → [B, C]."""
    return (torch.sigmoid(logits) * w).sum(1) / w.sum(1).clamp(min=1)


class MPlus(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        d, L, N = c.hidden_size, c.num_layers, c.stm_size
        self.model = Backbone(c)
        self.lm_head = nn.Linear(d, c.vocab_size, bias=False)
        self.memory = nn.Parameter(torch.randn(L, N, d) * 0.02)
        self.bos_embedding = nn.Parameter(torch.randn(L, 1, d) * 0.02)
        self.new_memory_positional_emb = nn.Parameter(torch.zeros(1, 1, d))
        # Θ as shipped (ltm_initial_size rows): learned "blank" long-term rows.
        self.ltm = nn.ParameterList([nn.Parameter(torch.randn(c.ltm_initial_size, d) * 0.02) for _ in range(L)])
        self.register_buffer('inv_freq', rope_inv_freq(c), persistent=False)
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        for n, p in self.named_parameters():
            if n.endswith('lora_B.default.weight') or n.endswith('lora_B.decoder_adapter.weight'):
                continue
            if p.dim() == 2 and ('proj' in n or 'lm_head' in n or 'embed' in n):
                nn.init.normal_(p, 0, std)
            if n.endswith('o_proj.weight') or n.endswith('down_proj.base_layer.weight'):
                nn.init.normal_(p, 0, std / math.sqrt(2 * self.c.num_layers))

    # ---- rope ----
    def rope(self, T: int):
        pos = torch.arange(T, dtype=torch.float32, device=self.inv_freq.device)
        f = torch.outer(pos, self.inv_freq)
        emb = torch.cat((f, f), dim=-1)
        return emb.cos(), emb.sin()

    # ---- memory ----
    def fresh_memory(self, B: int, shipped: Optional[Dict[str, List[torch.Tensor]]] = None) -> Memory:
        """Memory at the start of an episode: θ = `memory`, Θ = the shipped rows.

        shipped: Θ exactly as a checkpoint stores it ({'ltm','ltm_keys','ltm_ages','ltm_rf'} per
        layer); without it Θ = the learned `ltm` rows, keys from key_proj, ages 0, rf initial.
        """
        c, L = self.c, self.c.num_layers
        N, M, s, d = c.stm_size, c.ltm_initial_size, c.selector_hidden_dim, c.hidden_size
        dev = self.memory.device
        z = lambda *shape, dtype=torch.float32: torch.zeros(*shape, dtype=dtype, device=dev)
        ltm, keys = [], []
        for l in range(L):
            v = self.ltm[l].unsqueeze(0).expand(B, M, d)
            ltm.append(v)
            keys.append(self.model.layers[l].keys(v.detach()).detach() if c.detach_hidden_state else self.model.layers[l].keys(v))
        mem = Memory(
            stm=[self.memory[l].unsqueeze(0).expand(B, N, d) for l in range(L)],
            stm_ages=[z(B, N, dtype=torch.long) for _ in range(L)],
            ltm=ltm, ltm_keys=keys,
            ltm_ages=[z(B, M, dtype=torch.long) for _ in range(L)],
            ltm_rf=[torch.full((B, M), float(c.initial_rf), device=dev) for _ in range(L)],
            cache=[z(B, 0, d) for _ in range(L)], cache_keys=[z(B, 0, s) for _ in range(L)],
            cache_ages=[z(B, 0, dtype=torch.long) for _ in range(L)],
            update_step=0,
            stm_tag=[torch.full((B, N), -1, dtype=torch.long, device=dev) for _ in range(L)],
            ltm_tag=[torch.full((B, M), -1, dtype=torch.long, device=dev) for _ in range(L)],
            cache_tag=[torch.full((B, 0), -1, dtype=torch.long, device=dev) for _ in range(L)],
        )
        if shipped is not None:
            for l in range(L):
                M_ = shipped['ltm'][l].shape[0]
                mem.ltm[l] = shipped['ltm'][l].to(dev).unsqueeze(0).expand(B, M_, d)
                mem.ltm_keys[l] = shipped['ltm_keys'][l].to(dev).unsqueeze(0).expand(B, M_, s)
                mem.ltm_ages[l] = shipped['ltm_ages'][l].to(dev).long().unsqueeze(0).expand(B, M_)
                mem.ltm_rf[l] = shipped['ltm_rf'][l].to(dev).float().unsqueeze(0).expand(B, M_)
                mem.ltm_tag[l] = torch.full((B, M_), -1, dtype=torch.long, device=dev)
        return mem

    def inject(self, mem: Memory, x: torch.Tensor, drop: Optional[List[torch.Tensor]] = None,
               tag: Optional[torch.Tensor] = None, gen: Optional[torch.Generator] = None, use_ltm: bool = True,
               grad: bool = True, tags_follow_content: bool = False):
        """Writes chunk x [B, n] into mem (in place on the Memory object). Returns deltas [L][B, K, d].

        drop: per layer [B, K] indices of θ to drop (a plan), else drawn with `gen`.
        tag: [B] provenance tag of this chunk, or [B, K] one per new row (carried with its memory
        rows for the retriever's labels).
        tags_follow_content: with n < K, the write keeps the layer outputs of the last K positions
        of [bos, θ's newest K rows, x], so its first K − n rows are θ rows n..K−1 of that tail
        re-read (attending to bos and the tail only: they carry the previous chunk's content, never
        x's). They then take the tag of the row they re-read instead of `tag`.
        use_ltm: False keeps no cache/Θ at all (θ-only training stages: nothing to pay for).
        grad: False computes this chunk's new rows without autograd (a distractor's own write is
        not trained), while the memory update stays differentiable, so gradients still reach the
        rows earlier injections wrote (they are kept or moved, never recomputed).
        """
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            deltas = self._write(mem, x)
        self._update(mem, deltas, drop, tag, gen, use_ltm, x.shape[1] if tags_follow_content else None)
        return deltas

    def _write(self, mem: Memory, x: torch.Tensor):
        c = self.c
        B, n = x.shape
        K, N = c.num_tokens, c.stm_size
        h = self.model.embed_tokens(x)
        T = 1 + K + n
        p = min(1 + K, T - K)
        cos, sin = self.rope(T)
        deltas = []
        for l, layer in enumerate(self.model.layers):
            S = torch.cat([self.bos_embedding[l].unsqueeze(0).expand(B, 1, -1), mem.stm[l][:, N - K:], h], dim=1)
            S = torch.cat([S[:, :T - K], S[:, T - K:] + self.new_memory_positional_emb], dim=1)
            y = layer(S, p, cos, sin, 'default')
            deltas.append(y[:, -K:])
            h = y[:, -n:]
        return deltas

    def _update(self, mem: Memory, deltas, drop, tag, gen, use_ltm, reread_from: Optional[int] = None):
        """reread_from: the chunk's n when its rows' tags follow content (inject)."""
        c = self.c
        K, N = c.num_tokens, c.stm_size
        B = deltas[0].shape[0]
        dev = deltas[0].device
        new_ages = torch.arange(K - 1, -1, -1, device=dev).unsqueeze(0).expand(B, K)
        for l in range(c.num_layers):
            if drop is not None:
                dropped = drop[l].to(dev)
            else:
                dropped = torch.stack([torch.randperm(N, generator=gen)[N - K:] for _ in range(B)]).to(dev)
            dropped, _ = dropped.sort(dim=1)
            keep = torch.ones(B, N, dtype=torch.bool, device=dev)
            keep.scatter_(1, dropped, False)
            kept = keep.nonzero()[:, 1].view(B, N - K)  # ascending per row
            g = lambda t, idx: torch.gather(t, 1, idx.unsqueeze(-1).expand(-1, -1, t.shape[-1])) if t.dim() == 3 else torch.gather(t, 1, idx)
            old_stm, old_ages, old_tag = mem.stm[l], mem.stm_ages[l], mem.stm_tag[l]
            mem.stm[l] = torch.cat([g(old_stm, kept), deltas[l]], dim=1)
            mem.stm_ages[l] = torch.cat([g(old_ages, kept), new_ages], dim=1)
            if tag is None:
                t = torch.full((B, K), -1, dtype=torch.long, device=dev)
            else:
                t = (tag if tag.dim() == 2 else tag.view(B, 1)).expand(B, K).to(dev)
                if reread_from is not None and reread_from < K:
                    n = reread_from
                    t = torch.cat([old_tag[:, N - K + n:], t[:, K - n:]], dim=1)
            mem.stm_tag[l] = torch.cat([g(old_tag, kept), t], dim=1)
            if not use_ltm:
                continue
            layer = self.model.layers[l]
            dv = g(old_stm, dropped)
            dk = layer.keys(dv.detach() if c.detach_hidden_state else dv)
            # Order inside one update: Θ and cached ages grow by K, then the new drops join raw.
            mem.ltm_ages[l] = mem.ltm_ages[l] + K
            mem.cache_ages[l] = mem.cache_ages[l] + K
            mem.cache[l] = torch.cat([mem.cache[l], dv], dim=1)
            mem.cache_keys[l] = torch.cat([mem.cache_keys[l], dk], dim=1)
            mem.cache_ages[l] = torch.cat([mem.cache_ages[l], g(old_ages, dropped)], dim=1)
            mem.cache_tag[l] = torch.cat([mem.cache_tag[l], g(old_tag, dropped)], dim=1)
        if not use_ltm:
            return
        mem.update_step += K
        if mem.update_step >= c.update_ltm_frequency * K:
            self._merge(mem)

    def _merge(self, mem: Memory):
        c = self.c
        R = c.retrieve_size
        for l in range(c.num_layers):
            C = mem.cache[l].shape[1]
            B = mem.cache[l].shape[0]
            ltm = torch.cat([mem.ltm[l], mem.cache[l]], dim=1)
            keys = torch.cat([mem.ltm_keys[l], mem.cache_keys[l]], dim=1)
            ages = torch.cat([mem.ltm_ages[l], mem.cache_ages[l]], dim=1)
            tags = torch.cat([mem.ltm_tag[l], mem.cache_tag[l]], dim=1)
            rf = torch.cat([mem.ltm_rf[l], torch.full((B, C), float(c.initial_rf), device=ltm.device)], dim=1)
            rf = rf - c.decay_frequency
            keep = rf[0] > 0.01  # the same for every episode: rf depends only on counts
            if int(keep.sum()) > R:
                idx = keep.nonzero()[:, 0]
                ltm, keys, ages, tags, rf = ltm[:, idx], keys[:, idx], ages[:, idx], tags[:, idx], rf[:, idx]
            else:
                rf = rf + c.decay_frequency
            mem.ltm[l], mem.ltm_keys[l], mem.ltm_ages[l], mem.ltm_tag[l], mem.ltm_rf[l] = ltm, keys, ages, tags, rf
            mem.cache[l] = ltm[:, :0]
            mem.cache_keys[l] = keys[:, :0]
            mem.cache_ages[l] = ages[:, :0]
            mem.cache_tag[l] = tags[:, :0]
        mem.update_step = 0

    # ---- retrieval + generation ----
    def retrieve(self, mem: Memory, l: int, h_q: torch.Tensor, q_mask: torch.Tensor, extra: Optional[torch.Tensor] = None):
        """Indices [B, R] of candidates (Θ first, then cache) in prefix order, and the scores.

        h_q [B, m, d] this layer's input rows of the question; q_mask [B, m] (True = question row).
        extra [E, d]: more memory rows to score (training's negatives bank), never retrieved.
        Returns (order [B, R], logits [B, m_q, M+C(+E)] (m_q = the longest question) or None when Θ is too
        small to score, weights [B, m_q, 1]).
        """
        c = self.c
        R = c.retrieve_size
        M = mem.ltm[l].shape[1]
        B = h_q.shape[0]
        dev = h_q.device
        if M < R:
            # Repeat-filled, then in ascending index order as a scored selection is: copies of one
            # entry stay side by side, larger index first among equal ages (the spec's ✎ order, and
            # the product's orderByAge); in fill order they interleaved (0, 63, 62, …) and the
            # trainer disagreed with the product wherever R > M (found by export's verify at R 256).
            sel = torch.tensor([((M - R + i) % M + M) % M for i in range(R)], device=dev).sort().values.unsqueeze(0).expand(B, R)
            ages = torch.gather(mem.ltm_ages[l], 1, sel)
            return self._order(sel, ages), None, None
        layer = self.model.layers[l]
        # The question rows lead (q_mask is a prefix per episode): score only up to the longest
        # question, not the answer rows after it, which the weights would zero anyway. Same
        # scores, same top R; the training terms shrink from m' rows to max q_len.
        m_q = int(q_mask.sum(1).max())
        h_q, q_mask = h_q[:, :m_q], q_mask[:, :m_q]
        q = layer.queries(h_q.detach() if c.detach_hidden_state else h_q)  # [B, m_q, s]
        keys = torch.cat([mem.ltm_keys[l], mem.cache_keys[l]], dim=1)     # [B, M+C, s]
        logits = q @ keys.transpose(1, 2)                                  # [B, m_q, M+C]
        w = q_mask.float().unsqueeze(-1)
        order = self.select(mem, l, retrieval_scores(logits, w).detach())
        if extra is not None and extra.shape[0]:
            ek = layer.keys(extra)                                         # [E, s]
            logits = torch.cat([logits, q @ ek.t()], dim=-1)
        return order, logits, w

    def select(self, mem: Memory, l: int, scores: torch.Tensor) -> torch.Tensor:
        """Layer l's R best candidates by scores [B, M+C], in prefix order [B, R]."""
        # The R best; equal scores: the lower candidate index first (as the product's topR).
        top = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :self.c.retrieve_size]
        top, _ = top.sort(dim=1)  # ascending candidate index, then a stable sort by age
        ages = torch.gather(torch.cat([mem.ltm_ages[l], mem.cache_ages[l]], dim=1), 1, top)
        return self._order(top, ages)

    @staticmethod
    def _order(sel, ages):
        # Oldest first; ties: larger candidate index first (stable ascending sort, reversed).
        idx = torch.sort(ages, dim=1, stable=True).indices.flip(1)
        return torch.gather(sel, 1, idx)

    def generate_logits(self, mem: Memory, tokens: torch.Tensor, q_len: torch.Tensor,
                        fixed: Optional[List[torch.Tensor]] = None, score_fixed: bool = False,
                        extra: Optional[List[torch.Tensor]] = None, episode: Optional[torch.Tensor] = None):
        """Teacher-forced generation. tokens [B, m'] = question rows then answer rows (right-padded);
        q_len [B]: how many leading rows are the question (retrieval reads only those).
        fixed: per layer retrieved indices to reuse (decoding after a prefill, or another
        implementation's choice); score_fixed: still score the candidates (the terms) under `fixed`;
        extra: per layer rows [E, d] scored after the candidates in the terms, never retrieved;
        episode [B]: question b reads episode episode[b] of mem (several questions per memory;
        without it, question b reads episode b).
        Returns (logits [B, m', V] f32, retrieved [L][B, R], retriever terms [L] of (logits, weights)).
        """
        c = self.c
        B, m = tokens.shape
        R, N = c.retrieve_size, c.stm_size
        q_mask = torch.arange(m, device=tokens.device).unsqueeze(0) < q_len.unsqueeze(1)
        h = self.model.embed_tokens(tokens)
        retrieved, terms = [], []
        p = 1 + R + N  # θ-only stages still read R rows (the shipped Θ): positions match inference
        cos, sin = self.rope(p + m)
        seen = mem if episode is None else question_view(mem, episode)
        for l, layer in enumerate(self.model.layers):
            parts = [self.bos_embedding[l].unsqueeze(0).expand(B, 1, -1)]
            if fixed is not None:
                order, lg, w = fixed[l], None, None
                if score_fixed:
                    _, lg, w = self.retrieve(seen, l, h, q_mask, extra[l] if extra else None)
            else:
                order, lg, w = self.retrieve(seen, l, h, q_mask, extra[l] if extra else None)
            cand = torch.cat([mem.ltm[l], mem.cache[l]], dim=1)
            if episode is None:
                parts += [torch.gather(cand, 1, order.unsqueeze(-1).expand(-1, -1, cand.shape[-1])), mem.stm[l]]
            else:  # question b's rows of its episode's candidates, and its episode's θ
                parts += [cand.reshape(-1, cand.shape[-1])[(episode * cand.shape[1]).unsqueeze(1) + order],
                          mem.stm[l].index_select(0, episode)]
            retrieved.append(order)
            terms.append((lg, w))
            parts.append(h)
            h = layer(torch.cat(parts, dim=1), p, cos, sin, 'decoder_adapter')
        logits = self.lm_head(self.model.norm(h)).float()
        return logits, retrieved, terms


def frozen_as_exported(s: dict) -> MPlus:
    """A run state's model in eval mode with Θ as the exported checkpoint keeps it (merges every
    100 injections, recall frequency 100: README's export flags), for the diagnostics that measure
    what the product would see."""
    model = MPlus(ModelConfig.from_hf(s['config']))
    model.load_state_dict(s['model'])
    model.eval()
    model.c.update_ltm_frequency, model.c.initial_rf = 100, 100
    return model
