"""``omnicodec data scenes | photos | convert | inspect | verify``: make and check WebDataset shards."""

from __future__ import annotations

import argparse
import json

from omnicodec.cli._common import add_command, add_group


def register(sub: argparse._SubParsersAction) -> None:
    dsub = add_group(sub, "data", "make, convert, inspect and verify WebDataset shards",
                     "Make, convert, inspect and verify WebDataset shards.", "data_command", "ACTION")
    _add_scenes(dsub)
    _add_photos(dsub)
    _add_convert(dsub)
    s = add_command(dsub, "inspect", "counts, keys, class histogram and a contact sheet",
                    "Reads every sample; prints counts, member keys and the class histogram; writes a contact\n"
                    "sheet PNG with masks and boxes drawn.\n\nexample: omnicodec data inspect data/scenes --sheet sheet.png",
                    _inspect)
    s.add_argument("shards", help="folder, brace pattern, tar or fsspec URL")
    s.add_argument("--sheet", default="contact_sheet.png", help="where to write the PNG")
    s.add_argument("--count", type=int, default=16, help="samples on the sheet")
    s = add_command(dsub, "verify", "find corrupt shards and members; non-zero exit if any",
                    "Decodes every member of every shard and lists each fault with shard, key and byte offset.\n"
                    "Exit status 1 if anything is corrupt.\n\n"
                    "example: omnicodec data verify 's3://bucket/train-{000000..000127}.tar'", _verify)
    s.add_argument("shards")


def _add_scenes(dsub: argparse._SubParsersAction) -> None:
    s = add_command(dsub, "scenes", "copy-paste scenes with class, masks and boxes",
                    "Paste real object cut-outs onto crops of real photos. Writes DIR/train-*.tar, DIR/test-*.tar\n"
                    "and DIR/dataset.json. Objects and photos are split between train and test.\n\n"
                    "example: omnicodec data scenes --out data/scenes --train 2000 --test 200 --size 192", _scenes)
    s.add_argument("--out", required=True, help="output folder (path or fsspec URL)")
    s.add_argument("--train", type=int, default=1000, help="training scenes (default 1000)")
    s.add_argument("--test", type=int, default=200, help="test scenes (default 200)")
    s.add_argument("--size", type=int, default=192, help="scene side in pixels (default 192)")
    s.add_argument("--source", default="auto", choices=["auto", "debian", "portable"],
                   help="debian: Tux Paint stamps + wallpapers (scripts/setup.sh); portable: pip-only photos and shapes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--maxcount", type=int, default=50, help="samples per shard (default 50)")


def _add_photos(dsub: argparse._SubParsersAction) -> None:
    s = add_command(dsub, "photos", "real-photo crops for codec pretraining, the held-out and Kodak-like sets",
                    "Multi-scale random crops of the training photos of the real-photo corpus (every\n"
                    "photographic file the Debian wallpaper/test-data packages and pip packages install; digital\n"
                    "art screened out; duplicates dropped) as DIR/photos-*.tar. With --kodaklike: the fixed 24-image\n"
                    "768x512 set cut from the held-out photos; with --heldout: every held-out photo whole at 768 px.\n"
                    "Prints how many distinct photos were used and which candidates were left out, and why.\n\n"
                    "example: omnicodec data photos --out data/photos --count 4000", _photos)
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=4000)
    s.add_argument("--crop", type=int, default=256)
    s.add_argument("--source", default="auto", choices=["auto", "debian", "portable"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--kodaklike", action="store_true", help="write the Kodak-like set instead of crops")
    s.add_argument("--heldout", action="store_true", help="write the held-out photos (whole, 768 px) instead of crops")


def _add_convert(dsub: argparse._SubParsersAction) -> None:
    """The converters' registry makes ``--from``'s choices, the description and each one's flags."""
    from omnicodec.data.converters import CONVERTERS, add_flags, describe

    s = add_command(dsub, "convert", "convert an image folder, COCO or PASCAL-Context dataset to shards",
                    describe() + "\n\n"
                    "example: omnicodec data convert --from coco --images val2017 --annotations ann.json --out shards/\n"
                    "         omnicodec data convert --from imagefolder --root photos/ --out shards/ --test-fraction 0.2",
                    _convert)
    s.add_argument("--from", dest="fmt", required=True, choices=CONVERTERS.names())
    add_flags(s)
    s.add_argument("--out", required=True)
    s.add_argument("--prefix", default="data")
    s.add_argument("--maxcount", type=int, default=100)
    s.add_argument("--test-fraction", type=float, default=0.0,
                   help="also split: write train-*.tar and test-*.tar, this fraction to test (stable by file name)")
    s.add_argument("--overwrite", action="store_true", help="replace a dataset already converted into --out")


def _scenes(a: argparse.Namespace) -> None:
    from omnicodec.data.scenes import build_scenes

    card = build_scenes(a.out, a.train, a.test, a.size, a.source, a.seed, a.maxcount)
    print(f"source: {card['source']}  classes: {', '.join(card['classes'])}")
    print(json.dumps({k: card[k] for k in ("counts", "class_histogram", "shards")}, indent=1))


def _photos(a: argparse.Namespace) -> None:
    from omnicodec.data.photos import build_heldout_photos, build_kodaklike, build_photo_shards

    if a.kodaklike:
        card = build_kodaklike(a.out, a.source)
    elif a.heldout:
        card = build_heldout_photos(a.out, source=a.source)
    else:
        card = build_photo_shards(a.out, a.count, a.crop, a.source, a.seed)
        print(f"{card['distinct_photos']} distinct training photos ({len(card['heldout'])} held out, "
              f"{len(card['left_out'])} candidates left out)")
    print(json.dumps({k: v for k, v in card.items() if k != "photos"}, indent=1))


def _convert(a: argparse.Namespace) -> None:
    from omnicodec.data.converters import convert

    card = convert(a.fmt, a.out, vars(a), prefix=a.prefix, maxcount=a.maxcount, test_fraction=a.test_fraction,
                   overwrite=a.overwrite)
    print(json.dumps(card, indent=1))


def _inspect(a: argparse.Namespace) -> None:
    from omnicodec.data.inspect import inspect_shards

    inspect_shards(a.shards, a.sheet, a.count)


def _verify(a: argparse.Namespace) -> int:
    from omnicodec.data.inspect import verify_shards

    return 0 if verify_shards(a.shards) else 1
