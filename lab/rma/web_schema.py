"""Tables of the web app (:mod:`lab.web`): accounts and their sessions (migration ``0003_web_accounts``).

They live on the RMA models' declarative base so that one Alembic history covers the whole
database. A session row keeps only the SHA-256 of the cookie's token, so a copy of the database
does not let anyone in; passwords are stored as argon2id hashes only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lab.rma.models import Base, Occurrence, utcnow


class WebUser(Base):
    __tablename__ = "web_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("web_users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


# The fault page's figures (occurrences per firmware; distinct rigs, devices and firmware builds) read
# from this index alone, never from the occurrence rows: 100,000 occurrences of one fault in tens of ms.
Index("ix_occ_fault_fw_dev_rig", Occurrence.fault_id, Occurrence.firmware_id, Occurrence.device_id, Occurrence.rig_id)


__all__ = ["WebSession", "WebUser"]
