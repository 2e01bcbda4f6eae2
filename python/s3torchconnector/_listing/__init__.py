"""Which objects a dataset reads: the objects under a prefix, in key order (``key_order``), a
prefix's or a list of URIs' objects as a dataset's picklable source (``sources``), and manifests:
writing and reading one (``manifest``; the public ``s3torchconnector.manifest`` re-exports it and
holds the command), whose objects are kept in an index file the node's processes share
(``index_files``, ``indexed_objects``)."""
