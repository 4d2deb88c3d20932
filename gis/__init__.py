"""tongge (同格) domain core: grid layers, validation, geocoding, persistence.

Functions here work on GeoDataFrames and numpy arrays; nothing in this package
knows about HTTP. Persistence lives in :mod:`gis.repository`, the only module
that imports SQLAlchemy.
"""

__version__ = "0.1.0"
