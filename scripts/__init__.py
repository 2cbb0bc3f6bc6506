"""Tools around the pipeline: the encoding_dim sweep and the comparison report."""
