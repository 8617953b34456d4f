"""One module per format scanner; registered in :mod:`mltrust.scan._registry`."""
