"""A MixedDataset's pass: which source gives the next sample (``draws``), where a pass stands and how
the states of every shard merge (``state``), and the pass itself, resumable (``iterator``)."""
