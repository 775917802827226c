"""Outbox rows rendered as chat messages, in Chinese, from the event name and its payload.

Pure functions: the dispatcher passes what the payload lacks (the centre's name, the public
URL). Messages to a person carry the chat commands that act on them (收到 17 …); messages to a
group robot only inform. The number in a command is the notice id (see bots/router.py).
"""

from __future__ import annotations

from typing import Any

from bots.channels import Message

PERSON, GROUP = "person", "group"

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
    "camera.offline": "【摄像头离线】",
    "camera.tampered": "【摄像头画面异常】",
}

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
    centre_name: str | None = None,
    base_url: str = "",
) -> Message:
    base_url = base_url.rstrip("/")
    title = TITLES.get(event, "【通知】") + (centre_name or "")
    if event.startswith("notice."):
        return _notice(event, payload, title, audience, base_url)
    if event.startswith("concern."):
        return _concern(event, payload, title, base_url)
    if event.startswith("camera."):
        return _camera(payload, title)
    lines = []
    if payload.get("status_label"):
        lines.append(f"状态：{payload['status_label']}")
    if payload.get("reason"):
        lines.append(f"说明：{payload['reason']}")
    return Message(title=title, lines=tuple(lines) or (event,), fields=(("事项", title),))


def _notice(
    event: str, payload: dict[str, Any], title: str, audience: str, base_url: str
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
        url=f"{base_url}/notices/{notice_id}" if base_url and notice_id else None,
        fields=(
            ("编号", str(number)),
            ("状态", str(payload.get("status_label") or "")),
            ("整改期限", str(payload.get("deadline") or "")),
        ),
    )


def _concern(event: str, payload: dict[str, Any], title: str, base_url: str) -> Message:
    concern_id = payload.get("concern_id")
    lines = []
    if payload.get("text"):
        lines.append(f"内容：{payload['text']}")
    if payload.get("status_label"):
        lines.append(f"状态：{payload['status_label']}")
    for key, label in (("answer", "答复"), ("reason", "说明"), ("decide_by", "受理期限")):
        if payload.get(key):
            lines.append(f"{label}：{payload[key]}")
    return Message(
        title=title,
        lines=tuple(lines) or ("详情请查看家长反映页面",),
        url=f"{base_url}/concerns/{concern_id}" if base_url and concern_id else None,
        fields=(
            ("事项", title),
            ("状态", str(payload.get("status_label") or "")),
            ("时间", str(payload.get("submitted_at") or "")),
        ),
    )


def _camera(payload: dict[str, Any], title: str) -> Message:
    where = payload.get("camera_name") or f"摄像头 {payload.get('camera_id')}"
    if payload.get("area_name"):
        where += f"（{payload['area_name']}）"
    lines = [f"摄像头：{where}", f"状态：{payload.get('status_label') or payload.get('status')}"]
    if payload.get("reason"):
        lines.append(f"说明：{payload['reason']}")
    lines.append("用餐时段内家长和监管部门无法查看该区域，请尽快检查摄像头和网络。")
    return Message(title=title, lines=tuple(lines), fields=(("事项", title),))
