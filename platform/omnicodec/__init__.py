"""omnicodec: one bitstream from a frozen learned image codec, read by many machine tasks.

The core lives here (codec registry, bitstream container, the adapted model, data, task
networks, evaluation). Adaptors live in ``omnicodec.adaptors``, Ray jobs in
``omnicodec.jobs`` and the Serve application in ``omnicodec.serve``. Importing this
package has no Ray side effects and loads no weights.
"""

# omnicodec spans four source roots (platform/, adaptors/, jobs/, serve/). Installed, the
# package finder maps them; from a bare checkout on PYTHONPATH (a Ray working_dir) this
# line lets ``omnicodec.adaptors`` etc. be found in the other roots' ``omnicodec/`` folders.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"

__all__ = ["__version__", "home"]


def home() -> str:
    """omnicodec's working folder (runs, data, logs): ``$OMNICODEC_HOME``, else ~/.cache/omnicodec."""
    import os

    return os.environ.get("OMNICODEC_HOME", os.path.expanduser("~/.cache/omnicodec"))
