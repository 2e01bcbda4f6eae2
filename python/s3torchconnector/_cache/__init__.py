"""The node-local cache: objects read once are kept on local disk for every process of the node.

Turned on by ``S3ClientConfig(cache_dir=..., cache_max_bytes=...)`` or the environment
(``S3_TORCH_CONNECTOR_CACHE_DIR``, ``S3_TORCH_CONNECTOR_CACHE_MAX_BYTES``).

- ``settings``: where the cache is and how large it may grow, from the config or the environment.
- ``entry_format``: one file per object version: a header naming it, the bytes, their checksums.
- ``directory``: the shared folder: entry paths, the lock and byte count, eviction of the least recently used.
- ``cached_stream``: an entry read as the native GetObjectStream is read, each block checked first.
- ``deferred_stream``: a stream whose work (writing a download into the cache, waiting for another
  process's) happens at its first read, so that asking for a stream never waits.
- ``node_cache``: what a read does: a hit, a revalidation, one download per node, or S3 when the disk fails.
"""
