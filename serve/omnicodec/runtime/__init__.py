"""The Ray runtime that ``omnicodec.jobs`` and ``omnicodec.serve`` both stand on.

``ray_env`` starts or joins Ray with safe local defaults (loopback, no usage stats, quiet
console, one-line errors for an unreachable or too small cluster); ``cluster`` starts a
multi-node loopback cluster inside one machine for the fault drills. Nothing here knows
about training or serving: both layers above import it, and it imports only the core.
"""
