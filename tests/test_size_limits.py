"""Image sizes the code cannot serve well are refused up front, in one line naming the file
(issue 27): ``omnicodec encode`` of a 6000x4000 photo ran 76 s and took 7.5 GB (the codec
codes whole images); the cap (``sizes.MAX_PIXELS``) is raised with --max-pixels or
OMNICODEC_MAX_PIXELS. The Serve side of the same rules is in tests/test_serve.py."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from omnicodec.cli import main
from omnicodec.errors import DataError
from omnicodec.images import decode_image_bytes
from omnicodec.sizes import MAX_PIXELS, MAX_PIXELS_ENV, max_pixels


def _photo(path, width: int, height: int) -> str:
    import skimage.data

    Image.fromarray(skimage.data.chelsea()).resize((width, height)).save(path, quality=90)
    return str(path)


def test_encoding_a_6000x4000_photo_is_refused_in_one_line_before_any_work(tmp_path, capsys):
    big = _photo(tmp_path / "IMG_0001.jpg", 6000, 4000)
    t0 = time.perf_counter()
    assert main(["encode", big, "-o", str(tmp_path / "out.omc")]) == 2
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"IMG_0001.jpg: 6000x4000 = 24.0 megapixels exceeds the cap of {MAX_PIXELS} pixels" in err[0]
    assert "--max-pixels" in err[0] and MAX_PIXELS_ENV in err[0]
    assert took < 15, f"refusing took {took:.1f} s"  # coding it took 76 s (and 7.5 GB)
    assert not (tmp_path / "out.omc").exists()


def test_the_cap_is_raised_with_the_flag_or_the_environment(tmp_path, capsys, monkeypatch):
    photo = _photo(tmp_path / "small.jpg", 160, 120)
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    assert max_pixels() == 10000
    assert main(["encode", photo, "-o", str(tmp_path / "a.omc")]) == 2
    assert "160x120" in capsys.readouterr().err
    assert main(["encode", photo, "-o", str(tmp_path / "a.omc"), "--max-pixels", "20000"]) == 0
    assert (tmp_path / "a.omc").stat().st_size > 0
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match="OMNICODEC_MAX_PIXELS='lots'"):
        max_pixels()


def test_the_cap_is_checked_on_the_header_before_the_pixels_are_decoded():
    """A PNG whose header says 9000x9000 (and whose pixels are missing) is refused by its size."""
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", 9000, 9000)  # IHDR width, height, then the chunk's CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(DataError, match="huge.png: 9000x9000 = 81.0 megapixels exceeds the cap"):
        decode_image_bytes(bytes(data), "huge.png", limit=MAX_PIXELS)
