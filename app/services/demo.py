"""Demo data: the Meilan district pilot (海口市美兰区) with its two agencies, centres in every
lifecycle state, a simulated camera in each room of the live centres, and one account per role.
Refused under the production config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from flask import current_app
from sqlalchemy import select

from app.errors import Conflict, Forbidden
from app.extensions import db
from app.models import (
    Agency,
    AgencyKind,
    AreaKind,
    Camera,
    Centre,
    CentreStatus,
    CentreStatusChange,
    Commissioning,
    District,
    InviteCode,
    KitchenArea,
    MealWindow,
    ParentLink,
    Role,
    TechnicianAssignment,
    User,
    utcnow,
)
from app.secrets import encrypt_secret, redact_url
from app.services.accounts import add_staff_user
from app.services.base import transaction
from app.services.onboarding import active_standard

AREAS = [
    (AreaKind.PREP, "备餐间"),
    (AreaKind.STORAGE, "储存间"),
    (AreaKind.COOKING, "操作间"),
    (AreaKind.WASHING, "清洗间"),
]

CENTRES = [
    ("美兰区阳光小树苗托管中心", CentreStatus.LIVE, "海口市美兰区海甸五西路 18 号"),
    ("美兰区启航午托部", CentreStatus.LIVE, "海口市美兰区白龙南路 66 号"),
    ("美兰区博学少儿托管", CentreStatus.COMMISSIONING, "海口市美兰区和平大道 9 号"),
    ("美兰区快乐成长托管班", CentreStatus.INSTALLING, "海口市美兰区灵山镇新琼路 3 号"),
    ("美兰区明德课后托管", CentreStatus.INVITED, "海口市美兰区大致坡镇文化路 12 号"),
    ("美兰区小蜜蜂午托中心", CentreStatus.SUSPENDED, "海口市美兰区演丰镇滨河路 5 号"),
]

LIFECYCLE = [
    CentreStatus.INVITED,
    CentreStatus.INSTALLING,
    CentreStatus.COMMISSIONING,
    CentreStatus.LIVE,
]

DEMO_INVITE_CODE = "123456"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: Role
    display_name: str


def seed_demo(password: str) -> list[DemoLogin]:
    """Create the demo data set in one transaction. Refuses in production or when seeded."""
    if not current_app.config["DEMO_MODE"]:
        raise Forbidden("生产环境不允许写入演示数据")
    with transaction():
        if db.session.scalar(select(District.id).where(District.code == "460108")):
            raise Conflict("演示数据已存在")
        haikou = District(code="460100", name="海口市")
        db.session.add(haikou)
        db.session.flush()
        meilan = District(code="460108", name="美兰区", parent_id=haikou.id)
        db.session.add(meilan)
        db.session.flush()
        market = Agency(
            name="海口市美兰区市场监督管理局",
            kind=AgencyKind.MARKET_REGULATION,
            district_id=meilan.id,
            notice_prefix="美兰市监整",
        )
        education = Agency(
            name="海口市美兰区教育局",
            kind=AgencyKind.EDUCATION,
            district_id=meilan.id,
            notice_prefix="美兰教整",
        )
        db.session.add_all([market, education])
        db.session.flush()

        now = utcnow()
        centres: list[Centre] = []
        for index, (name, status, address) in enumerate(CENTRES, start=1):
            centre = Centre(
                name=name,
                district_id=meilan.id,
                address=address,
                status=status,
                licence_no=f"JY3460108{index:07d}",
                contact_name="负责人",
                contact_phone=f"1389876{index:04d}",
                suspension_reason="摄像头长期离线，已暂停直播"
                if status is CentreStatus.SUSPENDED
                else None,
            )
            db.session.add(centre)
            db.session.flush()
            _record_lifecycle(centre, status)
            for kind, area_name in AREAS:
                db.session.add(
                    KitchenArea(
                        centre_id=centre.id,
                        kind=kind,
                        name=area_name,
                        shown_to_parents=kind is not AreaKind.STORAGE or index == 1,
                    )
                )
            db.session.flush()
            if status in (CentreStatus.LIVE, CentreStatus.SUSPENDED, CentreStatus.COMMISSIONING):
                for area in db.session.scalars(
                    select(KitchenArea).where(KitchenArea.centre_id == centre.id)
                ):
                    url = f"sim://demo:demo@centre{centre.id}-{area.kind.value}/?fps=15"
                    db.session.add(
                        Camera(
                            centre_id=centre.id,
                            area_id=area.id,
                            name=f"{area.name}摄像头",
                            rtsp_url_encrypted=encrypt_secret(url),
                            rtsp_url_redacted=redact_url(url),
                        )
                    )
            windows = (
                [("全天开放（演示）", time(0, 0), time(23, 59, 59))]
                if index == 1  # the first centre is open all day so a newcomer can watch at once
                else [
                    ("午餐", time(11, 30), time(13, 0)),
                    ("点心", time(15, 30), time(16, 0)),
                    ("晚餐", time(17, 30), time(18, 30)),
                ]
            )
            for label, start, end in windows:
                db.session.add(
                    MealWindow(centre_id=centre.id, label=label, starts_at=start, ends_at=end)
                )
            centres.append(centre)

        logins = [
            DemoLogin("admin", Role.ADMIN, "系统管理员"),
            DemoLogin("inspector", Role.INSPECTOR, "王监管（市场监管局）"),
            DemoLogin("operator", Role.OPERATOR, "李经营（阳光小树苗）"),
            DemoLogin("technician", Role.TECHNICIAN, "陈技术"),
            DemoLogin("parent", Role.PARENT, "张家长"),
        ]
        users: dict[str, User] = {}
        for login in logins:
            users[login.username] = add_staff_user(
                username=login.username,
                password=password,
                role=login.role,
                display_name=login.display_name,
                agency_id=market.id if login.role is Role.INSPECTOR else None,
                centre_id=centres[0].id if login.role is Role.OPERATOR else None,
            )
        users["parent"].wechat_openid = "demo-parent-openid"
        edu = add_staff_user(
            username="inspector_edu",
            password=password,
            role=Role.INSPECTOR,
            display_name="刘督导（教育局）",
            agency_id=education.id,
        )
        logins.append(DemoLogin(edu.username or "", Role.INSPECTOR, edu.display_name))
        # The market bureau's section chief: told when a notice is escalated (on-site visit).
        chief = add_staff_user(
            username="supervisor",
            password=password,
            role=Role.INSPECTOR,
            display_name="赵科长（市场监管局，负责人）",
            agency_id=market.id,
            phone="13800000000",
        )
        chief.is_supervisor = True
        logins.append(DemoLogin(chief.username or "", Role.INSPECTOR, chief.display_name))
        invite = InviteCode(
            centre_id=centres[0].id,
            code=DEMO_INVITE_CODE,
            created_by_id=users["operator"].id,
            expires_at=now + timedelta(days=365),
            max_uses=500,
        )
        db.session.add(invite)
        db.session.flush()
        db.session.add(
            ParentLink(
                parent_id=users["parent"].id, centre_id=centres[0].id, invite_code_id=invite.id
            )
        )
        invite.uses = 1
        for centre in centres[2:4]:
            db.session.add(
                TechnicianAssignment(technician_id=users["technician"].id, centre_id=centre.id)
            )
        # The centre being commissioned has its checklist open against the active standard.
        db.session.add(
            Commissioning(
                centre_id=centres[2].id,
                standard_id=active_standard().id,
                technician_id=users["technician"].id,
            )
        )
    return logins


def _record_lifecycle(centre: Centre, status: CentreStatus) -> None:
    """Write the history a centre in `status` would have gone through."""
    path = (
        LIFECYCLE[: LIFECYCLE.index(status) + 1]
        if status in LIFECYCLE
        else [*LIFECYCLE, CentreStatus.SUSPENDED]
    )
    previous: CentreStatus | None = None
    for step in path:
        db.session.add(
            CentreStatusChange(
                centre_id=centre.id, from_status=previous, to_status=step, reason="演示数据"
            )
        )
        previous = step
