"""The pure core: models, codec, statuses, graph algorithms, proposals, scheduling. No I/O."""
