"""A tiny random-weight llama GGUF that llama.cpp loads: gibberish text, valid JSON under a grammar.

The tokenizer (a real 32k SentencePiece vocabulary) is copied from `ggml-vocab-llama-spm.gguf`, which
llama.cpp ships next to its sources (`.ci/llama_server.sh` puts it in the cache folder); the weights are
random numbers from `numpy.random.default_rng(seed)`, so the file is byte-identical per seed.

Two tweaks make llama.cpp's structured output work with it:

* Constrained output finishes within a few dozen tokens: every token embedding carries a large
  constant in dimension 0, so after the final RMS norm the hidden state is almost `[8, 0, 0, ...]`
  whatever the context, and column 0 of the output matrix acts as a per-token logit bias. Tokens made
  only of `"`, `}`, `]`, `,` and spaces (with at least one of the first three) get +6, every other token
  N(0, 1). Under a grammar a string, array or object then closes as soon as the grammar lets it; without
  this a near-uniform model picks a closing quote out of ~32k allowed tokens only once every few hundred
  tokens and JSON answers run into `max_tokens`. Free text (no grammar) is therefore mostly punctuation
  gibberish such as `"},",]"},`.
* `tokenizer.ggml.add_space_prefix` is false (see the comment where it is written): with the SPM
  default every `response_format` request fails with "Failed to initialize samplers".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TinyLlamaShape", "make_tiny_llama_gguf"]


@dataclass(frozen=True)
class TinyLlamaShape:
    """Hyper-parameters of the tiny model (defaults: ~9 MB file, loads in about 0.1 s)."""

    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 4
    n_ff: int = 128
    n_ctx: int = 2048
    rms_eps: float = 1e-5
    # logit bias for "closing" punctuation tokens versus N(0, 1) for every other token
    closing_bias: float = 6.0


# Only these characters (plus spaces) may appear in a token that gets the closing bias.
_CLOSING_CHARS = frozenset('"}],')
_CLOSERS = frozenset('"}]')
_SPM_SPACE = "\u2581"  # SentencePiece's visible space


_SCALARS: dict[int, str] = {
    0: "<u1",
    1: "<i1",
    2: "<u2",
    3: "<i2",
    4: "<u4",
    5: "<i4",
    6: "<f4",
    7: "<u1",
    10: "<u8",
    11: "<i8",
    12: "<f8",
}
_STRING, _ARRAY = 8, 9  # gguf.GGUFValueType.STRING / ARRAY


def _read_metadata(path: Path) -> dict[str, Any]:
    """The key/value metadata of a little-endian GGUF v2/v3 file.

    A minimal reader: `gguf.GGUFReader` builds a numpy view per array element and takes ~1.5 s for a
    32k-token vocabulary; this takes ~30 ms. Numeric arrays come back as numpy arrays, string arrays as
    lists of str, scalars as Python values.
    """
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    if version < 2:
        raise ValueError(f"{path}: GGUF version {version} is not supported")
    pos = 24

    def read_str() -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        text = bytes(buf[pos : pos + n]).decode("utf-8")
        pos += n
        return text

    def read_value(vtype: int) -> Any:
        nonlocal pos
        if vtype == _STRING:
            return read_str()
        if vtype == _ARRAY:
            itype, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            if itype in _SCALARS:
                dt = np.dtype(_SCALARS[itype])
                arr = np.frombuffer(buf, dtype=dt, count=count, offset=pos).copy()
                pos += dt.itemsize * count
                return arr.astype(bool) if itype == 7 else arr
            return [read_value(itype) for _ in range(count)]
        dt = np.dtype(_SCALARS[vtype])
        val = np.frombuffer(buf, dtype=dt, count=1, offset=pos)[0].item()
        pos += dt.itemsize
        return bool(val) if vtype == 7 else val

    out: dict[str, Any] = {}
    for _ in range(n_kv):
        key = read_str()
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        out[key] = read_value(vtype)
    return out


def _read_vocab(vocab: Path) -> dict[str, Any]:
    """The tokenizer fields of a llama.cpp vocabulary GGUF (tokens, scores, types, special ids)."""
    meta = _read_metadata(vocab)

    def field(name: str) -> Any:
        if name not in meta:
            raise ValueError(f"{vocab}: no {name!r} field; is this a llama.cpp vocab GGUF?")
        return meta[name]

    model = field("tokenizer.ggml.model")
    if model != "llama":
        raise ValueError(f"{vocab}: tokenizer model is {model!r}, expected 'llama' (SentencePiece)")
    return {
        "tokens": list(field("tokenizer.ggml.tokens")),
        "scores": np.asarray(field("tokenizer.ggml.scores"), dtype=np.float32),
        "types": np.asarray(field("tokenizer.ggml.token_type"), dtype=np.int32),
        "bos": int(field("tokenizer.ggml.bos_token_id")),
        "eos": int(field("tokenizer.ggml.eos_token_id")),
        "unk": int(field("tokenizer.ggml.unknown_token_id")),
        "add_bos": meta.get("tokenizer.ggml.add_bos_token"),
        "add_eos": meta.get("tokenizer.ggml.add_eos_token"),
    }


def _closing_token_ids(tokens: list[str], types: np.ndarray) -> np.ndarray:
    """Ids of normal tokens made only of `"`, `}`, `]`, `,` and spaces, with at least one `"`, `}` or `]`.

    Pure-comma tokens are left out: a likely `,` would keep arrays and free-form objects growing.
    """
    normal = 1  # gguf.TokenType.NORMAL
    ids = []
    for i, tok in enumerate(tokens):
        if types[i] != normal:
            continue
        chars = set(tok.replace(_SPM_SPACE, " ").replace(" ", ""))
        if chars and chars <= _CLOSING_CHARS and chars & _CLOSERS:
            ids.append(i)
    return np.asarray(ids, dtype=np.int64)


def make_tiny_llama_gguf(path: Path, *, vocab: Path, seed: int = 0, shape: TinyLlamaShape | None = None) -> Path:
    """Write a tiny random-weight llama-architecture GGUF to `path` and return `path`.

    `vocab` is llama.cpp's `ggml-vocab-llama-spm.gguf` (tokenizer only, no tensors); its tokens, scores,
    token types and bos/eos/unk ids are copied. Weights: F16 matrices, F32 norms, drawn from
    `numpy.random.default_rng(seed)`, so the same seed gives the same bytes. No chat template is
    stored: llama-server then uses its built-in default (ChatML).
    """
    import gguf

    s = shape or TinyLlamaShape()
    if s.n_embd % s.n_head:
        raise ValueError("n_embd must be a multiple of n_head")
    head_dim = s.n_embd // s.n_head
    v = _read_vocab(Path(vocab))
    n_vocab = len(v["tokens"])
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int, std: float = 0.02) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(np.float16)

    ones = np.ones(s.n_embd, dtype=np.float32)

    # Residual stream dominated by a constant in dim 0 (see the module docstring).
    embd = rng.standard_normal((n_vocab, s.n_embd), dtype=np.float32) * 0.02
    embd[:, 0] = 4.0
    # After RMS norm, h ~ [sqrt(n_embd), ~0, ...]; column 0 of `output` scaled so logits ~ bias.
    h0 = float(np.sqrt(s.n_embd))
    bias = rng.standard_normal(n_vocab, dtype=np.float32)
    bias[_closing_token_ids(v["tokens"], v["types"])] += s.closing_bias
    out = rng.standard_normal((n_vocab, s.n_embd), dtype=np.float32) * 0.02
    out[:, 0] = bias / h0

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(tmp, arch="llama")
    w.add_name(f"pdp-tiny-llama-seed{seed}")
    w.add_context_length(s.n_ctx)
    w.add_embedding_length(s.n_embd)
    w.add_block_count(s.n_layer)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_layer_norm_rms_eps(s.rms_eps)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(v["tokens"])
    w.add_token_scores(v["scores"].tolist())  # the writer wants Python sequences, not ndarrays
    w.add_token_types(v["types"].tolist())
    w.add_bos_token_id(v["bos"])
    w.add_eos_token_id(v["eos"])
    w.add_unk_token_id(v["unk"])
    if v["add_bos"] is not None:
        w.add_add_bos_token(bool(v["add_bos"]))
    if v["add_eos"] is not None:
        w.add_add_eos_token(bool(v["add_eos"]))
    # SentencePiece models default to prefixing a space; llama.cpp then turns the chat template's
    # generation prompt "<|im_start|>assistant\n" into "\u2581<", "|", ... and drops that first token
    # when it prefills the response-format grammar, so every JSON request fails with "Failed to
    # initialize samplers". Without the prefix the prompt tokenizes to exactly its own characters.
    w.add_add_space_prefix(False)

    w.add_tensor("token_embd.weight", embd.astype(np.float16))
    for i in range(s.n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", mat(s.n_embd, s.n_embd))
        w.add_tensor(p + "attn_k.weight", mat(s.n_head_kv * head_dim, s.n_embd))
        w.add_tensor(p + "attn_v.weight", mat(s.n_head_kv * head_dim, s.n_embd))
        w.add_tensor(p + "attn_output.weight", mat(s.n_embd, s.n_embd))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", mat(s.n_ff, s.n_embd))
        w.add_tensor(p + "ffn_up.weight", mat(s.n_ff, s.n_embd))
        w.add_tensor(p + "ffn_down.weight", mat(s.n_embd, s.n_ff))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", out.astype(np.float16))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return path
