"""Content snapshots: the raw files and images of one synced commit, and which one is
current."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, utcnow


class ContentSnapshot(Base):
    __tablename__ = "content_snapshots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(300))  # "github:owner/repo@branch", "folder:..."
    commit_sha: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    file_count: Mapped[int] = mapped_column(default=0)
    invalid_count: Mapped[int] = mapped_column(default=0)
    sync_seconds: Mapped[float] = mapped_column(default=0.0)
    full_sync: Mapped[bool] = mapped_column(default=True)
    # False only for snapshots stored before syncs read images: their images are not
    # listed in content_assets, so the next sync reads the whole source instead of
    # applying changes to them, and always stores a new snapshot.
    assets_listed: Mapped[bool] = mapped_column(default=True, server_default=false())


class ContentFile(Base):
    __tablename__ = "content_files"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("content_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    text: Mapped[str] = mapped_column(Text)


class ContentAsset(Base):
    """An image in the repository at the snapshot's commit (within the size cap).

    Only the images the content embeds keep their bytes and hash; the others are listed
    (path only) so that the next incremental sync knows they exist when a change starts
    embedding one.
    """

    __tablename__ = "content_assets"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("content_snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)


class ContentState(Base):
    """One row: the current snapshot, and how the last sync went.

    `version` goes up whenever `snapshot_id` changes; every process compares it with
    the version it has parsed in memory and reloads when it differs.
    """

    __tablename__ = "content_state"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("content_snapshots.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookDelivery(Base):
    """A GitHub push already taken, by the SHA-256 of its signed body: the same one again
    (a replay, or GitHub's own redelivery) is answered without syncing. Kept 30 days."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
