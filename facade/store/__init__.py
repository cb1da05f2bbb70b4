"""facade's own state (vendor connections now; clients, jobs and audit later), through sqlmodel.

SQLite in the data directory by default, PostgreSQL by URL. The schema changes only through
the migrations in `migrations/`; nothing here creates tables directly.
"""

from facade.store.database import Database
from facade.store.secrets import SecretBox

__all__ = ["Database", "SecretBox"]
