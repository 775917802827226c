"""The domain model (see the glossary in DESIGN.md). Importing this registers every table."""

from app.models.base import Base, utcnow
from app.models.centre import (
    BindFailure,
    Camera,
    Centre,
    CentreInvitation,
    CentreStatusChange,
    InviteCode,
    KitchenArea,
    MealWindow,
    MediaNode,
    ParentLink,
    TechnicianAssignment,
)
from app.models.commissioning import (
    ChecklistItem,
    ChecklistResult,
    ChecklistStandard,
    Commissioning,
)
from app.models.concern import Concern, ConcernEvent, concern_notices
from app.models.enums import (
    AgencyKind,
    AreaCheckResult,
    AreaKind,
    AttachmentKind,
    CameraStatus,
    CentreStatus,
    Channel,
    ChecklistItemKind,
    ConcernStatus,
    FindingCategory,
    FollowUpKind,
    NoticeStatus,
    NotificationStatus,
    PatrolMode,
    ReviewMode,
    Role,
    Severity,
    SnapshotReason,
)
from app.models.notice import (
    FollowUp,
    NoticeCounter,
    NoticeEvent,
    NoticeResponse,
    RectificationNotice,
)
from app.models.org import Agency, District, RefreshToken, User
from app.models.patrol import Finding, Patrol, PatrolAreaCheck, Snapshot
from app.models.records import (
    Attachment,
    AuditLog,
    CalendarDay,
    CalendarYear,
    InboundMessage,
    Notification,
    WatchSession,
)

# Tables whose rows may never change once written (enforced by triggers in the migration).
APPEND_ONLY_TABLES = ("notice_events", "concern_events", "centre_status_changes", "audit_log")

__all__ = [name for name in dir() if not name.startswith("_")]
