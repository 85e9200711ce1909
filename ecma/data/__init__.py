"""What a dataset is, on disk and in memory: annotations, splits, classes, segments, feature shards, batches, demos."""
