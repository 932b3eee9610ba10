"""Images as users have them: 16-bit PNGs, float and 32-bit TIFFs, alpha, palettes with a
transparent colour, CMYK, 1-bit, grey. Every reader (``omnicodec encode``, the edge client,
the server's ``/v1/analyze-image``, shards made by ``data convert``) goes through ONE
decoding function, ``images.decode_image_bytes``; a 16-bit PNG once came out white."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from omnicodec.cli import main
from omnicodec.errors import DataError
from omnicodec.images import decode_image_bytes, load_image, to_tensor

RNG = np.random.default_rng(5)
GREY16 = (RNG.random((40, 56)) * 40000 + 10000).astype(np.uint16)  # mean ~ 30000 / 65535 -> ~ 117 of 255
EXPECTED = GREY16.astype(float).mean() / 257


def _wide(mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(GREY16)
    if mode == "I;16B":
        return Image.frombytes("I;16B", GREY16.shape[::-1], GREY16.astype(">u2").tobytes())
    if mode == "I":
        return Image.fromarray(GREY16.astype(np.int32))
    return Image.fromarray((GREY16 / 65535).astype(np.float32))  # F: floats in [0, 1]


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I", "F"])
def test_wide_images_are_scaled_to_8_bit_not_clipped_to_white(mode):
    x = to_tensor(_wide(mode))
    assert x.shape == (1, 3, 40, 56)
    assert abs(float(x.mean()) * 255 - EXPECTED) < 0.6


@pytest.mark.parametrize("suffix,mode", [(".png", "I;16"), (".tif", "I"), (".tif", "F")])
def test_wide_image_files_read_as_their_grey_levels(tmp_path, suffix, mode):
    path = str(tmp_path / f"grey{suffix}")
    _wide(mode).save(path)
    assert abs(float(load_image(path).mean()) * 255 - EXPECTED) < 0.6


def test_other_modes_convert_as_a_viewer_shows_them(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    rgba = np.dstack([rgb, np.full((8, 8), 255, np.uint8)])
    rgba[:4, :, 3] = 0  # top half transparent: composited over white
    x = to_tensor(Image.fromarray(rgba))[0] * 255
    assert torch.allclose(x[:, :4], torch.full((3, 4, 8), 255.0)) and x[0, 4:].eq(200).all() and x[1, 4:].eq(0).all()
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 10, 200, 30])
    pal.paste(1, (0, 0, 8, 4))
    pal.info["transparency"] = 0  # index 0 (black) is transparent
    pal.save(tmp_path / "pal.png")
    x = load_image(str(tmp_path / "pal.png"))[0] * 255
    assert x[:, :4, :].flatten(1).mean(1).tolist() == [10, 200, 30] and x[:, 4:].eq(255).all()
    la = Image.fromarray(np.dstack([np.full((8, 8), 90, np.uint8), np.full((8, 8), 255, np.uint8)]), "LA")
    assert to_tensor(la).mul(255).eq(90).all()
    assert to_tensor(Image.new("1", (8, 8), 1)).eq(1).all()
    assert to_tensor(Image.new("L", (8, 8), 77)).mul(255).round().eq(77).all()
    assert to_tensor(Image.new("CMYK", (8, 8), (0, 0, 0, 0))).eq(1).all()  # no ink: white


def test_an_image_that_cannot_be_mapped_is_refused_in_one_line_naming_the_file(tmp_path):
    hot = Image.fromarray(np.full((8, 8), 70000, np.int32))  # beyond 16 bits
    path = str(tmp_path / "hot.tif")
    hot.save(path)
    with pytest.raises(DataError, match=r"hot\.tif: I image samples span \[70000, 70000\]") as e:
        load_image(path)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="request body: not a readable image"):
        decode_image_bytes(b"\x89PNG\r\n\x1a\n-- truncated", "request body")


def test_a_16_bit_png_survives_encode_and_decode_and_data_convert(tmp_path):
    """The reported replay: ``omnicodec encode`` of a 16-bit PNG, decoded for people, is the
    photo's grey level (it was 254.9 for a mean of 135); shards from ``data convert`` agree."""
    src = str(tmp_path / "scan16.png")
    Image.fromarray(GREY16).save(src)
    assert Image.open(src).mode == "I;16"
    omc, png = str(tmp_path / "scan16.omc"), str(tmp_path / "human.png")
    main(["encode", src, "-o", omc, "--codec", "mbt2018-mean-small:3"])
    main(["decode", omc, "--human", "-o", png])
    assert abs(float(load_image(png).mean()) * 255 - EXPECTED) < 12  # a lossy codec, but not white

    root = tmp_path / "photos" / "scan"
    root.mkdir(parents=True)
    Image.fromarray(GREY16).save(root / "a.png")
    main(["data", "convert", "--from", "imagefolder", "--root", str(tmp_path / "photos"), "--out", str(tmp_path / "sh")])
    card = json.loads((tmp_path / "sh" / "dataset.json").read_text())
    from omnicodec.data.loader import iter_samples

    [sample] = list(iter_samples(os.path.join(str(tmp_path / "sh"), card["shards"][0])))
    assert abs(float(sample.image.mean()) * 255 - EXPECTED) < 0.6


def test_the_client_without_a_server_says_so_in_one_line(tmp_path, capsys):
    """It printed httpx's ConnectError traceback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    Image.fromarray(GREY16).save(tmp_path / "a.png")
    assert main(["client", "analyze", str(tmp_path / "a.png"), "--url", f"http://127.0.0.1:{port}", "--tasks", "cls"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"omnicodec: error: no omnicodec server at http://127.0.0.1:{port} (connection refused); start one "
                   "with `omnicodec serve --adaptors RUN` or `omnicodec serve serve/omnicodec/serve/config.yaml`"]


def test_picture_sheet_captions_draw_lambda_and_are_readable():
    """pictures.png labelled points "q2 λ=2" with PIL's bitmap font: about 6 px tall, λ an empty box."""
    from PIL import ImageDraw

    from omnicodec.tasks.kinds.base import caption, caption_font

    font, greek = caption_font()
    def drawn(text: str) -> np.ndarray:
        img = Image.new("L", (40, 40))
        ImageDraw.Draw(img).text((5, 5), text, fill=255, font=font)
        return np.asarray(img)

    if greek:  # the glyph is drawn, not the font's missing-glyph box (what an unassigned code point gets)
        assert not np.array_equal(drawn("λ"), drawn("\ue000"))
    tile = caption(Image.new("RGB", (192, 192), (90, 120, 40)), ["adaptors q2 λ=2", "0.3 bpp"])
    white = np.asarray(tile).min(-1) > 200
    rows = np.flatnonzero(white.any(1))
    assert rows.size and rows.max() - rows.min() + 1 >= 2 * 12  # two lines, each at least 12 px
    box = ImageDraw.Draw(tile).textbbox((0, 0), "Ag", font=font)
    assert box[3] - box[1] >= 12
