"""Ray Serve: the decoded-latent router and its per-task deployments.

``core`` holds the request logic as plain classes (testable without Serve);
``app`` wraps them in deployments and builds the application (``build_app``), which
Ray's own ``serve run`` / ``serve deploy`` accept through ``config.yaml``. It stands on the
core and the Ray runtime (``omnicodec.runtime``), never on ``omnicodec.jobs`` (its sibling).
"""
