"""A tiny random-weight Llama for MLX, built locally in about a second (no download).

    python -m dspy_mlflow build-mlx-tiny PATH

The folder it writes is a normal mlx-lm model (``config.json``, ``model.safetensors``,
``tokenizer.json``, ``tokenizer_config.json`` with a chat template and an eos token), so
``mlx_lm.load(PATH)``, ``mlx_lm.server --model PATH`` and ``dspy.LM("mlx/PATH")`` all work.
Its weights are random: what it writes is noise. It exists so the whole local-model path
(chat template, sampling, stop strings, token usage, threading, the OpenAI-compatible
server) can be exercised anywhere, fast.

The build is deterministic for a given seed and idempotent: a complete folder is left as it
is; a build goes to a temporary sibling folder renamed into place, so concurrent builders
(e.g. parallel sweep jobs) do not see half-written models.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|bos|>", "<|eos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# A small built-in corpus: enough words and DSPy-style markers for a useful BPE vocabulary.
_CORPUS = """
The quick brown fox jumps over the lazy dog. A tiny model writes noise, but it writes it fast.
Question: What is the capital of France? Answer: Paris is the capital of France.
Sentiment classification: the movie was great, the food was terrible, the service was fine.
[[ ## question ## ]] [[ ## answer ## ]] [[ ## reasoning ## ]] [[ ## completed ## ]]
Your input fields are: question (str). Your output fields are: answer (str).
All interactions will be structured in the following way, with the appropriate values filled in.
Respond with the corresponding output fields, starting with the field, then the answer.
In adhering to this structure, your objective is: Given the fields, produce the fields.
{"answer": "positive", "reasoning": "Let's think step by step in order to produce the answer."}
Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and punctuation , . ; : ! ? ( ) [ ] { } " ' - _ / \\ # * = +
system user assistant model data experiment tracking optimizer program signature prediction metric
""".strip()


def default_tiny_path() -> Path:
    """Where ``model=mlx_tiny`` keeps its model: $DSPY_MLFLOW_MLX_TINY, else
    $DSPY_MLFLOW_HOME/mlx_tiny, else ~/.cache/dspy_mlflow/mlx_tiny."""
    explicit = os.environ.get("DSPY_MLFLOW_MLX_TINY")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("DSPY_MLFLOW_HOME")
    base = Path(home).expanduser() if home else Path("~/.cache/dspy_mlflow").expanduser()
    return base / "mlx_tiny"


def is_complete(path: str | os.PathLike) -> bool:
    path = Path(path).expanduser()
    return all((path / name).is_file() for name in REQUIRED_FILES)


def _train_tokenizer(out_dir: Path) -> tuple[int, int, int, int]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _CORPUS.splitlines()
    tok.train_from_iterator(lines * 4, trainer=trainer)
    tok.save(str(out_dir / "tokenizer.json"))
    bos, eos, pad = (tok.token_to_id(t) for t in ("<|bos|>", "<|eos|>", "<|pad|>"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|bos|>",
        "eos_token": "<|eos|>",
        "pad_token": "<|pad|>",
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 4096,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2, sort_keys=True))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>"}, indent=2)
    )
    return tok.get_vocab_size(), bos, eos, pad


def _model_config(vocab_size: int, bos: int, eos: int) -> dict:
    return {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-5,
        "vocab_size": vocab_size,
        "rope_theta": 10000.0,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }


def build_tiny_model(path: str | os.PathLike, *, seed: int = 0) -> Path:
    """Build the tiny model at ``path`` (``~`` expanded) unless a complete one is there.

    Returns the resolved path. Deterministic for a given ``seed``.
    """
    target = Path(path).expanduser().resolve()
    if is_complete(target):
        return target

    import mlx.core as mx
    from mlx_lm.models.llama import Model, ModelArgs
    from mlx_lm.utils import save_config, save_model

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        vocab_size, bos, eos, _pad = _train_tokenizer(tmp)
        config = _model_config(vocab_size, bos, eos)
        mx.random.seed(seed)
        model = Model(ModelArgs.from_dict(config))
        mx.eval(model.parameters())
        save_model(tmp, model)
        save_config(dict(config), tmp / "config.json")
        (tmp / "README.md").write_text(
            "Tiny random-weight Llama built by `python -m dspy_mlflow build-mlx-tiny`; it writes noise.\n"
        )
        if is_complete(target):  # another process finished first
            return target
        if target.exists():  # an incomplete leftover: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not is_complete(target):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


