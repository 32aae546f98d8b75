"""SQLAlchemy 2 typed models, one module per aggregate, and the repository functions over them.

Importing this package registers every table on `Base.metadata` (Alembic and tests rely on it).
"""

from models.audit import AuditEntry
from models.auth_sessions import AuthSession, RefreshToken
from models.backups import Backup
from models.base import Base
from models.campaigns import Campaign, Link, LinkClick
from models.clients import Client
from models.console_sessions import ConsoleSession
from models.credits import CreditEntry
from models.domain_events import DomainEvent, DomainEventCounter
from models.erasure import Erasure
from models.idempotency import IdempotencyKey
from models.jobs import Job, JobLog, JobRecordError
from models.lead_stats import LeadStats
from models.leads import Lead, LeadKey, LeadSource
from models.mail import OutgoingMail
from models.notifications import Notification
from models.schedules import Schedule
from models.sources import DataSource, Upload, UploadChunk
from models.suppressions import Suppression
from models.tenancy import ApiKey, Domain, Invitation, Membership, PasswordResetToken, User
from models.webhooks import Webhook, WebhookDelivery, WebhookMessage

__all__ = [
    "ApiKey",
    "AuditEntry",
    "AuthSession",
    "Backup",
    "Base",
    "Campaign",
    "Client",
    "ConsoleSession",
    "CreditEntry",
    "DataSource",
    "Domain",
    "DomainEvent",
    "DomainEventCounter",
    "Erasure",
    "IdempotencyKey",
    "Invitation",
    "Job",
    "JobLog",
    "JobRecordError",
    "Lead",
    "LeadKey",
    "LeadSource",
    "LeadStats",
    "Link",
    "LinkClick",
    "Membership",
    "Notification",
    "OutgoingMail",
    "PasswordResetToken",
    "RefreshToken",
    "Schedule",
    "Suppression",
    "Upload",
    "UploadChunk",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookMessage",
]
