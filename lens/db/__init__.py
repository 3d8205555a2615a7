"""Database: declarative base, engine factory, unit of work, migrations."""

from lens.db.base import Base, TimestampMixin, UTCDateTime, utcnow
from lens.db.engine import create_engine, create_sessionmaker

__all__ = [
    "Base",
    "TimestampMixin",
    "UTCDateTime",
    "create_engine",
    "create_sessionmaker",
    "utcnow",
]
