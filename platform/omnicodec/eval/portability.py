"""The portability matrix: streams written in one process, decoded in others on other float paths.

A distributed deployment never encodes and decodes on the same machine. This module
simulates other machines on one box by starting decoder processes with other float
kernels: oneDNN's ISA cap (``ONEDNN_MAX_CPU_ISA``: AVX-512, AVX2, SSE4.1), ATen's CPU
capability (``ATEN_CPU_CAPABILITY``: avx512, avx2, default), thread counts, and batched or
single decoding. ``encode_reference`` writes each system's streams plus what the encoder
computed (scale indexes, ``y_hat``, and the decoded views of the first images);
``decode_check`` (run in the other process via ``python -m omnicodec.eval.portability``)
recomputes them and counts mismatches. ``tests/test_portable_streams.py`` runs a short
matrix in ``make test``; ``benchmarks/bench_portable.py`` the large one.

A system is a recipe, never a pickled model: ``{"name", "codec"}`` (a frozen codec,
``ARCH:QUALITY``) or ``{"name", "adaptors"}`` (a checkpoint location), with ``coding``
``portable`` or ``compressai`` and the views to compare (``human`` and task names).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# name -> (environment of the decoder process, batched decoding)
SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    "native-2t-batched": ({"OMP_NUM_THREADS": "2"}, True),
    "onednn-avx2-1t": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}, False),
    "avx2-2t-batched": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "2"}, True),
    "sse41-default-3t": ({"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "3"},
                         False),
    "aten-default-1t-batched": ({"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}, True),
    "onednn-sse41-2t-batched": ({"ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "2"}, True),
    "aten-avx2-3t": ({"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "3"}, False),
}
VIEW_TOLERANCE = 1e-3  # decoded views (0..1) may differ by g_s's float noise: < 1/4 of a grey level
GARBAGE = 0.5  # a y_hat element off by half a quantisation step or more: the range decoder desynced


def build_system(system: dict[str, Any]):
    from omnicodec.codec import load_codec
    from omnicodec.model import OmniCodec

    if system.get("adaptors"):
        model = OmniCodec.from_checkpoint(system["adaptors"])
    else:
        model = OmniCodec(load_codec(system["codec"]), with_adaptors=False)
    model.coding = system["coding"]
    return model


def _views(model, stream, y_hat: torch.Tensor, views: Sequence[str]) -> dict[str, torch.Tensor]:
    from omnicodec.model import HUMAN

    tasks = [v for v in views if v != HUMAN]
    return model.reconstruct(stream, y_hat, tasks, human=HUMAN in views)


@torch.no_grad()
def encode_reference(images: Sequence[tuple[str, torch.Tensor]], systems: Sequence[dict[str, Any]], out: str,
                     keep_views: int = 8) -> dict[str, Any]:
    """Encode every image with every system into ``out``; record what the encoder saw."""
    os.makedirs(out, exist_ok=True)
    manifest = {"systems": list(systems), "keys": [k for k, _ in images], "keep_views": keep_views}
    for system in systems:
        model = build_system(system)
        folder = os.path.join(out, system["name"])
        os.makedirs(folder, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for i, (_, x) in enumerate(images):
            stream = model.encode(x)
            with open(os.path.join(folder, f"{i:05d}.omc"), "wb") as f:
                f.write(stream.to_bytes())
            arrays[f"idx{i}"] = _indexes(model, stream).numpy().astype(np.uint8)
            _, y_hat = model.decode_latent(stream)
            arrays[f"y{i}"] = y_hat.numpy()
            if i < keep_views:
                for name, v in _views(model, stream, y_hat, system["views"]).items():
                    arrays[f"v{i}-{name}"] = v.numpy()
        np.savez(os.path.join(folder, "reference.npz"), **arrays)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return manifest


def _indexes(model, stream) -> torch.Tensor:
    return model.codec.latent.scale_indexes([stream.strings[1]], stream.z_shape, stream.coding)[0]


@torch.no_grad()
def decode_check(folder: str, batched: bool) -> dict[str, Any]:
    """In this process: recompute every stream's indexes, decode it (checked, and for the
    count of what an unchecked decoder would return, unchecked) and compare with the encoder."""
    from omnicodec.bitstream import Bitstream

    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    report: dict[str, Any] = {"isa": _float_path(), "batched": batched, "systems": {}}
    for system in manifest["systems"]:
        model = build_system(system)
        sdir = os.path.join(folder, system["name"])
        ref = np.load(os.path.join(sdir, "reference.npz"))
        streams = [Bitstream.from_bytes(open(os.path.join(sdir, f"{i:05d}.omc"), "rb").read())
                   for i in range(len(manifest["keys"]))]
        counts = {"streams": len(streams), "mismatched_streams": 0, "mismatched_indexes": 0, "indexes": 0,
                  "refused": 0, "broken_decodes": 0, "broken_unchecked": 0, "y_hat_exact": 0, "max_view_error": 0.0}
        decoded = model.decode_latents(streams, errors="return") if batched else \
            [model.decode_latents([s], errors="return")[0] for s in streams]
        for i, (stream, got) in enumerate(zip(streams, decoded)):
            _count_stream(model, system, stream, got, ref, i, i < manifest["keep_views"], counts)
        report["systems"][system["name"]] = counts
    return report


def _count_stream(model, system, stream, got, ref, i: int, with_views: bool, counts: dict[str, Any]) -> None:
    from omnicodec.errors import EntropyDesync

    diff = int((_indexes(model, stream).numpy().astype(np.uint8) != ref[f"idx{i}"]).sum())
    counts["indexes"] += int(ref[f"idx{i}"].size)
    counts["mismatched_indexes"] += diff
    counts["mismatched_streams"] += bool(diff)
    y_ref = torch.from_numpy(ref[f"y{i}"])
    unchecked = model.codec.latent.decompress_batch([list(stream.strings)], stream.z_shape, stream.coding)
    counts["broken_unchecked"] += bool((unchecked - y_ref).abs().max() >= GARBAGE)
    if isinstance(got, EntropyDesync):
        counts["refused"] += 1
        return
    _, y_hat = got
    counts["y_hat_exact"] += bool(torch.equal(y_hat, y_ref))
    if (y_hat - y_ref).abs().max() >= GARBAGE or not torch.isfinite(y_hat).all():
        counts["broken_decodes"] += 1
    if with_views:
        for name, v in _views(model, stream, y_hat, system["views"]).items():
            err = float((v - torch.from_numpy(ref[f"v{i}-{name}"])).abs().max())
            counts["max_view_error"] = max(counts["max_view_error"], err)
            counts["broken_decodes"] += err > VIEW_TOLERANCE


def _float_path() -> dict[str, Any]:
    return {"aten": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native")}


def run_setting(folder: str, setting: str, timeout: float = 1800) -> dict[str, Any]:
    """``decode_check`` in a fresh process started with ``setting``'s float path."""
    env_extra, batched = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")}
    env.update(env_extra)
    cmd = [sys.executable, "-m", "omnicodec.eval.portability", "decode", folder, *(["--batched"] if batched else [])]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"decoder under {setting} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m omnicodec.eval.portability", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode", help="decode a reference folder here and print the counts as JSON")
    d.add_argument("folder")
    d.add_argument("--batched", action="store_true")
    a = p.parse_args(argv)
    if os.environ.get("OMP_NUM_THREADS"):  # the setting's thread count, whatever the package defaults to
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    print(json.dumps(decode_check(a.folder, a.batched)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
