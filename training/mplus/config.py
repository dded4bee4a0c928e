"""Model shapes for training and the Hugging Face `config.json` they export to.

The exported config carries every key `mplus-8b` ships (MPLUS-SPEC.md "Config keys used"), so the
product's config parser (src/model/config.ts) reads it unchanged. `from_hf` reads the same keys
back, which is how the golden check and export tests build a model from a checkpoint folder.
"""
from dataclasses import dataclass
from typing import Optional


@dataclass
class ModelConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    num_tokens: int          # K: memory rows written per injection
    num_blocks: int
    num_ltm_blocks: int
    selector_hidden_dim: int
    ltm_initial_size: int
    lora_r: int = 16
    lora_alpha: float = 32
    lora_dropout: float = 0.0
    update_ltm_frequency: int = 60
    decay_frequency: float = 1
    initial_rf: float = 10
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: Optional[dict] = None
    max_position_embeddings: int = 4096
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    detach_hidden_state: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def stm_size(self) -> int:  # N
        return (self.num_blocks - self.num_ltm_blocks) * self.num_tokens

    @property
    def retrieve_size(self) -> int:  # R
        return self.num_ltm_blocks * self.num_tokens

    def to_hf(self) -> dict:
        c = {
            'architectures': ['MPlus'],
            'model_type': 'memoryllm',
            'vocab_size': self.vocab_size,
            'hidden_size': self.hidden_size,
            'num_hidden_layers': self.num_layers,
            'num_attention_heads': self.num_heads,
            'num_key_value_heads': self.num_kv_heads,
            'intermediate_size': self.intermediate_size,
            'hidden_act': 'silu',
            'rms_norm_eps': self.rms_norm_eps,
            'rope_theta': self.rope_theta,
            'max_position_embeddings': self.max_position_embeddings,
            'tie_word_embeddings': False,
            'attention_bias': False,
            'mlp_bias': False,
            'pretraining_tp': 1,
            'bos_token_id': self.bos_token_id,
            'eos_token_id': self.eos_token_id,
            'torch_dtype': 'float32',
            'num_tokens': self.num_tokens,
            'num_blocks': self.num_blocks,
            'num_ltm_blocks': self.num_ltm_blocks,
            'add_bos_embedding': True,
            'add_decoder_lora': True,
            'drop_memory_per_layer': True,
            'lora_config': {
                'r': self.lora_r, 'lora_alpha': self.lora_alpha, 'lora_dropout': self.lora_dropout,
                'inference_mode': True,
                'target_modules': ['q_proj', 'v_proj', 'k_proj', 'up_proj', 'down_proj', 'gate_proj'],
            },
            'update_ltm_mode': 'immediate',
            'update_ltm_frequency': self.update_ltm_frequency,
            'decay_frequency': self.decay_frequency,
            'initial_rf_when_moving_stm_to_ltm': self.initial_rf,
            'ltm_initial_size': self.ltm_initial_size,
            'add_selector': True,
            'selector_hidden_dim': self.selector_hidden_dim,
            'num_selector_layers': 2,
            'map_from_hidden_states': True,
            'detach_hidden_state': self.detach_hidden_state,
            'add_encoder_retriever': True,
        }
        if self.rope_scaling is not None:
            c['rope_scaling'] = dict(self.rope_scaling)
        return c

    @staticmethod
    def from_hf(c: dict) -> 'ModelConfig':
        lc = c.get('lora_config') or {}
        if c.get('num_selector_layers', 2) != 2 or not c.get('map_from_hidden_states', True):
            raise ValueError('the trainer supports num_selector_layers 2 with map_from_hidden_states')
        eos = c.get('eos_token_id')
        return ModelConfig(
            vocab_size=c['vocab_size'], hidden_size=c['hidden_size'], num_layers=c['num_hidden_layers'],
            num_heads=c['num_attention_heads'], num_kv_heads=c.get('num_key_value_heads', c['num_attention_heads']),
            intermediate_size=c['intermediate_size'], num_tokens=c.get('num_tokens', 256),
            num_blocks=c.get('num_blocks', 50), num_ltm_blocks=c.get('num_ltm_blocks', 10),
            selector_hidden_dim=c.get('selector_hidden_dim', 256), ltm_initial_size=c.get('ltm_initial_size', 0),
            lora_r=lc.get('r', 8), lora_alpha=lc.get('lora_alpha', 8), lora_dropout=0.0,
            update_ltm_frequency=c.get('update_ltm_frequency', 60), decay_frequency=c.get('decay_frequency', 1),
            initial_rf=c.get('initial_rf_when_moving_stm_to_ltm', 10), rms_norm_eps=c.get('rms_norm_eps', 1e-6),
            rope_theta=c.get('rope_theta', 10000.0), rope_scaling=c.get('rope_scaling'),
            max_position_embeddings=c.get('max_position_embeddings', 2048), bos_token_id=c.get('bos_token_id'),
            eos_token_id=eos, detach_hidden_state=c.get('detach_hidden_state', True),
        )


# Presets. Vocabulary sizes are filled in from the tokenizer at build time.
PRESETS = {
    # CI smoke training: seconds per hundred steps on 2 cores.
    'smoke': dict(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
                  num_tokens=16, num_blocks=6, num_ltm_blocks=2, selector_hidden_dim=16, ltm_initial_size=32,
                  lora_r=4, lora_alpha=8, update_ltm_frequency=4, initial_rf=3),
    # The shipped lookup model, sized for 2 shared cores where elementwise work, not matmuls,
    # bounds a step: d 128, 4 layers, K 64 rows per injection (a ≤ 64-token context is stored
    # uncompressed), R 256 retrieved, θ 512 rows (8 injections), so a question reads a 769-row prefix.
    # R was 64 (one chunk's worth) until position 26,558: then a read needed nearly all of a fact's
    # rows back, and the product at 4k–32k tokens found 0.4–11% of them and answered nothing. With
    # R 256 (grow.py; run28) it finds 25–58% of them at 4k–8k and answered 19/72, for ~1.7× a step.
    # Θ starts with 256 learned rows: fewer than R and retrieval would never read the dropped
    # cache before Θ's first merge (MPLUS-SPEC's repeat-fill; BENCHMARKS.md, fifteenth session).
    # θ was 128 rows (2 injections) until step 13,871: every chunk then dropped half of what θ held
    # of the one before, and the bench's one-line facts were answered 11/16 alone, 2/64 four at a
    # time; 216 steps after growing θ ×4 (grow.py), 16/16 and 11/64, for 1.5× the step time
    # (BENCHMARKS.md, ninth session). mplus-8b keeps θ = 40 injections.
    # Θ's capacity (update_ltm_frequency × initial_rf) is set for the product at export.
    'small': dict(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=384,
                  num_tokens=64, num_blocks=12, num_ltm_blocks=4, selector_hidden_dim=32, ltm_initial_size=256,
                  lora_r=8, lora_alpha=16, update_ltm_frequency=2, initial_rf=10),
}


def preset(name: str, vocab_size: int, bos: int, eos: int) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f'unknown preset {name!r} (known: {", ".join(PRESETS)})')
    return ModelConfig(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, **PRESETS[name])
