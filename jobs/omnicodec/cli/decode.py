"""``omnicodec decode``: one bitstream -> the reconstruction one task (or a person) receives."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from omnicodec.cli._common import add_command
from omnicodec.errors import OmnicodecError

if TYPE_CHECKING:
    from omnicodec.bitstream import Bitstream
    from omnicodec.model import OmniCodec


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "decode", "a bitstream -> the reconstruction for one task, or for humans",
                    "example: omnicodec decode a.omc --task seg -o a.seg.png\n"
                    "         omnicodec decode a.omc --human -o a.png --codec mbt2018-mean:3 --codec-checkpoint ckpt.pth.tar",
                    _decode)
    s.add_argument("file")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--task")
    g.add_argument("--human", action="store_true")
    s.add_argument("-o", "--out", required=True)
    s.add_argument("--codec", default=None)
    s.add_argument("--codec-checkpoint")
    s.add_argument("--adaptors")
    s.add_argument("--device", default="cpu", help="where g_s and the T-Adaptors run (entropy decoding: the CPU)")


def _decode(a: argparse.Namespace) -> None:
    from omnicodec.bitstream import Bitstream, read_stream
    from omnicodec.cli._coding import build_model, placed
    from omnicodec.images import save_image
    from omnicodec.model import HUMAN

    data = read_stream(a.file)
    header = Bitstream.from_bytes(data)
    if a.task and not a.adaptors:
        raise OmnicodecError(f"--task {a.task} needs --adaptors CKPT (the T-Adaptors for that task)")
    model = build_model(a.codec, a.codec_checkpoint, a.adaptors) if (a.codec or a.codec_checkpoint or a.adaptors) \
        else _model_for_header(header)
    out = placed(model, a.device).decode(data, tasks=[a.task] if a.task else [], human=a.human)
    save_image(out[HUMAN if a.human else a.task], a.out)
    print(f"{a.file} -> {a.out} ({header.width}x{header.height}, {'human' if a.human else a.task})")


def _model_for_header(header: Bitstream) -> OmniCodec:
    """With no codec named, find the bundled codec whose fingerprint the stream records."""
    from omnicodec import zoo
    from omnicodec.codec import CodecSpec, load_codec
    from omnicodec.model import OmniCodec

    card = zoo.codec_for_fingerprint(header.codec_fp.hex())
    if card is not None:
        return OmniCodec(load_codec(CodecSpec(arch=card["arch"], quality=card["quality"])), with_adaptors=False)
    raise OmnicodecError(f"the stream's codec {header.codec_fp.hex()} is not a bundled codec; "
                         "pass --codec ARCH[:QUALITY] [--codec-checkpoint PATH]")
