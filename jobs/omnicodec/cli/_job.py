"""What a Ray Job from ``omnicodec submit`` runs: ``python -m omnicodec.cli._job ARGS`` is
``omnicodec ARGS`` run from the folder of the user's staged files (``omnicodec.jobs.job_files``)."""

import sys

from omnicodec.cli import main
from omnicodec.jobs.job_files import enter_staged_folder

if __name__ == "__main__":
    enter_staged_folder()
    sys.exit(main(sys.argv[1:]))
