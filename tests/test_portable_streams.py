"""Streams decode on every machine: what one process writes, a process on another float path
(oneDNN ISA, ATen capability, thread count, batched or single decoding) decodes to the
bit-identical latent; a stream whose entropy parameters would differ is refused in one
line, never decoded to garbage. The large matrix is ``benchmarks/bench_portable.py``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from omnicodec.bitstream import Bitstream
from omnicodec.cli import main
from omnicodec.codec import load_codec
from omnicodec.errors import EntropyDesync
from omnicodec.eval import portability
from omnicodec.images import save_image
from omnicodec.model import HUMAN, OmniCodec

SHORT_MATRIX = ["avx2-2t-batched", "sse41-default-3t", "native-2t-batched"]


@pytest.fixture(scope="module")
def reference(photos, photo, tmp_path_factory) -> str:
    """Real photos and real scenes, each coded by the frozen photo codec (portable and
    CompressAI-compatible) and by bundled all-in-one adaptors (human and task views)."""
    from omnicodec.data.scenes import build_scenes
    from omnicodec.eval.rd import iter_images

    root = tmp_path_factory.mktemp("portable")
    build_scenes(str(root / "scenes"), train=0, test=3, seed=11, progress=False)
    images = [("astronaut", photo[0]), *[(f"photo{i}", p[0]) for i, p in enumerate(photos)],
              *iter_images(str(root / "scenes" / "test-*.tar"))]
    systems = [
        {"name": "frozen-q3", "codec": "mbt2018-mean-photo:3", "coding": "portable", "views": [HUMAN]},
        {"name": "adaptors-q2", "adaptors": "zoo:adaptors-photo-q2", "coding": "portable",
         "views": [HUMAN, "cls", "seg", "det"]},
        {"name": "frozen-q3-compressai", "codec": "mbt2018-mean-photo:3", "coding": "compressai", "views": [HUMAN]},
    ]
    portability.encode_reference(images, systems, str(root / "ref"), keep_views=3)
    return str(root / "ref")


@pytest.mark.slow
@pytest.mark.parametrize("setting", SHORT_MATRIX)
def test_streams_decode_bit_identically_under_other_float_paths(reference, setting):
    report = portability.run_setting(reference, setting)
    for name, counts in report["systems"].items():
        if name.endswith("compressai"):  # not portable by design: refused where it would desync, never garbage
            assert counts["broken_decodes"] == 0, (setting, name, counts)
            assert counts["refused"] == counts["mismatched_streams"], (setting, name, counts)
            continue
        assert counts["mismatched_indexes"] == 0 and counts["refused"] == 0, (setting, name, counts)
        assert counts["broken_decodes"] == 0 and counts["broken_unchecked"] == 0, (setting, name, counts)
        assert counts["y_hat_exact"] == counts["streams"], (setting, name, counts)
        assert counts["max_view_error"] <= portability.VIEW_TOLERANCE, (setting, name, counts)


@pytest.fixture(scope="module")
def frozen() -> OmniCodec:
    return OmniCodec(load_codec("mbt2018-mean-photo:3"), with_adaptors=False)


def test_a_decoder_with_other_entropy_parameters_refuses_the_stream_in_one_line(frozen, photo):
    data = frozen.encode(photo).to_bytes()
    perturbed = OmniCodec(load_codec("mbt2018-mean-photo:3"), with_adaptors=False)
    with torch.no_grad():
        perturbed.codec.model.h_s[4].weight.mul_(1.01)  # another machine's hyper-synthesis
    with pytest.raises(EntropyDesync, match=r"^the entropy parameters of this stream differ on this machine: "
                                           r".*; it cannot be decoded here$"):
        perturbed.decode(data, human=True)
    scaled = OmniCodec(load_codec("mbt2018-mean-photo:3"), with_adaptors=False)
    scaled.codec.model.gaussian_conditional.scale_table.mul_(1.02)  # other CDF tables
    with pytest.raises(EntropyDesync):
        scaled.decode(data, human=True)
    assert torch.isfinite(frozen.decode(data, human=True)[HUMAN]).all()  # the stream itself is fine


def test_the_cli_refuses_a_desynced_stream_with_one_line_and_exit_2(frozen, photo, tmp_path, capsys):
    stream = frozen.encode(photo)
    bad = tmp_path / "bad.omc"
    bad.write_bytes(dataclasses.replace(stream, entropy_check=stream.entropy_check ^ 1).to_bytes())
    assert main(["decode", str(bad), "--human", "-o", str(tmp_path / "x.png"), "--codec", "mbt2018-mean-photo:3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be decoded here" in err
    assert not (tmp_path / "x.png").exists()


def test_a_batch_with_one_desynced_stream_still_decodes_the_others(frozen, photos):
    streams = [frozen.encode(p) for p in photos]
    streams[1] = dataclasses.replace(streams[1], entropy_check=streams[1].entropy_check ^ 1)
    out = frozen.decode_latents(streams, errors="return")
    assert isinstance(out[1], EntropyDesync) and "stream 1 of 3" in str(out[1])
    assert all(torch.equal(out[i][1], frozen.decode_latent(streams[i])[1]) for i in (0, 2))
    with pytest.raises(EntropyDesync, match="stream 1 of 3"):
        frozen.decode_latents(streams)


def test_version_1_streams_still_decode_as_they_were_written(frozen, photo):
    frozen.coding = "compressai"
    try:
        v2 = frozen.encode(photo)
    finally:
        frozen.coding = None
    v1 = dataclasses.replace(v2, entropy_check=None, version=1).to_bytes()
    assert v1[4] == 1 and len(v1) == len(v2.to_bytes()) + 2  # v2 drops 6 derivable bytes, adds a 4-byte check
    parsed = Bitstream.from_bytes(v1)
    assert parsed.coding == "compressai" and parsed.entropy_check is None and parsed.to_bytes() == v1
    assert torch.equal(frozen.decode(v1, human=True)[HUMAN], frozen.decode(v2.to_bytes(), human=True)[HUMAN])


def test_portable_is_the_default_and_training_sees_the_coded_parameters(frozen, photo):
    from omnicodec.images import pad_to_grid

    stream = frozen.encode(photo)
    assert stream.portable and Bitstream.from_bytes(stream.to_bytes()).portable
    padded, _ = pad_to_grid(photo)
    with torch.no_grad():
        estimate = frozen.codec.latent.estimate(frozen.analysis(padded), noise=False)
    _, y_hat = frozen.decode_latent(stream)
    assert (estimate.y_hat - y_hat).abs().max() < 1e-5  # the means the decoder adds, not the float net's


@pytest.mark.heavy  # 30 artifacts loaded in two processes: make test-cluster, which CI runs
def test_bundled_artifacts_load_and_code_identically_under_the_default_cpu_capability(photo, tmp_path):
    """ATen's scalar path rounds float kernels differently; every bundled codec and adaptor
    set must still load to its card's fingerprint and decode every stream bit-identically."""
    from omnicodec import zoo

    names = [f"codec:{c['arch']}:{c['quality']}" for c in zoo.available() if c.get("kind") == "codec"]
    names += [f"adaptors:zoo:{p.name}" for p in sorted(zoo.WEIGHTS_DIR.iterdir()) if p.is_dir()]
    save_image(photo, str(tmp_path / "photo.png"))
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    outputs = {}
    for env in ({}, {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}):
        tag = "default" if env else "native"
        done = subprocess.run([sys.executable, str(script), str(tmp_path), tag, *names], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[tag] = done.stdout.strip().splitlines()[-1]
    assert outputs["native"] == outputs["default"]
    native = outputs["native"].split()
    assert len(native) == len(names) and all("|" in n for n in native)


_PROBE = '''
import hashlib, os, sys, torch
from omnicodec.codec import load_codec
from omnicodec.images import load_image
from omnicodec.model import OmniCodec, HUMAN
folder, tag, names = sys.argv[1], sys.argv[2], sys.argv[3:]
x = load_image(os.path.join(folder, "photo.png"))
out = []
for name in names:
    kind, _, ref = name.partition(":")
    model = OmniCodec.from_checkpoint(ref) if kind == "adaptors" else OmniCodec(load_codec(ref), with_adaptors=False)
    if tag == "native":  # the streams of the encoding machine, decoded again under the other float path
        open(os.path.join(folder, name.replace(":", "_") + ".omc"), "wb").write(model.encode(x).to_bytes())
    data = open(os.path.join(folder, name.replace(":", "_") + ".omc"), "rb").read()
    _, y_hat = model.decode_latent(data)
    ident = [model.codec.fingerprint, model.codec.latent.tables_digest().hex(), str(model.s_fingerprint()),
             hashlib.sha256(y_hat.numpy().tobytes()).hexdigest()[:16]]
    out.append("|".join(ident))
print(" ".join(out))
'''


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the CPU matrix above runs everywhere)")
def test_a_stream_encoded_with_cuda_transforms_decodes_identically_on_the_cpu_and_back(photo):
    cpu = OmniCodec(load_codec("mbt2018-mean-photo:3"), with_adaptors=False)
    gpu = OmniCodec(load_codec("mbt2018-mean-photo:3"), with_adaptors=False).place("cuda")
    for stream in (gpu.encode(photo), cpu.encode(photo)):
        assert torch.equal(cpu.decode_latent(stream)[1], gpu.decode_latent(stream)[1])
        views = cpu.decode(stream, human=True)[HUMAN], gpu.decode(stream, human=True)[HUMAN].cpu()
        assert (views[0] - views[1]).abs().max() <= portability.VIEW_TOLERANCE


@pytest.mark.parametrize("layer", [
    torch.nn.Conv2d(6, 5, 3, padding=2, dilation=2), torch.nn.ConvTranspose2d(6, 5, 5, stride=2, padding=2,
                                                                             output_padding=1),
    torch.nn.Conv2d(6, 5, 1)])
def test_the_exact_hyper_synthesis_matches_the_float_layer_within_its_grid(layer):
    """Every convolution shape CompressAI's hyper-synthesis uses, plus dilation: the integer
    network computes the same function to ~1e-3 (the price of portability), exactly
    reproducibly, and refuses layers it cannot compute exactly."""
    from omnicodec.codec.exact import ExactHyperSynthesis, NotPortable

    torch.manual_seed(0)
    net = torch.nn.Sequential(layer, torch.nn.LeakyReLU())
    exact = ExactHyperSynthesis(net)
    x = torch.randn(2, 6, 7, 9) * 4
    got = exact(x)
    assert (got - net(x).double()).abs().max() < 2e-3
    assert torch.equal(got, ExactHyperSynthesis(net)(x)) and torch.equal(got[1:], exact(x[1:]))  # batch-invariant
    with pytest.raises(NotPortable):
        ExactHyperSynthesis(torch.nn.Sequential(torch.nn.Conv2d(6, 6, 3, groups=2)))
    with pytest.raises(NotPortable):
        ExactHyperSynthesis(torch.nn.Sequential(layer, torch.nn.GELU()))
