"""One pass of an S3IterableDataset over its objects: the order it reads them in (``order``), where a
saved state says it stands and how states merge (``state``), and the pass itself, resumable
(``iterator``)."""
