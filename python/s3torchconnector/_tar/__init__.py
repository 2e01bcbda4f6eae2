"""Tar shards, below the public ``shards`` and ``shard_writer``: the regular files of a tar stream,
read in one pass (``reader``), WebDataset samples of those files (``samples``), and tar members
written into a stream that cannot seek (``stream``). For random access: a shard's index of its
samples' byte ranges and its sidecar format (``index``), indexes kept on the node
(``kept_indexes``), and the samples of S3MapDataset(shard_format="tar") by position
(``random_access``)."""
