"""Tar shards, below the public ``shards`` and ``shard_writer``: the regular files of a tar stream,
read in one pass (``reader``), WebDataset samples of those files (``samples``), and tar members
written into a stream that cannot seek (``stream``)."""
