"""omnicodec: one bitstream from a frozen learned image codec, read by many machine tasks.

The core lives here (codec registry, bitstream container, the adapted model, data, task
networks, evaluation) with the adaptors (``omnicodec.adaptors``); it never imports the
layers above it. Above the core: the Ray runtime (``omnicodec.runtime``: starting or joining
Ray), then two siblings on it, the Ray jobs (``omnicodec.jobs``) and the Serve application
(``omnicodec.serve``), and on top the command line (``omnicodec.cli``). Importing this
package has no Ray side effects and loads no weights.
"""

# omnicodec spans four source roots (platform/, adaptors/: the core; serve/: runtime and serve;
# jobs/: jobs and cli). Installed, the package finder maps them; from a bare checkout on
# PYTHONPATH (a Ray working_dir) this line lets ``omnicodec.adaptors`` etc. be found in the
# other roots' ``omnicodec/`` folders.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

__all__ = ["__version__", "home"]


def home() -> str:
    """omnicodec's working folder (runs, data, logs): ``$OMNICODEC_HOME``, else ~/.cache/omnicodec."""
    import os

    return os.environ.get("OMNICODEC_HOME", os.path.expanduser("~/.cache/omnicodec"))
