"""Tutor conversations and their messages (transcripts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lens.db.base import Base, TimestampMixin, utcnow


class Conversation(TimestampMixin, Base):
    """One reader's conversation at one chat segment of a module."""

    __tablename__ = "tutor_conversations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)  # "u:<id>" or "a:<anon id>"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    module_key: Mapped[str] = mapped_column(String(100))
    content_id: Mapped[str] = mapped_column(String(100))  # the section
    segment_index: Mapped[int]
    # A visitor's network (IPv4 address, IPv6 /64) when they started it: what the
    # per-network limits count, since a visitor can always drop their cookie.
    client_net: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (
        UniqueConstraint(
            "actor", "module_key", "content_id", "segment_index", name="uq_tutor_conversation"
        ),
    )


class Message(Base):
    __tablename__ = "tutor_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("tutor_conversations.id", ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))  # "user" or "assistant"
    content: Mapped[str] = mapped_column(Text)
    # complete; partial (the stream broke or the student stopped it); error
    status: Mapped[str] = mapped_column(String(16), default="complete")
    model: Mapped[str | None] = mapped_column(String(120))
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_tutor_messages_conversation", "conversation_id", "id"),
                      Index("ix_tutor_messages_created", "created_at"))  # fmt: skip


class CoursePrompt(TimestampMixin, Base):
    """An admin's base tutor prompt for one course (else DEFAULT_BASE_PROMPT is used)."""

    __tablename__ = "tutor_course_prompts"

    course_slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    prompt: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Transcription(Base):
    """One use of speech input: kept for the rate limit and the daily cost cap (no audio,
    no text: the words land in the student's message, if they send it)."""

    __tablename__ = "tutor_transcriptions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    audio_bytes: Mapped[int]
    seconds: Mapped[float | None]
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A visitor's network (see Conversation.client_net): recordings count against it too.
    client_net: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (Index("ix_tutor_transcriptions_actor_created", "actor", "created_at"),
                      Index("ix_tutor_transcriptions_created", "created_at"))  # fmt: skip


class BudgetHold(Base):
    """Money set aside for a reply being given: the most it can cost, counted against the
    site's daily cost cap from before the model is asked until the reply is saved (then
    the reply's own cost counts instead). Replies started together therefore cannot
    together pass the cap. A hold left by a process that died stops counting once the
    longest reply would be over."""

    __tablename__ = "tutor_budget_holds"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    amount_usd: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
