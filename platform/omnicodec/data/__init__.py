"""Data: multi-task WebDataset shards, how they are made, checked and streamed.

- ``sources``: real pixels available offline (photos and object cut-outs), split train / test;
  ``corpus``: the real-photo corpus for the human codec (art screened out, duplicates dropped,
  a fixed held-out split).
- ``scenes``: copy-paste scenes with class, mask and box labels (``omnicodec data scenes``);
  ``photos``: codec pretraining crops and the Kodak-like test set (``omnicodec data photos``);
  ``converters``: image folders, COCO and PASCAL-Context to shards, one file each (``omnicodec data convert``).
- ``samples``: one sample's members and decoded tensors; ``shards``: tar naming, writing and
  reading with errors that name shard and key.
- ``loader``: the streaming training loader (any local path or fsspec URL, split by node and
  worker); ``inspect``: ``omnicodec data inspect`` and ``data verify``.

The format of a shard is in docs/data.md.
"""
