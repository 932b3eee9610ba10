"""The frozen base codec: architecture registry, loading, freezing and fingerprinting.

``load_codec`` is the one entry point: it turns an architecture name plus a quality or a
checkpoint into a frozen, ``update()``-d CompressAI model with a fingerprint.
"""

from omnicodec.codec.fingerprint import codec_fingerprint, short_fingerprint
from omnicodec.codec.latent import LatentCodec
from omnicodec.codec.registry import (
    ARCHITECTURES,
    Architecture,
    CodecSpec,
    FrozenCodec,
    build_codec,
    get_architecture,
    load_codec,
    load_codec_state_dict,
)

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "CodecSpec",
    "FrozenCodec",
    "LatentCodec",
    "build_codec",
    "codec_fingerprint",
    "get_architecture",
    "load_codec",
    "load_codec_state_dict",
    "short_fingerprint",
]
