"""Codec overhead: omnicodec encode+decode against CompressAI's raw compress/decompress.

Same frozen model, same images (scikit-image's bundled photos, sizes not multiples of
64), measured in the same run. Rows:

- frozen codec through omnicodec (container, fingerprints, CRC, padding): the cost of the
  platform itself, goal <= 1.05x in each of 3 runs (baseline and frozen path interleaved,
  so a slow moment of the machine hits both);
- untrained adaptors: the adaptor blocks run (and are exact identities);
- trained adaptors: non-zero adaptor weights, human view and one task view.

Also prints the trainable-parameter fraction at default sizes with 3 tasks (goal <= 3%).
Run: .venv/bin/python benchmarks/bench_codec.py
"""

from __future__ import annotations

import torch
from PIL import Image

from common import machine, print_table, timeit
from omnicodec.codec import load_codec
from omnicodec.images import pad_to_grid, to_tensor
from omnicodec.model import OmniCodec


def photos() -> list[torch.Tensor]:
    import skimage.data as d

    return [to_tensor(Image.fromarray(a)) for a in
            (d.astronaut()[:500, :500], d.coffee(), d.chelsea(), d.rocket(), d.hubble_deep_field()[:600, :900],
             d.immunohistochemistry())]


CODEC = "mbt2018-mean-photo:3"  # the bundled photo codec every curve uses
RUNS = 3


def main() -> None:
    torch.set_num_threads(2)
    codec = load_codec(CODEC)
    imgs = photos()
    raw = codec.model

    def compressai() -> None:
        for x in imgs:
            xp, _ = pad_to_grid(x)
            with torch.no_grad():
                out = raw.compress(xp)
                raw.decompress(out["strings"], out["shape"])

    def ours(model: OmniCodec, tasks: list[str], human: bool) -> None:
        for x in imgs:
            model.decode(model.encode(x).to_bytes(), tasks=tasks, human=human)

    frozen = OmniCodec(codec, with_adaptors=False)
    untrained = OmniCodec(codec, ["cls", "seg", "det"])
    trained = OmniCodec(codec, ["cls", "seg", "det"])
    torch.manual_seed(0)
    for p in trained.parameters():
        torch.nn.init.normal_(p, std=0.02)

    runs = []
    for run in range(RUNS):
        base, ours_t = timeit(compressai, repeat=5), timeit(lambda: ours(frozen, [], True), repeat=5)
        runs.append([run + 1, base, ours_t, ours_t / base])
    pixels = sum(x.shape[-2] * x.shape[-1] for x in imgs)
    print_table(f"frozen path: encode+decode of {len(imgs)} photos ({pixels / 1e6:.2f} MPixel), {CODEC}, median of 5 "
                f"per run; {machine()}", ["run", "CompressAI s (baseline)", "omnicodec frozen s", "x baseline"], runs,
                f"goal <= 1.05x in every run: worst {max(r[3] for r in runs):.3f}x")
    rows = [["CompressAI compress+decompress (baseline)", base, 1.0]]
    for name, fn in [("omnicodec, untrained adaptors (human decode)", lambda: ours(untrained, [], True)),
                     ("omnicodec, trained adaptors (human decode)", lambda: ours(trained, [], True)),
                     ("omnicodec, trained adaptors (1 task decode)", lambda: ours(trained, ["cls"], False))]:
        t = timeit(fn, repeat=5)
        rows.append([name, t, t / base])
    print_table(f"encode+decode of {len(imgs)} photos ({pixels / 1e6:.2f} MPixel), median of 5; {machine()}",
                ["path", "seconds", "x baseline"], rows)
    rep = untrained.parameter_report()
    print_table("trainable parameters at default sizes, 3 tasks (goal <= 3% of the codec)",
                ["codec", "S-Adaptor", "T-Adaptors (3 tasks)", "trainable", "fraction"],
                [[rep["codec"], rep["s_adaptor"], sum(rep["t_adaptors"].values()), rep["trainable"],
                  f"{100 * rep['fraction_of_codec']:.2f}%"]])


if __name__ == "__main__":
    main()
