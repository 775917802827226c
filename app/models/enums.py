"""Enumerations of the domain (values are stored in the database; names follow DESIGN.md)."""

from __future__ import annotations

import enum


class AgencyKind(enum.StrEnum):
    MARKET_REGULATION = "market_regulation"  # 市场监督管理局
    EDUCATION = "education"  # 教育局


class Role(enum.StrEnum):
    PARENT = "parent"
    OPERATOR = "operator"
    INSPECTOR = "inspector"
    TECHNICIAN = "technician"
    ADMIN = "admin"


class CentreStatus(enum.StrEnum):
    INVITED = "invited"
    INSTALLING = "installing"
    COMMISSIONING = "commissioning"
    LIVE = "live"
    SUSPENDED = "suspended"


class AreaKind(enum.StrEnum):
    PREP = "prep"  # 备餐间
    STORAGE = "storage"  # 储存间
    COOKING = "cooking"  # 操作间
    WASHING = "washing"  # 清洗间
    OTHER = "other"


class CameraStatus(enum.StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"
    STALLED = "stalled"
    TAMPERED = "tampered"


class ChecklistItemKind(enum.StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class PatrolMode(enum.StrEnum):
    REMOTE = "remote"
    ON_SITE = "on_site"


class AreaCheckResult(enum.StrEnum):
    OK = "ok"
    FINDING = "finding"


class SnapshotReason(enum.StrEnum):
    MANUAL = "manual"
    PATROL = "patrol"
    SCHEDULE = "schedule"
    REVIEW = "review"
    TAMPER = "tamper"
    COMMISSIONING = "commissioning"


class FindingCategory(enum.StrEnum):
    HYGIENE = "hygiene"
    STORAGE = "storage"
    PESTS = "pests"
    STAFF = "staff"  # attire and behaviour
    EQUIPMENT = "equipment"
    CAMERA = "camera"  # camera / coverage
    OTHER = "other"


class Severity(enum.StrEnum):
    I = "I"  # noqa: E741 - tier names of the standard: immediate
    II = "II"  # deadline
    III = "III"  # routine


class NoticeStatus(enum.StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"
    RETURNED = "returned"
    VERIFIED = "verified"
    OVERDUE = "overdue"
    ESCALATED = "escalated"
    WITHDRAWN = "withdrawn"


class ReviewMode(enum.StrEnum):
    ON_SITE = "on_site"
    LIVE_VIDEO = "live_video"


class FollowUpKind(enum.StrEnum):
    PHONE = "phone"
    ON_SITE = "on_site"
    MESSAGE = "message"


class ConcernStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Channel(enum.StrEnum):
    """Where an outbox row is delivered."""

    WECHAT_MP = "wechat_mp"  # official account (customer-service / template messages)
    WECOM_APP = "wecom_app"
    WECOM_ROBOT = "wecom_robot"
    DINGTALK_ROBOT = "dingtalk_robot"
    FEISHU_ROBOT = "feishu_robot"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # retries exhausted; kept for an operator to look at


class AttachmentKind(enum.StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
