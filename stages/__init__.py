"""The pipeline's stages and the small modules they share."""
