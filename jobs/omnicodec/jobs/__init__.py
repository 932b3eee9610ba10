"""Ray jobs: pretraining, multi-task adaptor training, sweeps, the demo, cluster submit.

Stands on the core (``omnicodec``, ``omnicodec.adaptors``) and the Ray runtime
(``omnicodec.runtime``); never imports ``omnicodec.serve`` (its sibling) or the command
line above it (``omnicodec.cli``, which parses the flags and calls the typed functions here).
Every training launch goes through ``runner.launch``. Library code under ``omnicodec``
stays importable without starting anything.
"""
