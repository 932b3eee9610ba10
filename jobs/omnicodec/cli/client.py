"""``omnicodec client analyze``: the edge side of serving: encode here, send only the bytes."""

from __future__ import annotations

import argparse
import json
import os

from omnicodec.cli._common import add_command, add_group


def register(sub: argparse._SubParsersAction) -> None:
    csub = add_group(sub, "client", "edge client: encode locally, send only the bytes",
                     "Edge client for a running omnicodec server.", "client_command", "ACTION")
    s = add_command(csub, "analyze", "encode an image locally (or send a .omc) and print the server's answers",
                    "example: omnicodec client analyze cam.jpg --url http://127.0.0.1:8000 --tasks cls,seg,det",
                    _analyze)
    s.add_argument("input", help="image file, or an existing .omc bitstream")
    s.add_argument("--url", default="http://127.0.0.1:8000")
    s.add_argument("--tasks", default="cls")
    s.add_argument("--token", default=os.environ.get("OMNICODEC_TOKEN"), help="bearer token (or $OMNICODEC_TOKEN)")
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--lmbda", type=float, default=None,
                   help="a variable-rate encoder codes at this rate (its lambda); the stream records it")


def _analyze(a: argparse.Namespace) -> None:
    from omnicodec.serve.client import analyze_file

    result = analyze_file(a.input, a.url, a.tasks, a.token, a.timeout, a.lmbda)
    for t in result["tasks"].values():
        if "png_base64" in t:
            t["png_base64"] = t["png_base64"][:32] + "..."
    print(json.dumps(result, indent=2))
