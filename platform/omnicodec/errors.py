"""The exception types users are promised.

Every error a user can cause by handing us bad input derives from ``OmnicodecError`` and
carries a message that names the fault (file, field, shard, byte offset). The CLI prints
the message on one line and exits non-zero; it never prints a traceback for these.
"""

from __future__ import annotations


class OmnicodecError(Exception):
    """Base class of every user-facing omnicodec error."""


class BitstreamError(OmnicodecError):
    """A container could not be parsed or does not belong to the model reading it.

    Raised for bad magic, unsupported version, truncation (with the byte offset), CRC
    mismatch, malformed fields and codec / S-Adaptor fingerprint mismatches. Parsing
    raises nothing else: no IndexError, no struct.error, no hang.
    """


class StreamMismatch(BitstreamError):
    """A well-formed stream that belongs to another codec or S-Adaptor than the reader's
    (a server answers 409 Conflict for it, where a malformed stream gets 400)."""


class EntropyDesync(BitstreamError):
    """A stream's entropy check disagrees with the scale indexes this machine computes for
    it: decoding would desync the range decoder and return garbage, so it is refused (a
    server answers 422). ``positions`` are the offending streams' places in a batch."""

    def __init__(self, positions: list[int], message: str | None = None):
        self.positions = list(positions)
        super().__init__(message or (
            "the entropy parameters of this stream differ on this machine (its entropy check does not match "
            "the scale indexes computed here: another float path or other CDF tables); it cannot be decoded here"))


class FingerprintMismatch(OmnicodecError):
    """Weights were asked to run with a codec (or S-Adaptor) they were not trained for."""


class ConfigError(OmnicodecError, ValueError):
    """A config file or override is malformed; the message names the key.

    Also a ``ValueError``: raised inside a config's validators (an unknown or duplicate
    task name), pydantic then reports it like any other bad value, with the key's path."""


class DataError(OmnicodecError):
    """A shard, sample or image is unreadable; the message names the shard and key."""


class CheckpointError(OmnicodecError):
    """A checkpoint is missing, incomplete or of the wrong kind."""
