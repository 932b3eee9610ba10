"""What ``encode`` and ``decode`` share: the model a command line names, placed on a device."""

from __future__ import annotations

from omnicodec.codec import CodecSpec, load_codec
from omnicodec.errors import OmnicodecError
from omnicodec.model import OmniCodec

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


def placed(model: OmniCodec, device: str) -> OmniCodec:
    """Transforms on ``device`` (e.g. cuda), entropy coding on the CPU: the same streams."""
    import torch

    if device != "cpu" and device.startswith("cuda") and not torch.cuda.is_available():
        raise OmnicodecError(f"--device {device}: no CUDA device is visible on this machine")
    return model.place(device)
