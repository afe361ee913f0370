"""Entropy-model pieces built on CompressAI (gain units, checkerboard contexts, latent codecs)."""
