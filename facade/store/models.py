"""Tables of facade's own state. Changing one means adding a migration in `migrations/`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class UpstreamConnection(SQLModel, table=True):
    """facade's authorization at one vendor account. Secrets are stored encrypted."""

    __tablename__ = "upstream_connection"

    id: int | None = Field(default=None, primary_key=True)
    vendor: str = Field(index=True, unique=True, max_length=40)
    base_url: str = Field(max_length=500)
    client_id: str = Field(max_length=200)
    client_secret_enc: str
    access_token_enc: str
    refresh_token_enc: str
    #: When the access token expires. Datetimes here are timezone-aware and stored as UTC.
    expires_at: datetime
    scope: str = Field(default="", max_length=2000)
    created_at: datetime
    updated_at: datetime
