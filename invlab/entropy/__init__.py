"""Entropy coding on top of CompressAI: rANS over its tables, the coder protocol and coders, checkerboard
contexts, gain units.

- :mod:`~invlab.entropy.rans`: bounds-checked rANS over CompressAI's quantised CDF tables;
- :mod:`~invlab.entropy.coder`: the coder protocol (one coding walk, three modes: likelihood, encode, decode);
- :mod:`~invlab.entropy.residual` / :mod:`~invlab.entropy.mixture`: coders for scale-table Gaussian residuals
  (MSINN-VRLIC) and for hyperprior + Gaussian-mixture levels (the ANF family), one per mode;
- :mod:`~invlab.entropy.checkerboard`, :mod:`~invlab.entropy.gain`: checkerboard contexts, gain tables.
"""
