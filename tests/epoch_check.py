"""The check of one epoch read through a DataLoader: every object once, with its bytes."""

import collections


def check_epoch(loader, objects):
    samples = [sample for batch in loader for sample in batch]
    counts = collections.Counter(key for key, _ in samples)
    assert sorted(counts) == sorted(objects), "missing or unexpected samples"
    assert [key for key, n in counts.items() if n != 1] == [], "samples delivered more than once"
    for key, body in samples:
        assert body == objects[key], key
