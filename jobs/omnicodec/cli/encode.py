"""``omnicodec encode``: images -> one bitstream each, whatever the number of tasks that read it."""

from __future__ import annotations

import argparse
import os

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "encode", "images -> omnicodec bitstreams",
                    "Encodes each image once. With --adaptors the shared S-Adaptor is used and the codec comes\n"
                    "from the checkpoint; otherwise the frozen codec alone. Streams are portable: the entropy\n"
                    "parameters are computed in exact integer arithmetic, so any machine (other CPU, GPU host,\n"
                    "thread count) decodes them identically; --coding compressai writes CompressAI's own\n"
                    "compress() bytes instead (not portable; a decoder that would desync refuses the stream).\n"
                    "A variable-rate codec (mbt2018-mean-photo-vr) codes at any rate of its range: --lmbda or\n"
                    "--rate-position picks it, the stream records it, decoding needs nothing else.\n\n"
                    "example: omnicodec encode a.png b.jpg -o out/ --codec mbt2018-mean:3 --codec-checkpoint ckpt.pth.tar",
                    _encode)
    s.add_argument("images", nargs="+")
    s.add_argument("-o", "--out", required=True, help="output file (one image) or folder")
    s.add_argument("--codec", default=None, help="ARCH[:QUALITY] (default: the adaptors' codec or mbt2018-mean-small:3)")
    s.add_argument("--codec-checkpoint", help="CompressAI checkpoint path or URL")
    s.add_argument("--adaptors", help="adaptor checkpoint folder")
    s.add_argument("--device", default="cpu", help="where g_a/g_s and the adaptors run (cpu, cuda, cuda:1); "
                   "entropy coding always runs on the CPU, so streams decode identically everywhere")
    s.add_argument("--coding", choices=["portable", "compressai"], default=None,
                   help="portable (default where the codec allows; every machine decodes it identically) or "
                        "compressai (byte-identical to CompressAI's compress(); decodes only where the float "
                        "kernels agree)")
    rate = s.add_mutually_exclusive_group()
    rate.add_argument("--lmbda", type=float, default=None,
                      help="variable-rate codecs: the rate as the lambda it was trained for (inside the codec's range)")
    rate.add_argument("--rate-position", type=float, default=None, metavar="P",
                      help="variable-rate codecs: the gain position, 0 (lowest rate) .. levels-1 (default: QUALITY-1)")
    s.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse images of more than N pixels before coding them (default: $OMNICODEC_MAX_PIXELS or "
                        "16777216 = 4096x4096; the codec codes whole images: a 6000x4000 photo took 76 s and 7.5 GB)")


def _encode(a: argparse.Namespace) -> None:
    from omnicodec.sizes import max_pixels

    limit = a.max_pixels if a.max_pixels is not None else max_pixels()
    for path in a.images:  # every file's size, from its header, before the codec is even imported
        _check_size(path, limit)
    from omnicodec import storage
    from omnicodec.cli._coding import build_model, placed
    from omnicodec.images import load_image

    model = placed(build_model(a.codec, a.codec_checkpoint, a.adaptors), a.device)
    model.coding = a.coding
    position = model.rate_position(a.rate_position, a.lmbda)  # a fixed-rate codec refuses a rate: one line
    many = len(a.images) > 1 or a.out.endswith(("/", os.sep)) or (not storage.is_url(a.out) and os.path.isdir(a.out))
    for path in a.images:
        x = load_image(path, limit)
        data = model.encode(x, position).to_bytes()
        target = storage.join(a.out, os.path.splitext(os.path.basename(path))[0] + ".omc") if many else a.out
        storage.write_bytes(target, data)
        h, w = x.shape[-2:]
        at = "" if position is None else f", rate position {position:g}"
        print(f"{path} -> {target}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp ({w}x{h}{at})")


def _check_size(path: str, limit: int) -> None:
    """Refuse an image over the pixel cap from its header alone, in one line naming it."""
    from PIL import Image, UnidentifiedImageError

    from omnicodec import storage
    from omnicodec.sizes import check_pixels

    if storage.is_url(path) or not os.path.isfile(path):
        return  # load_image reads it and says what is wrong (checking the cap too)
    try:
        with Image.open(path) as img:
            size = img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return  # load_image says it is unreadable, naming it
    check_pixels(*size, path, limit)
