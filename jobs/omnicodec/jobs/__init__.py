"""Ray jobs: pretraining, multi-task adaptor training, sweeps, the demo, cluster submit.

This is the only layer (with ``omnicodec.serve``) that imports Ray. Library code under
``omnicodec`` stays importable without starting anything.
"""
