"""Outbox rows rendered as chat messages, in Chinese, from the event name and its payload.

Pure functions: the dispatcher passes what the payload lacks (the centre's name, the public
URL, the recipient's role). Messages to a person carry the chat commands that act on them
(收到 17 …); messages to a group robot only inform. The number in a command is the notice id
(see bots/router.py).

Links: the server serves one page (`/`), and the H5 app addresses its pages by the fragment
(app/web/static/js/main.js, `ROUTES`): `#/operator/notice/17` for the operator, `#/inspector/
notice/17` for regulators, `#/parent/concern/5` for the parent. A link is built for the role
of whoever reads it — a group robot's readers are regulators — and only to a page that role
may open (tests/test_bots_links.py checks every one against main.js).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bots.channels import Message

PERSON, GROUP = "person", "group"
# Who reads a group robot's messages: the agency's regulators.
GROUP_READER = "inspector"

TITLES = {
    "notice.issued": "【整改通知】",
    "notice.acknowledged": "【整改通知已签收】",
    "notice.responded": "【整改回复待复查】",
    "notice.returned": "【整改回复被退回】",
    "notice.verified": "【整改复查通过】",
    "notice.overdue": "【整改逾期】",
    "notice.escalated": "【逾期未整改已上报】",
    "notice.withdrawn": "【整改通知已撤回】",
    "concern.submitted": "【家长反映】",
    "concern.accepted": "【您的反映已受理】",
    "concern.dismissed": "【您的反映未予受理】",
    "concern.resolved": "【您的反映已办结】",
    "concern.assigned": "【家长反映已指派给您】",
    "camera.offline": "【摄像头离线】",
    "camera.tampered": "【摄像头画面异常】",
    "centre.suspended": "【直播已暂停】",
    "centre.recheck_failed": "【设备复检未通过】",
}

# A concern's status as a subscription message's phrase field (at most five Chinese characters).
CONCERN_PHRASES = {
    "submitted": "待受理",
    "accepted": "已受理",
    "resolved": "已办结",
    "dismissed": "不予受理",
}
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# What the person told can do next, by event (notice id filled in).
NEXT_STEP = {
    "notice.issued": "请回复“收到 {id}”签收；整改后回复“整改 {id} 整改说明”，再发送整改照片。",
    "notice.returned": "请重新整改后回复“整改 {id} 整改说明”，再发送整改照片。",
    "notice.overdue": "已超过整改期限，请尽快整改并回复“整改 {id} 整改说明”。",
    "notice.escalated": "监管部门将现场核查，请尽快整改并回复“整改 {id} 整改说明”。",
    "notice.responded": "请复查后回复“通过 {id}”或“退回 {id} 理由”。",
}
# The same events as the inspectors concerned read them (payload "audience": "regulator"): the
# issuer and the agency's supervisors.
REGULATOR_NEXT_STEP = {
    "notice.responded": NEXT_STEP["notice.responded"],
    "notice.overdue": "经营者已逾期未整改，可电话或现场督促，并在平台记录跟进情况。",
    "notice.escalated": (
        "须安排现场核查，不能视频复查：复查时回复“通过 {id} 现场 说明”或“退回 {id} 现场 理由”。"
    ),
}


def render(
    event: str,
    payload: dict[str, Any],
    *,
    audience: str,
    role: str | None = None,
    centre_name: str | None = None,
    base_url: str = "",
) -> Message:
    """`role`: the recipient's role (operator, inspector, parent …) for a person; a group
    robot's readers are regulators."""
    base_url = base_url.rstrip("/")
    reader = role if audience == PERSON and role else GROUP_READER
    url = link(event, payload, reader, base_url)
    title = TITLES.get(event, "【通知】") + (centre_name or "")
    if event.startswith("notice."):
        return _notice(event, payload, title, audience, url)
    if event.startswith("concern."):
        return _concern(payload, title, url)
    if event.startswith("camera."):
        return _camera(payload, title, url)
    lines = []
    if payload.get("status_label"):
        lines.append(f"状态：{payload['status_label']}")
    if payload.get("item"):
        lines.append(f"未通过项目：{payload['item']}")
    if payload.get("reason"):
        lines.append(f"说明：{payload['reason']}")
    return Message(title=title, lines=tuple(lines) or (event,), url=url, fields=(("事项", title),))


def hash_route(event: str, payload: dict[str, Any], reader: str) -> str | None:
    """The H5 page (a main.js route) where `reader` (a role) handles this event, if any."""
    kind = event.split(".", 1)[0]
    regulator = reader in ("inspector", "admin")
    if kind == "notice" and payload.get("notice_id"):
        if reader == "operator":
            return f"/operator/notice/{payload['notice_id']}"
        return f"/inspector/notice/{payload['notice_id']}" if regulator else None
    if kind == "concern" and payload.get("concern_id"):
        if reader == "parent":
            return f"/parent/concern/{payload['concern_id']}"
        if reader == "operator":
            return "/operator/concerns"
        return f"/inspector/concern/{payload['concern_id']}" if regulator else None
    if kind in ("camera", "centre"):
        if reader == "operator":
            return "/operator/cameras"
        if reader == "inspector" and payload.get("centre_id"):
            return f"/inspector/patrol/{payload['centre_id']}"
        return "/inspector" if reader == "admin" else None
    return None


def link(event: str, payload: dict[str, Any], reader: str, base_url: str) -> str | None:
    route = hash_route(event, payload, reader)
    return f"{base_url}/#{route}" if base_url and route else None


def local_time(value: Any) -> str:
    """An ISO timestamp as people read it (and as a subscription message's time field takes
    it): 2026年3月2日 11:30, in China time."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(LOCAL_TZ)
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"


def _notice(
    event: str, payload: dict[str, Any], title: str, audience: str, url: str | None
) -> Message:
    notice_id = payload.get("notice_id")
    number = payload.get("number") or f"草稿 {notice_id}"
    lines = [f"编号：{number}（回复用编号 {notice_id}）"]
    if payload.get("status_label"):
        lines.append(f"状态：{payload['status_label']}")
    if payload.get("deadline") and event not in ("notice.verified", "notice.withdrawn"):
        lines.append(f"整改期限：{payload['deadline']}")
    if payload.get("reason"):
        label = "退回理由" if event == "notice.returned" else "说明"
        lines.append(f"{label}：{payload['reason']}")
    mentions = payload.get("mention") or []
    if audience == GROUP and mentions:
        names = "、".join(
            f"@{m['name']}" + (f"（{m['mobile']}）" if m.get("mobile") else "") for m in mentions
        )
        lines.append(f"{names} 请安排现场核查。")
    steps = REGULATOR_NEXT_STEP if payload.get("audience") == "regulator" else NEXT_STEP
    if audience == PERSON and event in steps:
        lines.append(steps[event].format(id=notice_id))
    return Message(
        title=title,
        lines=tuple(lines),
        url=url,
        fields=(
            ("编号", str(number)),
            ("状态", str(payload.get("status_label") or "")),
            ("整改期限", str(payload.get("deadline") or "")),
        ),
    )


def _concern(payload: dict[str, Any], title: str, url: str | None) -> Message:
    lines = []
    if payload.get("text"):
        lines.append(f"内容：{payload['text']}")
    if payload.get("status_label"):
        lines.append(f"状态：{payload['status_label']}")
    for key, label in (("answer", "答复"), ("reason", "说明"), ("decide_by", "受理期限")):
        if payload.get(key) and not (key == "reason" and payload.get("answer") == payload[key]):
            lines.append(f"{label}：{payload[key]}")
    status = str(payload.get("status") or "")
    note = payload.get("answer") or payload.get("reason") or ""
    return Message(
        title=title,
        lines=tuple(lines) or ("详情请查看家长反映页面",),
        url=url,
        fields=(
            ("事项", str(payload.get("text") or title)),
            ("状态", CONCERN_PHRASES.get(status, str(payload.get("status_label") or ""))),
            ("时间", local_time(payload.get("at") or payload.get("submitted_at"))),
            ("说明", str(note)),
        ),
    )


def _camera(payload: dict[str, Any], title: str, url: str | None) -> Message:
    where = payload.get("camera_name") or f"摄像头 {payload.get('camera_id')}"
    if payload.get("area_name"):
        where += f"（{payload['area_name']}）"
    lines = [f"摄像头：{where}", f"状态：{payload.get('status_label') or payload.get('status')}"]
    if payload.get("reason"):
        lines.append(f"说明：{payload['reason']}")
    lines.append("用餐时段内家长和监管部门无法查看该区域，请尽快检查摄像头和网络。")
    return Message(title=title, lines=tuple(lines), url=url, fields=(("事项", title),))
