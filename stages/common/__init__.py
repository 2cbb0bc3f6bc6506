"""What every stage imports: its params, paths, datasets, atomic writes and how it runs."""
