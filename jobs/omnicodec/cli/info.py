"""``omnicodec info``: a bitstream's header as JSON, and which bundled codec decodes it."""

from __future__ import annotations

import argparse
import json

from omnicodec.cli._common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(sub, "info", "print a bitstream's header as JSON", "example: omnicodec info a.omc", _info)
    s.add_argument("file")


def _info(a: argparse.Namespace) -> None:
    """Reads only the header: no torch, no CompressAI (answers in a fraction of a second)."""
    from omnicodec import zoo
    from omnicodec.bitstream import Bitstream, read_stream
    from omnicodec.errors import BitstreamError

    data = read_stream(a.file)
    try:
        header = Bitstream.from_bytes(data)
    except BitstreamError as e:
        raise BitstreamError(f"{a.file}: {e}") from None
    info = {"file": a.file, **header.describe()}
    card = zoo.codec_for_fingerprint(info["codec_fp"])
    info["codec"] = ({"arch": card["arch"], "quality": card["quality"], "bundled": card["name"],
                      "decode_with": f"--codec {card['arch']}:{card['quality']}"} if card else
                     {"bundled": None, "note": "not a bundled codec: decode with --codec ARCH --codec-checkpoint PATH"})
    print(json.dumps(info, indent=2))
