"""Notebook workbench: the logic behind the notebooks, unit-tested without a browser.

- :mod:`~invlab.widgets.sources`       images, models and codecs to choose from (and what is missing)
- :mod:`~invlab.widgets.readout`       quality numbers, error maps, zoomed crops
- :mod:`~invlab.widgets.render`        arrays -> PNG bytes / heat maps for ``ipywidgets.Image``
- :mod:`~invlab.widgets.rate_control`  :class:`RateControlApp` (notebook 01), a view over
- :mod:`~invlab.widgets.point_service` coded slider positions on one worker thread (cache, futures, cancellation)
- :mod:`~invlab.widgets.rate_figure`   notebook 01's operating-point figure
- :mod:`~invlab.widgets.rate_benchmark` notebook 01's slider timing
- :mod:`~invlab.widgets.scales`        per-scale latents and bits (notebook 02)
- :mod:`~invlab.widgets.teaching`      invertibility demonstrations (notebook 05)
- :mod:`~invlab.widgets.masks`         M-ANFIC / MS-ANFIC chosen quadtree masks and bits per level (notebook 02)
"""
