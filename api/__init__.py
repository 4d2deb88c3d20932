"""tongge interfaces: the HTTP API (FastAPI) and the ``tongge`` command line.

Thin layers over :mod:`gis`; dependencies point from here to ``gis`` only.
"""
