#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin) into a whisper.cpp ggml model.

Standard library only (Python 3.11+).  The input is read tensor by tensor in
bounded chunks, so memory use stays at a few MB whatever the model size.

The ggml header, mel filters and vocabulary are not part of a CTranslate2
model; they are taken from a "vocabulary-only" ggml file such as whisper.cpp's
``models/for-tests-ggml-tiny.en.bin``: everything after its first 48 bytes
(magic + 11 hyper-parameters) is copied verbatim, and the hyper-parameters are
recomputed from the CTranslate2 tensor shapes.

Usage:
    python3 convert_ct2.py --ct2 model.bin --vocab for-tests-ggml-tiny.en.bin \
        --out ggml-tiny.en.bin

A model split into several files (e.g. model.bin.part1 model.bin.part2) can be
given as ``--ct2 PART1 PART2 ...``; the parts are read as one concatenated
stream.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
from dataclasses import dataclass
from typing import BinaryIO, Iterator

GGML_MAGIC = 0x67676D6C
GGML_HEADER_BYTES = 4 + 11 * 4
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_FTYPE_F16 = 1

CT2_BINARY_VERSION = 6
CT2_SPEC_NAME = "WhisperSpec"

# CTranslate2 dtype codes -> (name, bytes per element)
CT2_DTYPES = {
    0: ("float32", 4),
    1: ("int8", 1),
    2: ("int16", 2),
    3: ("int32", 4),
    4: ("float16", 2),
    5: ("bfloat16", 2),
}
FLOAT_DTYPES = {0, 4, 5}

CHUNK_ELEMS = 1 << 18  # elements copied/converted per step (about 1 MB)


class ConvertError(Exception):
    """A problem with the input files, reported without a traceback."""


# --------------------------------------------------------------------------
# Reading CTranslate2 model.bin
# --------------------------------------------------------------------------


class ConcatReader:
    """Read-only, seekable view of one or more files laid end to end."""

    def __init__(self, paths: list[str]) -> None:
        self._parts: list[tuple[int, int, BinaryIO]] = []  # (start, size, fh)
        offset = 0
        for path in paths:
            try:
                fh = open(path, "rb")
            except OSError as exc:
                self.close()
                raise ConvertError(f"cannot open CTranslate2 model {path!r}: {exc}") from exc
            size = os.fstat(fh.fileno()).st_size
            self._parts.append((offset, size, fh))
            offset += size
        self.size = offset
        self.pos = 0

    def close(self) -> None:
        for _, _, fh in self._parts:
            fh.close()
        self._parts = []

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset + n > self.size:
            raise ConvertError(
                f"CTranslate2 model is truncated: need bytes {offset}..{offset + n}, "
                f"file has {self.size}"
            )
        out = bytearray()
        for start, size, fh in self._parts:
            if n == 0:
                break
            end = start + size
            if offset >= end:
                continue
            fh.seek(offset - start)
            take = min(n, end - offset)
            data = fh.read(take)
            if len(data) != take:
                raise ConvertError("short read from CTranslate2 model (file changed while reading?)")
            out += data
            offset += take
            n -= take
        return bytes(out)

    def read(self, n: int) -> bytes:
        data = self.read_at(self.pos, n)
        self.pos += n
        return data

    def unpack(self, fmt: str):
        fmt = "<" + fmt
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise ConvertError(
                f"CTranslate2 model is truncated: variable data runs past the end "
                f"({self.pos + n} > {self.size} bytes)"
            )
        self.pos += n

    def read_string(self) -> str:
        (length,) = self.unpack("H")
        raw = self.read(length)
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConvertError(f"bad string in CTranslate2 model at offset {self.pos}") from exc


@dataclass
class Variable:
    name: str
    shape: tuple[int, ...]
    dtype: int
    offset: int  # absolute offset of the raw data
    nbytes: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def itemsize(self) -> int:
        return CT2_DTYPES[self.dtype][1]


class CT2Model:
    def __init__(self, paths: list[str]) -> None:
        self.reader = ConcatReader(paths)
        self.variables: dict[str, Variable] = {}
        self.aliases: dict[str, str] = {}
        self.scalars: dict[str, int | float] = {}
        try:
            self._parse()
        except struct.error as exc:
            raise ConvertError(f"CTranslate2 model is truncated or corrupt: {exc}") from exc

    def close(self) -> None:
        self.reader.close()

    def _parse(self) -> None:
        r = self.reader
        if r.size < 4:
            raise ConvertError("CTranslate2 model is empty or truncated")
        (version,) = r.unpack("I")
        if version != CT2_BINARY_VERSION:
            raise ConvertError(
                f"unsupported CTranslate2 binary version {version} (expected {CT2_BINARY_VERSION}); "
                "is this a CTranslate2 model.bin?"
            )
        spec = r.read_string()
        if spec != CT2_SPEC_NAME:
            raise ConvertError(f"CTranslate2 model spec is {spec!r}, expected {CT2_SPEC_NAME!r}")
        (self.revision,) = r.unpack("I")
        (count,) = r.unpack("I")
        for _ in range(count):
            name = r.read_string()
            (rank,) = r.unpack("B")
            shape = tuple(r.unpack(f"{rank}I")) if rank else ()
            dtype, nbytes = r.unpack("BI")
            if dtype not in CT2_DTYPES:
                raise ConvertError(f"variable {name!r} has unknown dtype code {dtype}")
            var = Variable(name, shape, dtype, r.pos, nbytes)
            if var.numel * var.itemsize != nbytes:
                raise ConvertError(
                    f"variable {name!r}: shape {shape} x {CT2_DTYPES[dtype][0]} does not match "
                    f"its byte count {nbytes}"
                )
            if rank == 0:
                self.scalars[name] = self._decode_scalar(var, r.read(nbytes))
            else:
                r.skip(nbytes)
            self.variables[name] = var
        if r.pos + 4 <= r.size:
            (n_alias,) = r.unpack("I")
            for _ in range(n_alias):
                alias = r.read_string()
                target = r.read_string()
                self.aliases[alias] = target
        if r.pos != r.size:
            raise ConvertError(
                f"CTranslate2 model has {r.size - r.pos} unexpected trailing bytes "
                "(wrong or mis-ordered parts?)"
            )

    @staticmethod
    def _decode_scalar(var: Variable, data: bytes) -> int | float:
        fmt = {0: "<f", 1: "<b", 2: "<h", 3: "<i", 4: "<e"}.get(var.dtype)
        if fmt is None:  # bfloat16
            return struct.unpack("<f", b"\0\0" + data)[0]
        return struct.unpack(fmt, data)[0]

    def get(self, name: str) -> Variable:
        seen = set()
        while name in self.aliases and name not in self.variables:
            if name in seen:
                raise ConvertError(f"alias loop at {name!r}")
            seen.add(name)
            name = self.aliases[name]
        try:
            return self.variables[name]
        except KeyError:
            raise ConvertError(
                f"tensor {name!r} is missing from the CTranslate2 model (not a Whisper model?)"
            ) from None

    def scalar(self, name: str) -> int:
        if name not in self.scalars:
            raise ConvertError(f"scalar {name!r} is missing from the CTranslate2 model")
        return int(self.scalars[name])

    def layer_count(self, prefix: str) -> int:
        pat = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
        indices = {int(m.group(1)) for n in self.variables if (m := pat.match(n))}
        if not indices:
            raise ConvertError(f"no {prefix}/layer_N tensors in the CTranslate2 model")
        if indices != set(range(len(indices))):
            raise ConvertError(f"{prefix} layers are not numbered 0..N-1: {sorted(indices)}")
        return len(indices)


# --------------------------------------------------------------------------
# Conversion plan
# --------------------------------------------------------------------------


@dataclass
class Tensor:
    """One ggml tensor: where its data comes from and how it is written."""

    ggml_name: str
    source: str  # CT2 variable name
    out_type: int  # GGML_TYPE_F16 / GGML_TYPE_F32
    shape: tuple[int, ...]  # expected output shape, row-major (outermost first)
    part: tuple[int, int] | None = None  # (index, count): split dim 0 in `count` equal parts


def build_plan(m: CT2Model) -> tuple[list[int], list[Tensor]]:
    emb = m.get("decoder/embeddings/weight")
    enc_pos = m.get("encoder/position_encodings/encodings")
    dec_pos = m.get("decoder/position_encodings/encodings")
    conv1 = m.get("encoder/conv1/weight")
    for v, rank in ((emb, 2), (enc_pos, 2), (dec_pos, 2), (conv1, 3)):
        if len(v.shape) != rank:
            raise ConvertError(f"tensor {v.name!r} has shape {v.shape}, expected rank {rank}")

    n_vocab, n_text_state = emb.shape
    n_audio_ctx, n_audio_state = enc_pos.shape
    n_text_ctx = dec_pos.shape[0]
    n_mels = conv1.shape[1]
    n_audio_head = m.scalar("encoder/num_heads")
    n_text_head = m.scalar("decoder/num_heads")
    n_audio_layer = m.layer_count("encoder")
    n_text_layer = m.layer_count("decoder")
    if dec_pos.shape[1] != n_text_state:
        raise ConvertError(f"decoder position encodings {dec_pos.shape} do not match n_text_state={n_text_state}")

    hparams = [
        n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
        n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, GGML_FTYPE_F16,
    ]

    F16, F32 = GGML_TYPE_F16, GGML_TYPE_F32
    plan: list[Tensor] = []

    def add(name, src, out_type, shape, part=None):
        plan.append(Tensor(name, src, out_type, tuple(shape), part))

    def linear(gname, src, n_out, n_in, part=None, bias=True):
        add(f"{gname}.weight", f"{src}/weight", F16, (n_out, n_in), part)
        if bias:
            add(f"{gname}.bias", f"{src}/bias", F32, (n_out,), part)

    def norm(gname, src, n):
        add(f"{gname}.weight", f"{src}/gamma", F32, (n,))
        add(f"{gname}.bias", f"{src}/beta", F32, (n,))

    def mlp(gp, sp, n):
        norm(f"{gp}.mlp_ln", f"{sp}/ffn/layer_norm", n)
        linear(f"{gp}.mlp.0", f"{sp}/ffn/linear_0", 4 * n, n)
        linear(f"{gp}.mlp.2", f"{sp}/ffn/linear_1", n, 4 * n)

    def self_attn(gp, sp, n):
        norm(f"{gp}.attn_ln", f"{sp}/self_attention/layer_norm", n)
        qkv = f"{sp}/self_attention/linear_0"
        linear(f"{gp}.attn.query", qkv, n, n, (0, 3))
        linear(f"{gp}.attn.key", qkv, n, n, (1, 3), bias=False)
        linear(f"{gp}.attn.value", qkv, n, n, (2, 3))
        linear(f"{gp}.attn.out", f"{sp}/self_attention/linear_1", n, n)

    # Order follows whisper.cpp's whisper_model_load() (src/whisper.cpp).
    n = n_audio_state
    add("encoder.positional_embedding", "encoder/position_encodings/encodings", F32, (n_audio_ctx, n))
    add("encoder.conv1.weight", "encoder/conv1/weight", F16, (n, n_mels, 3))
    add("encoder.conv1.bias", "encoder/conv1/bias", F32, (n, 1))
    add("encoder.conv2.weight", "encoder/conv2/weight", F16, (n, n, 3))
    add("encoder.conv2.bias", "encoder/conv2/bias", F32, (n, 1))
    norm("encoder.ln_post", "encoder/layer_norm", n)
    for i in range(n_audio_layer):
        gp, sp = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        mlp(gp, sp, n)
        self_attn(gp, sp, n)

    n = n_text_state
    add("decoder.positional_embedding", "decoder/position_encodings/encodings", F32, (n_text_ctx, n))
    add("decoder.token_embedding.weight", "decoder/embeddings/weight", F16, (n_vocab, n))
    norm("decoder.ln", "decoder/layer_norm", n)
    for i in range(n_text_layer):
        gp, sp = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        mlp(gp, sp, n)
        self_attn(gp, sp, n)
        norm(f"{gp}.cross_attn_ln", f"{sp}/attention/layer_norm", n)
        linear(f"{gp}.cross_attn.query", f"{sp}/attention/linear_0", n, n)
        kv = f"{sp}/attention/linear_1"
        linear(f"{gp}.cross_attn.key", kv, n, n, (0, 2), bias=False)
        linear(f"{gp}.cross_attn.value", kv, n, n, (1, 2))
        linear(f"{gp}.cross_attn.out", f"{sp}/attention/linear_2", n, n)

    # Check every source tensor before writing anything.
    for t in plan:
        v = m.get(t.source)
        if v.dtype not in FLOAT_DTYPES:
            raise ConvertError(
                f"tensor {v.name!r} is {CT2_DTYPES[v.dtype][0]}; only float16/float32/bfloat16 "
                "CTranslate2 models can be converted (re-export without int8 quantization)"
            )
        numel = 1
        for d in t.shape:
            numel *= d
        count = t.part[1] if t.part else 1
        if v.numel != numel * count or (v.shape and v.shape[0] % count):
            raise ConvertError(
                f"tensor {v.name!r} has shape {v.shape}; expected {count} x {t.shape} for {t.ggml_name!r}"
            )
    return hparams, plan


# --------------------------------------------------------------------------
# Writing ggml
# --------------------------------------------------------------------------


def convert_chunk(data: bytes, src_dtype: int, out_type: int) -> bytes:
    src_f16 = src_dtype == 4
    if out_type == GGML_TYPE_F16 and src_f16:
        return data
    if out_type == GGML_TYPE_F32 and src_dtype == 0:
        return data
    # decode to Python floats
    if src_f16:
        vals = struct.unpack(f"<{len(data) // 2}e", data)
    elif src_dtype == 0:
        vals = struct.unpack(f"<{len(data) // 4}f", data)
    else:  # bfloat16: the high half of a float32
        n = len(data) // 2
        widened = bytearray(4 * n)
        widened[2::4] = data[0::2]
        widened[3::4] = data[1::2]
        vals = struct.unpack(f"<{n}f", widened)
    if out_type == GGML_TYPE_F32:
        return struct.pack(f"<{len(vals)}f", *vals)
    try:
        return struct.pack(f"<{len(vals)}e", *vals)
    except (OverflowError, struct.error) as exc:
        raise ConvertError(f"value out of float16 range: {exc}") from exc


def tensor_chunks(m: CT2Model, t: Tensor) -> Iterator[bytes]:
    v = m.get(t.source)
    start, nbytes = v.offset, v.nbytes
    if t.part is not None:
        index, count = t.part
        part_bytes = nbytes // count
        start += index * part_bytes  # row-major: a block of rows is contiguous
        nbytes = part_bytes
    step = CHUNK_ELEMS * v.itemsize
    done = 0
    while done < nbytes:
        take = min(step, nbytes - done)
        yield convert_chunk(m.reader.read_at(start + done, take), v.dtype, t.out_type)
        done += take


def read_vocab_blob(path: str) -> tuple[list[int], bytes]:
    """Return (hparams, bytes after the header) of a ggml (vocabulary-only) file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConvertError(f"cannot read vocabulary file {path!r}: {exc}") from exc
    if len(data) < GGML_HEADER_BYTES + 8:
        raise ConvertError(f"vocabulary file {path!r} is too short")
    magic, *hparams = struct.unpack("<I11i", data[:GGML_HEADER_BYTES])
    if magic != GGML_MAGIC:
        raise ConvertError(f"vocabulary file {path!r} is not a ggml file (bad magic {magic:#x})")
    blob = data[GGML_HEADER_BYTES:]
    # Walk mel filters and vocabulary so a wrong file fails here, not in whisper.cpp.
    try:
        n_mel, n_fft = struct.unpack_from("<ii", blob, 0)
        off = 8 + 4 * n_mel * n_fft
        (n_words,) = struct.unpack_from("<i", blob, off)
        off += 4
        for _ in range(n_words):
            (length,) = struct.unpack_from("<I", blob, off)
            off += 4 + length
    except struct.error:
        raise ConvertError(f"vocabulary file {path!r} is truncated") from None
    if off > len(blob):
        raise ConvertError(f"vocabulary file {path!r} is truncated")
    if off != len(blob):
        raise ConvertError(
            f"vocabulary file {path!r} has tensors or extra data after the vocabulary; "
            "use a vocabulary-only file such as whisper.cpp's models/for-tests-ggml-*.bin"
        )
    hparams.append(n_mel)  # handy for the caller's checks
    return hparams, blob


def write_tensor_header(out: BinaryIO, t: Tensor) -> None:
    name = t.ggml_name.encode("utf-8")
    dims = list(reversed(t.shape))  # ggml: innermost dimension first
    out.write(struct.pack("<iii", len(dims), len(name), t.out_type))
    out.write(struct.pack(f"<{len(dims)}i", *dims))
    out.write(name)


def convert(ct2_paths: list[str], vocab_path: str, out_path: str, quiet: bool = False) -> int:
    vocab_hparams, blob = read_vocab_blob(vocab_path)
    m = CT2Model(ct2_paths)
    try:
        hparams, plan = build_plan(m)
        n_vocab, n_mels = hparams[0], hparams[9]
        if vocab_hparams[0] != n_vocab:
            raise ConvertError(
                f"vocabulary file is for n_vocab={vocab_hparams[0]} but the model has n_vocab={n_vocab} "
                "(English-only vs multilingual mix-up?)"
            )
        if vocab_hparams[-1] != n_mels:
            raise ConvertError(
                f"vocabulary file has {vocab_hparams[-1]} mel filters but the model expects {n_mels}"
            )

        tmp_path = f"{out_path}.tmp.{os.getpid()}"
        written = 0
        try:
            with open(tmp_path, "wb", buffering=1 << 20) as out:
                out.write(struct.pack("<I11i", GGML_MAGIC, *hparams))
                out.write(blob)
                for t in plan:
                    write_tensor_header(out, t)
                    for chunk in tensor_chunks(m, t):
                        out.write(chunk)
                        written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_path, out_path)
        except BaseException:
            try:
                os.unlink(tmp_path)
            except FileNotFoundError:
                pass
            raise
    finally:
        m.close()

    if not quiet:
        names = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                 "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")
        print(" ".join(f"{k}={v}" for k, v in zip(names, hparams)))
        print(f"wrote {out_path}: {len(plan)} tensors, {written / 1e6:.1f} MB of weights, "
              f"{os.path.getsize(out_path) / 1e6:.1f} MB total")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Convert a CTranslate2 Whisper model.bin into a whisper.cpp ggml model (f16)."
    )
    p.add_argument("--ct2", required=True, nargs="+", metavar="MODEL_BIN",
                   help="CTranslate2 model.bin (several paths = parts of one file, in order)")
    p.add_argument("--vocab", required=True, metavar="GGML_VOCAB",
                   help="vocabulary-only ggml file, e.g. whisper.cpp models/for-tests-ggml-tiny.en.bin")
    p.add_argument("--out", required=True, metavar="GGML_OUT", help="output ggml model path")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = p.parse_args(argv)
    try:
        return convert(args.ct2, args.vocab, args.out, quiet=args.quiet)
    except ConvertError as exc:
        print(f"convert_ct2: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
