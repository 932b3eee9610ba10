"""Handlers for ``omnicodec encode | decode | info | zoo``."""

from __future__ import annotations

import argparse
import os

from omnicodec import storage
from omnicodec.bitstream import Bitstream, read_stream
from omnicodec.codec import CodecSpec, load_codec
from omnicodec.errors import OmnicodecError
from omnicodec.images import load_image, save_image
from omnicodec.model import HUMAN, OmniCodec

DEFAULT_CODEC = "mbt2018-mean-small:3"


def build_model(codec_ref: str | None, codec_checkpoint: str | None, adaptors: str | None) -> OmniCodec:
    """The model a command needs: adaptors on their recorded codec (or on the codec the
    user names, which must then have the same fingerprint), or the frozen codec alone."""
    codec = None
    if codec_ref or codec_checkpoint:
        if codec_checkpoint and not codec_ref:
            raise OmnicodecError("--codec-checkpoint needs --codec ARCH to say which architecture it is")
        codec = load_codec(CodecSpec.parse(codec_ref, codec_checkpoint))
    if adaptors:
        return OmniCodec.from_checkpoint(adaptors, codec)
    return OmniCodec(codec or load_codec(DEFAULT_CODEC), with_adaptors=False)


def _placed(model: OmniCodec, device: str) -> OmniCodec:
    """Transforms on ``device`` (e.g. cuda), entropy coding on the CPU: the same streams."""
    import torch

    if device != "cpu" and device.startswith("cuda") and not torch.cuda.is_available():
        raise OmnicodecError(f"--device {device}: no CUDA device is visible on this machine")
    return model.place(device)


def encode_command(a: argparse.Namespace) -> None:
    model = _placed(build_model(a.codec, a.codec_checkpoint, a.adaptors), a.device)
    many = len(a.images) > 1 or a.out.endswith(("/", os.sep)) or (not storage.is_url(a.out) and os.path.isdir(a.out))
    for path in a.images:
        x = load_image(path)
        data = model.encode(x).to_bytes()
        target = storage.join(a.out, os.path.splitext(os.path.basename(path))[0] + ".omc") if many else a.out
        storage.write_bytes(target, data)
        h, w = x.shape[-2:]
        print(f"{path} -> {target}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp ({w}x{h})")


def decode_command(a: argparse.Namespace) -> None:
    data = read_stream(a.file)
    header = Bitstream.from_bytes(data)
    if a.task and not a.adaptors:
        raise OmnicodecError(f"--task {a.task} needs --adaptors CKPT (the T-Adaptors for that task)")
    model = build_model(a.codec, a.codec_checkpoint, a.adaptors) if (a.codec or a.codec_checkpoint or a.adaptors) \
        else _model_for_header(header)
    out = _placed(model, a.device).decode(data, tasks=[a.task] if a.task else [], human=a.human)
    save_image(out[HUMAN if a.human else a.task], a.out)
    print(f"{a.file} -> {a.out} ({header.width}x{header.height}, {'human' if a.human else a.task})")


def _model_for_header(header: Bitstream) -> OmniCodec:
    """With no codec named, find the bundled codec whose fingerprint the stream records."""
    from omnicodec import zoo

    card = zoo.codec_for_fingerprint(header.codec_fp.hex())
    if card is not None:
        return OmniCodec(load_codec(CodecSpec(arch=card["arch"], quality=card["quality"])), with_adaptors=False)
    raise OmnicodecError(f"the stream's codec {header.codec_fp.hex()} is not a bundled codec; "
                         "pass --codec ARCH[:QUALITY] [--codec-checkpoint PATH]")


def zoo_command(a: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from omnicodec import zoo

    t = Table(title=f"bundled artifacts ({zoo.WEIGHTS_DIR})")
    for col in ("name", "params", "measured on", "quality"):
        t.add_column(col)
    for card in zoo.available():
        for where, m in card.get("metrics", {}).items():
            shown = ", ".join(f"{k}={v:.4g}" for k, v in m.items() if isinstance(v, float))
            t.add_row(card["name"], str(card.get("parameters", "")), where, shown)
    Console().print(t)
