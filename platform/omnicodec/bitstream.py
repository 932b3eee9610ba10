"""The omnicodec container: one self-describing, checksummed bitstream per image.

Layout of version 2 (all integers big-endian; see docs/bitstream.md for the rationale)::

    offset  size  field
    0       4     magic b"OMNC"
    4       1     version (2)
    5       1     flags: bit 0 = encoded through an S-Adaptor; bit 1 = CompressAI-compatible
                  coding (float hyper-synthesis, not portable); bit 2 = a rate position
                  follows the header (variable-rate codecs); bits 3-7 reserved (0)
    6       8     codec fingerprint (first 8 bytes of its sha256)
    14      8     S-Adaptor fingerprint (zeros when bit 0 of flags is clear)
    22      2     original height H
    24      2     original width W
    26      4     entropy check: CRC32 of the CDF tables' digest and the map of scale indexes
    30      1     number of entropy-coded strings n (1..8): y first, then z
   (31      2     rate position * 256, only when flag bit 2 is set: which gain the
                  variable-rate codec coded with, so decoding needs nothing else)
    31(+2)  4*n   length of each string
    ...           the strings, in order, as CompressAI's range coder wrote them
    end-4   4     CRC32 of every byte before it

Fixed-rate codecs never set bit 2, so their streams are byte-identical to before it existed.
Padding (to multiples of 64) and the hyper-latent's size follow from H and W. Version 1
(no entropy check, float coding, padding and z size stored: 45 bytes of overhead for two
strings, v2 has 43) is still read and decoded the way it was written.

Parsing validates every field before use and raises ``BitstreamError`` naming the fault
(and the byte offset where one applies). Nothing else escapes, and parsing is O(size).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass, field

from omnicodec.errors import BitstreamError

MAGIC = b"OMNC"
VERSION = 2
VERSIONS = (1, 2)
FLAG_S_ADAPTOR = 0x01
FLAG_COMPAT = 0x02  # version 2: coded with CompressAI's float hyper-synthesis (not portable)
FLAG_RATE = 0x04  # version 2: a uint16 rate position (1/256 steps) follows the fixed header
RATE_SCALE = 256
PORTABLE, COMPRESSAI = "portable", "compressai"
ALIGN = 64  # CompressAI hyperprior models downsample by 2**6
MAX_STRINGS = 8
NO_ADAPTOR = bytes(8)

_FIXED = {1: struct.Struct(">4sBB8s8sHHBBHHB"),  # everything up to the string count
          2: struct.Struct(">4sBB8s8sHHIB")}
_FLAGS = {1: FLAG_S_ADAPTOR, 2: FLAG_S_ADAPTOR | FLAG_COMPAT | FLAG_RATE}
_LEN = struct.Struct(">I")
_RATE = struct.Struct(">H")
_CRC = struct.Struct(">I")
HEADER_SIZE = _FIXED[VERSION].size  # 31 (33 in version 1)


@dataclass(frozen=True)
class Bitstream:
    """One image, encoded once; decodable for any task and for human viewing."""

    codec_fp: bytes
    adaptor_fp: bytes
    height: int
    width: int
    pad_bottom: int
    pad_right: int
    z_shape: tuple[int, int]
    strings: list[bytes] = field(default_factory=list)
    coding: str = PORTABLE  # how the entropy parameters were computed (see codec/latent.py)
    entropy_check: int | None = None  # CRC32 the decoder's scale indexes must reproduce (v1: None)
    version: int = VERSION
    rate_position: float | None = None  # variable-rate codecs: the gain position coded with

    def __post_init__(self) -> None:
        _check(self.version in VERSIONS, f"version {self.version} (known: {VERSIONS})")
        _check(self.coding in (PORTABLE, COMPRESSAI), f"coding '{self.coding}'")
        _check(self.version == 1 or (self.entropy_check is not None and 0 <= self.entropy_check < 2**32),
               "a version 2 stream needs a 32-bit entropy check")
        _check(self.version == 2 or (self.coding == COMPRESSAI and self.entropy_check is None),
               "version 1 streams are CompressAI-coded and carry no entropy check")
        _check(len(self.codec_fp) == 8, "codec fingerprint must be 8 bytes")
        _check(len(self.adaptor_fp) == 8, "S-Adaptor fingerprint must be 8 bytes")
        _check(1 <= self.height <= 0xFFFF and 1 <= self.width <= 0xFFFF,
               f"image size {self.height}x{self.width} outside 1..65535")
        _check(0 <= self.pad_bottom < ALIGN and 0 <= self.pad_right < ALIGN,
               f"padding {self.pad_bottom},{self.pad_right} outside 0..63")
        ph, pw = self.height + self.pad_bottom, self.width + self.pad_right
        _check(ph % ALIGN == 0 and pw % ALIGN == 0,
               f"padded size {ph}x{pw} is not a multiple of {ALIGN}")
        _check(tuple(self.z_shape) == (ph // ALIGN, pw // ALIGN),
               f"z shape {tuple(self.z_shape)} does not match padded size {ph}x{pw}")
        _check(1 <= len(self.strings) <= MAX_STRINGS, f"{len(self.strings)} strings (1..{MAX_STRINGS})")
        _check(self.rate_position is None or (self.version == 2 and 0 <= self.rate_position * RATE_SCALE < 2**16
                                              and float(self.rate_position * RATE_SCALE).is_integer()),
               f"rate position {self.rate_position} is not a multiple of 1/{RATE_SCALE} in 0..256 (version 2)")

    @property
    def has_adaptor(self) -> bool:
        return self.adaptor_fp != NO_ADAPTOR

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def portable(self) -> bool:
        return self.coding == PORTABLE

    def to_bytes(self) -> bytes:
        flags = ((FLAG_S_ADAPTOR if self.has_adaptor else 0) | (FLAG_COMPAT if self.version == 2 and not self.portable else 0)
                 | (FLAG_RATE if self.rate_position is not None else 0))
        if self.version == 1:
            middle: tuple = (self.pad_bottom, self.pad_right, self.z_shape[0], self.z_shape[1])
        else:
            middle = (self.entropy_check,)
        head = _FIXED[self.version].pack(MAGIC, self.version, flags, self.codec_fp, self.adaptor_fp,
                                         self.height, self.width, *middle, len(self.strings))
        if self.rate_position is not None:
            head += _RATE.pack(int(self.rate_position * RATE_SCALE))
        body = head + b"".join(_LEN.pack(len(s)) for s in self.strings) + b"".join(self.strings)
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Bitstream:
        data = bytes(data)
        size = len(data)
        if size < len(MAGIC):
            raise BitstreamError(f"truncated at byte {size}: too short for the magic")
        if data[:4] != MAGIC:
            raise BitstreamError(f"bad magic {data[:4]!r} at byte 0 (expected {MAGIC!r}): not an omnicodec bitstream")
        if data[4:5] and data[4] not in VERSIONS:
            raise BitstreamError(f"unsupported version {data[4]} at byte 4 (this reader knows "
                                 f"{', '.join(map(str, VERSIONS))}; a newer omnicodec wrote it)")
        version = data[4] if size > 4 else VERSION
        fixed = _FIXED[version]
        if size < fixed.size:
            raise BitstreamError(f"truncated at byte {size}: the header needs {fixed.size} bytes")
        (_, _, flags, codec_fp, adaptor_fp, h, w, *middle, n) = fixed.unpack_from(data)
        if flags & ~_FLAGS[version]:
            raise BitstreamError(f"reserved flag bits set (flags=0x{flags:02x}) at byte 5")
        if bool(flags & FLAG_S_ADAPTOR) != (adaptor_fp != NO_ADAPTOR):
            raise BitstreamError("flags and S-Adaptor fingerprint disagree at byte 5")
        if not 1 <= n <= MAX_STRINGS:
            raise BitstreamError(f"string count {n} at byte {fixed.size - 1} outside 1..{MAX_STRINGS}")
        head_end = fixed.size + (_RATE.size if flags & FLAG_RATE else 0)
        lengths_end = head_end + _LEN.size * n
        if size < lengths_end + _CRC.size:
            raise BitstreamError(f"truncated at byte {size}: header and lengths need {lengths_end + 4} bytes")
        lengths = [_LEN.unpack_from(data, head_end + 4 * i)[0] for i in range(n)]
        expected = lengths_end + sum(lengths) + _CRC.size
        if size < expected:
            raise BitstreamError(f"truncated at byte {size}: the header announces {expected} bytes")
        if size > expected:
            raise BitstreamError(f"{size - expected} unexpected bytes after the end of the container at byte {expected}")
        (crc,) = _CRC.unpack_from(data, expected - 4)
        if zlib.crc32(data[: expected - 4]) != crc:
            raise BitstreamError(f"CRC mismatch (stored 0x{crc:08x} at byte {expected - 4}): the stream is corrupt")
        strings, pos = [], lengths_end
        for length in lengths:
            strings.append(data[pos : pos + length])
            pos += length
        if version == 1:
            pb, pr, zh, zw = middle
            fields: dict = {"coding": COMPRESSAI, "entropy_check": None, "version": 1}
        else:
            pb, pr = padding_for(h, w)
            zh, zw = (h + pb) // ALIGN, (w + pr) // ALIGN
            fields = {"coding": COMPRESSAI if flags & FLAG_COMPAT else PORTABLE, "entropy_check": middle[0]}
            if flags & FLAG_RATE:
                fields["rate_position"] = _RATE.unpack_from(data, fixed.size)[0] / RATE_SCALE
        try:
            return cls(codec_fp, adaptor_fp, h, w, pb, pr, (zh, zw), strings, **fields)
        except BitstreamError as e:
            raise BitstreamError(f"inconsistent header: {e}") from None

    def describe(self) -> dict:
        """The header as JSON-able data (``omnicodec info``)."""
        d = asdict(self)
        d.pop("strings")
        d["codec_fp"] = self.codec_fp.hex()
        d["adaptor_fp"] = self.adaptor_fp.hex() if self.has_adaptor else None
        d["z_shape"] = list(self.z_shape)
        d["entropy_check"] = None if self.entropy_check is None else f"{self.entropy_check:08x}"
        d["string_lengths"] = [len(s) for s in self.strings]
        d["total_bytes"] = len(self.to_bytes())
        d["bpp"] = round(8 * d["total_bytes"] / self.num_pixels, 6)
        return d


def read_stream(location: str) -> bytes:
    """A bitstream file's bytes (path or URL), or one ``BitstreamError`` naming the file."""
    from omnicodec import storage

    try:
        return storage.read_bytes(location)
    except FileNotFoundError:
        raise BitstreamError(f"{location}: no such file") from None


def padding_for(height: int, width: int) -> tuple[int, int]:
    """Rows and columns to add so both sides become multiples of ``ALIGN``."""
    return (-height) % ALIGN, (-width) % ALIGN


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise BitstreamError(message)
