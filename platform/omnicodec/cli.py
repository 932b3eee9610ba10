"""``omnicodec``: one command line for data, training, evaluation, coding and serving.

Every subcommand's ``--help`` says what it does, what it reads and writes, and gives an
example. User errors (bad files, configs, bitstreams) print one line and exit 2; the
handlers import their heavy dependencies lazily so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from omnicodec import __version__, home
from omnicodec.errors import OmnicodecError

HOME = home()

EPILOG = """\
the pipeline, end to end:
  omnicodec data scenes --out DIR --train 2000 --test 200     make labelled multi-task shards
  omnicodec pretrain codec --quality 3                        train a base codec (or bring one)
  omnicodec train jobs/omnicodec/jobs/specs/train.yaml        train the adaptors on Ray Train
  omnicodec eval --run NAME --data DIR/test-{000000..000003}.tar   rate/accuracy report
  omnicodec encode photo.jpg -o photo.omc --adaptors CKPT    one bitstream ...
  omnicodec decode photo.omc --task seg -o seg.png           ... read by many machines
  omnicodec serve serve/omnicodec/serve/config.yaml          the HTTP router on Ray Serve
  omnicodec demo                                              all of it, small, in minutes
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=36)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omnicodec", formatter_class=_formatter, epilog=EPILOG,
        description="One bitstream from a frozen learned image codec, read by many machine tasks.",
    )
    p.add_argument("--version", action="version", version=f"omnicodec {__version__}")
    p.add_argument("--verbose", action="store_true", help="show Ray's own messages and worker logs on the console "
                                                          "(default: they go to a log file whose path is printed)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help: str, description: str, func: Callable, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help, description=description, formatter_class=_formatter)
        sp.set_defaults(func=func)
        return sp

    # data ---------------------------------------------------------------------
    data = sub.add_parser("data", help="make, convert, inspect and verify WebDataset shards",
                          description="Make, convert, inspect and verify WebDataset shards.", formatter_class=_formatter)
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = cmd("scenes", "copy-paste scenes with class, masks and boxes",
            "Paste real object cut-outs onto crops of real photos. Writes DIR/train-*.tar, DIR/test-*.tar\n"
            "and DIR/dataset.json. Objects and photos are split between train and test.\n\n"
            "example: omnicodec data scenes --out data/scenes --train 2000 --test 200 --size 192", _data_scenes, dsub)
    s.add_argument("--out", required=True, help="output folder (path or fsspec URL)")
    s.add_argument("--train", type=int, default=1000, help="training scenes (default 1000)")
    s.add_argument("--test", type=int, default=200, help="test scenes (default 200)")
    s.add_argument("--size", type=int, default=192, help="scene side in pixels (default 192)")
    s.add_argument("--source", default="auto", choices=["auto", "debian", "portable"],
                   help="debian: Tux Paint stamps + wallpapers (scripts/setup.sh); portable: pip-only photos and shapes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--maxcount", type=int, default=50, help="samples per shard (default 50)")
    s = cmd("photos", "real-photo crops for codec pretraining, the held-out and Kodak-like sets",
            "Multi-scale random crops of the training photos of the real-photo corpus (every\n"
            "photographic file the Debian wallpaper/test-data packages and pip packages install; digital\n"
            "art screened out; duplicates dropped) as DIR/photos-*.tar. With --kodaklike: the fixed 24-image\n"
            "768x512 set cut from the held-out photos; with --heldout: every held-out photo whole at 768 px.\n"
            "Prints how many distinct photos were used and which candidates were left out, and why.\n\n"
            "example: omnicodec data photos --out data/photos --count 4000", _data_photos, dsub)
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=4000)
    s.add_argument("--crop", type=int, default=256)
    s.add_argument("--source", default="auto", choices=["auto", "debian", "portable"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--kodaklike", action="store_true", help="write the Kodak-like set instead of crops")
    s.add_argument("--heldout", action="store_true", help="write the held-out photos (whole, 768 px) instead of crops")
    s = cmd("convert", "convert an image folder, COCO or PASCAL-Context dataset to shards",
            "imagefolder: ROOT/<class>/*.jpg.  coco: --images DIR --annotations instances.json.\n"
            "pascal-context: ROOT/JPEGImages + ROOT/<labels dir>/*.png (class-id masks).\n\n"
            "example: omnicodec data convert --from coco --images val2017 --annotations ann.json --out shards/\n"
            "         omnicodec data convert --from imagefolder --root photos/ --out shards/ --test-fraction 0.2",
            _data_convert, dsub)
    s.add_argument("--from", dest="fmt", required=True, choices=["imagefolder", "coco", "pascal-context"])
    s.add_argument("--root", help="dataset root (imagefolder, pascal-context)")
    s.add_argument("--images", help="image folder (coco)")
    s.add_argument("--annotations", help="instances JSON (coco)")
    s.add_argument("--labels", default="SegmentationClassContext", help="mask folder under ROOT (pascal-context)")
    s.add_argument("--out", required=True)
    s.add_argument("--prefix", default="data")
    s.add_argument("--maxcount", type=int, default=100)
    s.add_argument("--test-fraction", type=float, default=0.0,
                   help="also split: write train-*.tar and test-*.tar, this fraction to test (stable by file name)")
    s.add_argument("--overwrite", action="store_true", help="replace a dataset already converted into --out")
    s = cmd("inspect", "counts, keys, class histogram and a contact sheet",
            "Reads every sample; prints counts, member keys and the class histogram; writes a contact\n"
            "sheet PNG with masks and boxes drawn.\n\nexample: omnicodec data inspect data/scenes --sheet sheet.png",
            _data_inspect, dsub)
    s.add_argument("shards", help="folder, brace pattern, tar or fsspec URL")
    s.add_argument("--sheet", default="contact_sheet.png", help="where to write the PNG")
    s.add_argument("--count", type=int, default=16, help="samples on the sheet")
    s = cmd("verify", "find corrupt shards and members; non-zero exit if any",
            "Decodes every member of every shard and lists each fault with shard, key and byte offset.\n"
            "Exit status 1 if anything is corrupt.\n\nexample: omnicodec data verify 's3://bucket/train-{000000..000127}.tar'",
            _data_verify, dsub)
    s.add_argument("shards")

    # pretrain -------------------------------------------------------------------
    pre = sub.add_parser("pretrain", help="train the frozen parts here: base codecs and task networks",
                         description="Pretrain base codecs and task networks on Ray Train; write bundled artifacts.",
                         formatter_class=_formatter)
    psub = pre.add_subparsers(dest="pretrain_command", metavar="WHAT", required=True)
    s = cmd("codec", "a base codec: rate + lambda*255^2*MSE on real-photo crops",
            "Trains ARCH at QUALITY (lambda from CompressAI's ladder unless --lmbda), evaluates real-byte\n"
            "bpp, PSNR and MS-SSIM on the Kodak-like set, and writes codec-<arch>-q<quality>.{safetensors,json}.\n\n"
            "example: omnicodec pretrain codec --quality 3 --steps 6000\n"
            "         omnicodec pretrain codec --quality 1 --init-from mbt2018-mean-small:3 --steps 2000", _pretrain_codec, psub)
    _run_flags(s)
    s.add_argument("--arch", default="mbt2018-mean-small")
    s.add_argument("--quality", type=int, default=3)
    s.add_argument("--lmbda", type=float)
    s.add_argument("--init-from", help="start from a codec checkpoint or bundled ARCH:QUALITY")
    s.add_argument("--data", help="photo shards (default: made under $OMNICODEC_HOME/data/photos)")
    s.add_argument("--eval-data", help="evaluation shards (default: the Kodak-like set)")
    s = cmd("task", "a frozen task network on the scene shards (cls, seg, det)",
            "Trains a small torchvision-architecture network for TASK on the scene shards, evaluates it on\n"
            "the clean test scenes (top-1, mIoU or mAP) and writes task-<task>.{safetensors,json}.\n\n"
            "example: omnicodec pretrain task --task seg --steps 3000", _pretrain_task, psub)
    _run_flags(s)
    s.add_argument("--task", required=True, metavar="TASK",
                   help="a bundled task whose network is trained here: cls, seg or det (checked against the registry)")
    s.add_argument("--data", help="scene folder (default: made under $OMNICODEC_HOME/data/scenes)")

    # train / sweep / eval -------------------------------------------------------------
    s = cmd("train", "multi-task adaptor training on Ray Train (resumable)",
            "Trains the shared S-Adaptor and one T-Adaptor stack per task against frozen task networks,\n"
            "loss R + lambda * sum_t w_t L_t. Relaunching the same command resumes the run.\n\n"
            "example: omnicodec train jobs/omnicodec/jobs/specs/train.yaml --set optim.steps=500 --set lmbda=2\n"
            "         omnicodec train jobs/omnicodec/jobs/specs/train.yaml --local cuda   (one GPU, no Ray)",
            _train)
    s.add_argument("config", help="training YAML (see jobs/omnicodec/jobs/specs/)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    s.add_argument("--address", help="Ray address to join (default: start a local loopback Ray)")
    s.add_argument("--export", metavar="DIR", help="also copy the final adaptor checkpoint to DIR (path or URL)")
    s.add_argument("--local", nargs="?", const="cpu", metavar="DEVICE",
                   help="train in this process on one device (cpu, cuda, cuda:1), without Ray: same steps, same "
                        "run folder and resume; run.num_workers is ignored")
    s = cmd("sweep", "Ray Tune search over adaptor sizes, lambda and task weights",
            "Runs trials (each a Ray Train run) and reports the rate/accuracy Pareto front.\n\n"
            "example: omnicodec sweep jobs/omnicodec/jobs/specs/sweep.yaml", _sweep)
    s.add_argument("config")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--address")
    s = cmd("eval", "rate/accuracy evaluation from real bitstreams, with baselines and a report",
            "Encodes each test image once (real bytes), decodes per task, scores the frozen task nets,\n"
            "compares against the frozen codec, JPEG (and WebP, per-task adaptors with --baseline), and\n"
            "writes report.md/.html, PNG plots, CSV, JSON. The per-image work runs as Ray work over\n"
            "shards (one actor per core here; --address to use a cluster).\n\n"
            "example: omnicodec eval --run demo-l0 --run demo-l1 --data DIR/test-000000.tar --out report/\n"
            "         omnicodec eval --human --data ~/.cache/omnicodec/data/kodaklike --out rd/",
            _eval)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", action="append", help="training run name (repeat for several lambdas)")
    g.add_argument("--adaptors", action="append",
                   help="adaptors: run name, run / checkpoint / adaptors folder, or zoo:NAME (repeatable)")
    g.add_argument("--human", action="store_true",
                   help="human rate-distortion report instead: learned codecs vs JPEG and WebP (PSNR, MS-SSIM, "
                        "BD-rate with bootstrap intervals, timings); --data may be shards or an image folder")
    s.add_argument("--data", required=True, help="test shards (with --human: shards or an image folder)")
    s.add_argument("--codec", action="append", metavar="ARCH:Q1,Q2",
                   help="--human: a codec family to measure (default: every bundled codec, all qualities)")
    s.add_argument("--checkpoint", action="append", default=[], metavar="ARCH=PATH",
                   help="--human: any CompressAI checkpoint (state dict or {'state_dict': ...}), path or URL")
    s.add_argument("--jpeg", default=",".join(map(str, (5, 10, 20, 35, 50, 70, 85))), help="--human: JPEG qualities")
    s.add_argument("--webp", default=",".join(map(str, (5, 20, 40, 60, 80, 92))), help="--human: WebP qualities")
    s.add_argument("--out", default="report", help="report folder")
    s.add_argument("--storage", default=os.path.join(HOME, "runs"), help="where --run names live")
    s.add_argument("--baseline", action="append", default=None, metavar="NAME",
                   help="frozen:ARCH:Q1,Q2,...  jpeg:Q1,Q2,...  webp:Q1,Q2,...  single:TASK=RUN_OR_CKPT,...[@LABEL] "
                        "(one per-task point; repeat for a curve)  adaptors:NAME=RUN_OR_CKPT,... (a baseline curve "
                        "of other adaptor sets, e.g. trained shorter)  finetuned:TASK=CODEC_WEIGHTS,...[@LABEL] (full fine-tuning: "
                        "one whole codec per task, e.g. from benchmarks/train_finetune.py; repeat for a curve)  (repeatable)")
    s.add_argument("--limit", type=int, help="evaluate only the first N images")
    s.add_argument("--resamples", type=int, default=1000,
                   help="paired-bootstrap resamples for the 95 %% intervals (0: no intervals)")
    s.add_argument("--bootstrap-by", metavar="META_FIELD",
                   help="resample whole groups of test images sharing this meta field instead of single images "
                        "(the cluster bootstrap), for test sets whose images are not independent: e.g. 'source' "
                        "for the Kodak-like set, two crops of each held-out photo")
    s.add_argument("--address", help="Ray address to join (default: start a local loopback Ray); every "
                                      "(system, shard) pair is one unit of Ray work")
    s.add_argument("--cpus-per-worker", type=float, default=1.0,
                   help="CPUs per evaluation actor (default 1: one actor per core)")
    s.add_argument("--in-process", action="store_true", help="no Ray: evaluate every system in this process")
    s.add_argument("--pictures", type=int, default=3, metavar="N",
                   help="picture sheet of the first N test images at two rates: the original, the human view "
                        "and each task's view with its predictions drawn (0: none; default 3)")
    s.add_argument("--records-cache", default=os.path.join(HOME, "eval-records"), metavar="DIR",
                   help="keep each system's per-image records here and reuse them when the same weights meet "
                        "the same shard bytes and tasks again: a new checkpoint is compared with a dozen "
                        "baselines without coding them again (default: %(default)s)")
    s.add_argument("--no-records-cache", action="store_true", help="compute every system's records afresh")

    # coding ----------------------------------------------------------------------
    s = cmd("encode", "images -> omnicodec bitstreams",
            "Encodes each image once. With --adaptors the shared S-Adaptor is used and the codec comes\n"
            "from the checkpoint; otherwise the frozen codec alone (CompressAI's bytes, in our container).\n\n"
            "example: omnicodec encode a.png b.jpg -o out/ --codec mbt2018-mean:3 --codec-checkpoint ckpt.pth.tar",
            _encode)
    s.add_argument("images", nargs="+")
    s.add_argument("-o", "--out", required=True, help="output file (one image) or folder")
    s.add_argument("--codec", default=None, help="ARCH[:QUALITY] (default: the adaptors' codec or mbt2018-mean-small:3)")
    s.add_argument("--codec-checkpoint", help="CompressAI checkpoint path or URL")
    s.add_argument("--adaptors", help="adaptor checkpoint folder")
    s.add_argument("--device", default="cpu", help="where g_a/g_s and the adaptors run (cpu, cuda, cuda:1); "
                   "entropy coding always runs on the CPU, so streams decode identically everywhere")
    s = cmd("decode", "a bitstream -> the reconstruction for one task, or for humans",
            "example: omnicodec decode a.omc --task seg -o a.seg.png\n"
            "         omnicodec decode a.omc --human -o a.png --codec mbt2018-mean:3 --codec-checkpoint ckpt.pth.tar",
            _decode)
    s.add_argument("file")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--task")
    g.add_argument("--human", action="store_true")
    s.add_argument("-o", "--out", required=True)
    s.add_argument("--codec", default=None)
    s.add_argument("--codec-checkpoint")
    s.add_argument("--adaptors")
    s.add_argument("--device", default="cpu", help="where g_s and the T-Adaptors run (entropy decoding: the CPU)")
    s = cmd("info", "print a bitstream's header as JSON", "example: omnicodec info a.omc", _info)
    s.add_argument("file")
    s = cmd("zoo", "list the bundled codecs and task networks with their measured quality",
            "example: omnicodec zoo", _zoo)

    # serving ----------------------------------------------------------------------
    s = cmd("serve", "run the decoded-latent router on Ray Serve",
            "Starts (or joins) Ray, deploys the app described by CONFIG and serves HTTP until Ctrl-C.\n"
            "Binds 127.0.0.1 unless the config says otherwise. With --adaptors instead of CONFIG, serves\n"
            "every task of that one checkpoint (run name, run/checkpoint/adaptors folder or zoo:NAME).\n\n"
            "example: omnicodec serve serve/omnicodec/serve/config.yaml\n"
            "         omnicodec serve --adaptors allinone-l2 --set http_options.port=8001", _serve)
    s.add_argument("config", nargs="?", help="Ray Serve config YAML (http_options + applications)")
    s.add_argument("--adaptors", help="serve this one adaptor checkpoint's tasks (no config file needed)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--address")
    client = sub.add_parser("client", help="edge client: encode locally, send only the bytes",
                            description="Edge client for a running omnicodec server.", formatter_class=_formatter)
    csub = client.add_subparsers(dest="client_command", metavar="ACTION", required=True)
    s = cmd("analyze", "encode an image locally (or send a .omc) and print the server's answers",
            "example: omnicodec client analyze cam.jpg --url http://127.0.0.1:8000 --tasks cls,seg,det", _client_analyze, csub)
    s.add_argument("input", help="image file, or an existing .omc bitstream")
    s.add_argument("--url", default="http://127.0.0.1:8000")
    s.add_argument("--tasks", default="cls")
    s.add_argument("--token", default=os.environ.get("OMNICODEC_TOKEN"), help="bearer token (or $OMNICODEC_TOKEN)")
    s.add_argument("--timeout", type=float, default=60.0)

    # cluster ----------------------------------------------------------------------
    s = cmd("submit", "submit a train/sweep/eval command to a Ray cluster as a Ray Job",
            "Packages this checkout as the job's working_dir and runs `omnicodec ARGS...` on the cluster.\n\n"
            "example: omnicodec submit --address http://head:8265 -- train jobs/omnicodec/jobs/specs/train.yaml",
            _submit)
    s.add_argument("--address", default=os.environ.get("RAY_ADDRESS"), help="Ray dashboard address (http://HOST:8265)")
    s.add_argument("--no-wait", action="store_true")
    s.add_argument("args", nargs=argparse.REMAINDER, help="the omnicodec command to run there")
    s = cmd("demo", "the whole pipeline on embedded defaults: local Ray, local shards, bundled weights",
            "Builds (or reuses) small scene shards, trains one all-in-one adaptor set for cls, seg and det\n"
            "on the photo codec with 2 Ray Train workers, evaluates it with the bundled sets of the same\n"
            "codec (the rest of the curve, labelled bundled) against the frozen codec and JPEG from real\n"
            "bitstreams, prints the table, BD-rates and the report path. About 9 minutes on 2 CPU cores.",
            _demo)
    s.add_argument("--out", default=os.path.join(HOME, "demo"), help="where shards, runs and the report go")
    s.add_argument("--steps", type=int, default=None, help="training steps per lambda (default from demo.yaml)")
    s.add_argument("--fresh", action="store_true", help="retrain even if the demo runs exist")
    return p


def _run_flags(s: argparse.ArgumentParser) -> None:
    s.add_argument("--steps", type=int, help="optimisation steps")
    s.add_argument("--lr", type=float)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--crop", type=int)
    s.add_argument("--workers", type=int, default=1, help="Ray Train workers (default 1)")
    s.add_argument("--cpus-per-worker", type=float, default=None)
    s.add_argument("--name", help="run name = run id (relaunch to resume)")
    s.add_argument("--storage", default=os.path.join(HOME, "runs"))
    s.add_argument("--out", default=None, help="artifact folder (default: the bundled zoo folder)")
    s.add_argument("--address", help="Ray address to join (default: local loopback Ray)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")


# ------------------------------------------------------------------------ handlers
def _data_scenes(a: argparse.Namespace) -> None:
    from omnicodec.data.scenes import build_scenes

    card = build_scenes(a.out, a.train, a.test, a.size, a.source, a.seed, a.maxcount)
    print(f"source: {card['source']}  classes: {', '.join(card['classes'])}")
    print(json.dumps({k: card[k] for k in ("counts", "class_histogram", "shards")}, indent=1))


def _data_photos(a: argparse.Namespace) -> None:
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


def _data_convert(a: argparse.Namespace) -> None:
    from omnicodec.data.convert import convert

    card = convert(a.fmt, out=a.out, root=a.root, images=a.images, annotations=a.annotations,
                   labels=a.labels, prefix=a.prefix, maxcount=a.maxcount, test_fraction=a.test_fraction,
                   overwrite=a.overwrite)
    print(json.dumps(card, indent=1))


def _data_inspect(a: argparse.Namespace) -> None:
    from omnicodec.data.inspect import inspect_shards

    inspect_shards(a.shards, a.sheet, a.count)


def _data_verify(a: argparse.Namespace) -> int:
    from omnicodec.data.inspect import verify_shards

    return 0 if verify_shards(a.shards) else 1


def _pretrain_codec(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import pretrain_codec_command

    pretrain_codec_command(a)


def _pretrain_task(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import pretrain_task_command

    pretrain_task_command(a)


def _train(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import train_command

    train_command(a)


def _sweep(a: argparse.Namespace) -> None:
    from omnicodec.jobs.sweep import sweep_command

    sweep_command(a)


def _eval(a: argparse.Namespace) -> None:
    from omnicodec.jobs.cli_jobs import eval_command

    eval_command(a)


def _encode(a: argparse.Namespace) -> None:
    from omnicodec.coding_cli import encode_command

    encode_command(a)


def _decode(a: argparse.Namespace) -> None:
    from omnicodec.coding_cli import decode_command

    decode_command(a)


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


def _zoo(a: argparse.Namespace) -> None:
    from omnicodec.coding_cli import zoo_command

    zoo_command(a)


def _serve(a: argparse.Namespace) -> None:
    from omnicodec.serve.run import serve_command

    serve_command(a)


def _client_analyze(a: argparse.Namespace) -> None:
    from omnicodec.serve.client import analyze_command

    analyze_command(a)


def _submit(a: argparse.Namespace) -> int:
    from omnicodec.jobs.submit import submit_command

    return submit_command(a)


def _demo(a: argparse.Namespace) -> None:
    from omnicodec.jobs.demo import demo_command

    demo_command(a)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")  # via compressai
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["OMNICODEC_VERBOSE"] = "1"
    try:
        code = args.func(args)
    except OmnicodecError as e:
        print(f"omnicodec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnicodec: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
