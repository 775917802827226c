"""The chat command router: a message from WeChat or WeCom becomes one service call and a
short Chinese reply.

Numbers in commands are notice ids — the number shown in brackets by 通知 and in every
notification ("回复用编号 17"). Not the seq of 美兰市监整〔2026〕17号: an operator may hold notices
of two agencies (market regulation and education) whose seqs collide, and an id is unambiguous.

Operators (official account or WeCom): 通知 · 收到 17 · 整改 17 <说明> then photos · 期限.
Inspectors (WeCom): 通知 (answers awaiting review first) · 通过 17 [现场] [备注] ·
退回 17 <理由>. A review from chat is recorded as remote (live video) unless it says 现场.
Parents (official account, known by their openid): 绑定 <邀请码> · 反映 [序号] <问题> ·
进度 · 直播. Photos a parent sends within `CHAT_PHOTO_WINDOW_S` join the 反映 they just sent, or
the next one if none is open; the concern's client key is the message's dedupe key, so a retried
反映 makes one concern.
Menu clicks carry a key (BK_NOTICES …) or the command itself and are routed the same way.
Anything else gets the help text for the sender's role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app

from app.errors import DomainError
from app.models import Channel, NoticeStatus, RectificationNotice, ReviewMode, Role, User
from app.services import chat, concerns, notices, parents
from bots.channels.callback import Inbound

MENU_KEYS = {
    "BK_NOTICES": "通知",
    "BK_DEADLINES": "期限",
    "BK_HELP": "帮助",
    "BK_BIND": "绑定",
    "BK_PROGRESS": "进度",
    "BK_LIVE": "直播",
}
COMMANDS = ("通知", "收到", "整改", "期限", "通过", "退回", "帮助", "绑定", "反映", "进度", "直播")
_COMMAND_RE = re.compile(r"^\s*(" + "|".join(COMMANDS) + r")\s*(.*)$", re.S)
_ID_RE = re.compile(r"^\s*(\d+)\s*(.*)$", re.S)
MAX_LISTED = 10

HELP = {
    Role.OPERATOR: (
        "可用指令：\n"
        "通知 — 查看待处理的整改通知\n"
        "收到 17 — 签收编号 17 的通知\n"
        "整改 17 整改说明 — 提交整改回复，随后发送整改照片\n"
        "期限 — 查看整改期限"
    ),
    Role.INSPECTOR: (
        "可用指令：\n"
        "通知 — 查看辖区待复查、待整改的通知\n"
        "通过 17 备注 — 复查通过（加“现场”表示现场复查）\n"
        "退回 17 理由 — 退回重新整改"
    ),
}
PARENT_VERBS = ("绑定", "反映", "进度", "直播")
NO_PARENT_ACCOUNT = "请先在“明厨亮灶”小程序中登录并输入邀请码绑定托管机构。"
UNBOUND = (
    "您的账号尚未绑定明厨亮灶系统。家长请发送“绑定 邀请码”；经营者和监管人员请联系管理员绑定。"
)
HELP[Role.PARENT] = (
    "可用指令：\n"
    "绑定 邀请码 — 绑定孩子所在的托管机构\n"
    "反映 问题描述 — 向监管部门反映后厨问题（几分钟内发送的照片会一并提交）\n"
    "进度 — 查看反映的处理进度\n"
    "直播 — 打开后厨直播"
)


@dataclass(frozen=True)
class Reply:
    text: str | None
    # Slow work to do after the answer (download a photo): the inbound record's id.
    photo_followup: bool = False


def normalise(text: str) -> str:
    # Full-width digits and spaces, as Chinese input methods type them.
    table = {ord("　"): " ", **{0xFF10 + i: str(i) for i in range(10)}}
    return text.translate(table).strip()


def handle(inbound: Inbound) -> Reply:
    channel = Channel(inbound.channel)
    user = chat.chat_user(channel, inbound.sender)
    if inbound.msg_type == "event":
        if inbound.event in ("subscribe", "enter_agent"):
            return Reply(_help(user, welcome=True))
        if inbound.event == "click" and inbound.event_key:
            command = MENU_KEYS.get(inbound.event_key, inbound.event_key)
            return Reply(_command(user, channel, inbound, command))
        return Reply(None)  # other events (view, unsubscribe, location) need no answer
    if inbound.msg_type == "image":
        keeps_photos = user is not None and user.role in (Role.OPERATOR, Role.PARENT)
        return Reply(_image(user), photo_followup=keeps_photos)
    if inbound.msg_type == "text" and inbound.text:
        return Reply(_command(user, channel, inbound, normalise(inbound.text)))
    return Reply("暂只支持文字和图片消息。\n" + _help(user))


def _help(user: User | None, welcome: bool = False) -> str:
    greeting = "欢迎使用明厨亮灶。\n" if welcome else ""
    if user is None:
        return greeting + UNBOUND
    return greeting + HELP.get(user.role, "您的角色暂无可用的聊天指令。")


def _command(user: User | None, channel: Channel, inbound: Inbound, text: str) -> str:
    match = _COMMAND_RE.match(text)
    if not match:
        return ("未识别的指令。\n" if user is not None else "") + _help(user)
    verb, rest = match.group(1), match.group(2).strip()
    if verb == "帮助":
        return _help(user)
    if verb in PARENT_VERBS and (user is None or user.role is Role.PARENT):
        try:
            if user is None and verb == "绑定" and channel is Channel.WECHAT_MP:
                # A follower nobody knows yet becomes a parent when they bind with a code.
                user = parents.parent_for_wechat(inbound.sender)
            if user is None:
                return NO_PARENT_ACCOUNT
            return _parent(user, channel, inbound, verb, rest)
        except DomainError as exc:
            return exc.message
    if user is None or user.role not in (Role.OPERATOR, Role.INSPECTOR):
        return _help(user)
    try:
        if user.role is Role.OPERATOR:
            return _operator(user, channel, inbound, verb, rest)
        return _inspector(user, verb, rest)
    except DomainError as exc:
        return exc.message


def _notice_id(verb: str, rest: str, example: str) -> tuple[int, str]:
    match = _ID_RE.match(rest)
    if not match:
        raise _Usage(f"请在“{verb}”后写通知编号，例如：{example}")
    return int(match.group(1)), match.group(2).strip()


class _Usage(DomainError):
    code = "usage"


def _line(notice: RectificationNotice) -> str:
    label = notices.STATUS_LABELS[notice.status]
    deadline = f"，期限 {notice.deadline.isoformat()}" if notice.deadline else ""
    return f"[{notice.id}] {notice.number}｜{label}{deadline}"


def _operator(user: User, channel: Channel, inbound: Inbound, verb: str, rest: str) -> str:
    if verb == "通知":
        rows = notices.list_notices(user, open_only=True)
        if not rows:
            return "目前没有待处理的整改通知。"
        lines = [_line(n) for n in rows[:MAX_LISTED]]
        more = (
            f"\n…另有 {len(rows) - MAX_LISTED} 件，请在手机端查看" if len(rows) > MAX_LISTED else ""
        )
        return "待处理的整改通知（回复时用方括号内的编号）：\n" + "\n".join(lines) + more
    if verb == "期限":
        today = notices.local_today()
        rows = [
            n
            for n in notices.list_notices(user, open_only=True)
            if n.deadline and n.status is not NoticeStatus.RESPONDED
        ]
        if not rows:
            return "目前没有需要整改的通知。"
        lines = []
        for n in rows[:MAX_LISTED]:
            days = (n.deadline - today).days
            when = f"还剩 {days} 天" if days >= 0 else f"已逾期 {-days} 天"
            lines.append(f"[{n.id}] {n.number}：{n.deadline.isoformat()}（{when}）")
        return "整改期限：\n" + "\n".join(lines)
    if verb == "收到":
        notice_id, _ = _notice_id(verb, rest, "收到 17")
        notice = notices.acknowledge(user, notice_id)
        return (
            f"已签收整改通知 {notice.number}，整改期限 {notice.deadline}。"
            f"整改后请回复“整改 {notice.id} 整改说明”，再发送整改照片。"
        )
    if verb == "整改":
        notice_id, text = _notice_id(verb, rest, "整改 17 已更换带盖垃圾桶")
        if not text:
            return f"请写明整改情况，例如：整改 {notice_id} 已更换带盖垃圾桶"
        response, photo_count = chat.answer_notice(user, channel, inbound.sender, notice_id, text)
        minutes = max(current_app.config["CHAT_PHOTO_WINDOW_S"] // 60, 1)
        photos = f"，已附照片 {photo_count} 张" if photo_count else ""
        return (
            f"已提交整改回复（编号 {notice_id}，第 {response.round} 轮{photos}）。"
            f"请在 {minutes} 分钟内发送整改照片，照片将附在本次回复中。"
        )
    return HELP[Role.OPERATOR]


def _inspector(user: User, verb: str, rest: str) -> str:
    if verb == "通知":
        rows = notices.list_notices(user, open_only=True)
        if not rows:
            return "辖区内目前没有未结的整改通知。"
        waiting = [n for n in rows if n.status is NoticeStatus.RESPONDED]
        others = [n for n in rows if n.status is not NoticeStatus.RESPONDED]
        lines = [_line(n) for n in (waiting + others)[:MAX_LISTED]]
        head = f"待复查 {len(waiting)} 件，整改中 {len(others)} 件（回复时用方括号内的编号）：\n"
        return head + "\n".join(lines)
    if verb in ("通过", "退回"):
        example = "通过 17" if verb == "通过" else "退回 17 照片不清楚，请补拍"
        notice_id, text = _notice_id(verb, rest, example)
        mode = ReviewMode.LIVE_VIDEO
        if text.startswith("现场"):
            mode, text = ReviewMode.ON_SITE, text[2:].strip()
        if verb == "通过":
            notice = notices.verify(user, notice_id, notices.ReviewInput(mode=mode, note=text))
            return f"已复查通过整改通知 {notice.number}，通知已办结。"
        if not text:
            return f"请写明退回理由，例如：退回 {notice_id} 照片不清楚，请补拍"
        notice = notices.return_for_rework(
            user, notice_id, notices.ReviewInput(mode=mode), reason=text
        )
        return f"已退回整改通知 {notice.number}，经营者将收到退回理由。"
    return HELP[Role.INSPECTOR]


def _image(user: User | None) -> str:
    if user is not None and user.role is Role.PARENT:
        minutes = max(current_app.config["CHAT_PHOTO_WINDOW_S"] // 60, 1)
        return f"已收到照片。请发送“反映 您要反映的问题”，{minutes} 分钟内发送的照片会一并提交。"
    if user is None or user.role is not Role.OPERATOR:
        return _help(user)
    answer = chat.open_answer(user)
    if answer is not None:
        return f"已收到照片，将附在整改回复（编号 {answer.notice_id}）中。"
    minutes = max(current_app.config["CHAT_PHOTO_WINDOW_S"] // 60, 1)
    return (
        "已收到照片。请发送“整改 编号 整改说明”提交整改回复，"
        f"{minutes} 分钟内发送的照片会一并提交。"
    )


def _parent(user: User, channel: Channel, inbound: Inbound, verb: str, rest: str) -> str:
    base_url = current_app.config["PUBLIC_URL"].rstrip("/")
    if verb == "绑定":
        if not rest:
            return "请在“绑定”后写邀请码，例如：绑定 6K3M9PQX"
        binding = parents.bind(user, rest)
        centre = binding.link.centre
        if not binding.created:
            return f"您已绑定{centre.name}，无需重复绑定。"
        return f"已绑定{centre.name}。发送“直播”观看后厨直播，发送“反映 问题”反映后厨问题。"
    links = parents.linked_centres(user)
    if not links:
        return "您还没有绑定托管机构，请发送“绑定 邀请码”。"
    if verb == "直播":
        # The H5 app's centre page (#/parent/centre/:id in app/web/static/js/main.js).
        lines = [
            f"{link.centre.name}：{base_url}/#/parent/centre/{link.centre_id}" for link in links
        ]
        return "后厨直播（用餐时段开放）：\n" + "\n".join(lines)
    if verb == "进度":
        rows = concerns.list_for_parent(user)
        if not rows:
            return "您还没有提交过反映。"
        lines = [
            f"[{c['id']}] {c['text'][:20]}｜{c['status_label']}"
            + (f"｜{c['answer']}" if c.get("answer") else "")
            for c in rows[:MAX_LISTED]
        ]
        return "您的反映：\n" + "\n".join(lines)
    # 反映 [centre number when bound to several] <text>
    text, centre_id = rest, links[0].centre_id
    if len(links) > 1:
        match = _ID_RE.match(rest)
        numbered = {n: link.centre_id for n, link in enumerate(links, start=1)}
        if not match or int(match.group(1)) not in numbered:
            choices = "\n".join(f"{n}. {link.centre.name}" for n, link in enumerate(links, 1))
            return f"您绑定了多个托管机构，请写明序号，例如：反映 1 问题描述\n{choices}"
        centre_id, text = numbered[int(match.group(1))], match.group(2).strip()
    if not text:
        return "请写明您要反映的问题，例如：反映 厨师没有戴口罩"
    held_ids, photos = chat.photos_of(chat.held_photos(channel, inbound.sender))
    submitted = concerns.submit(
        user,
        concerns.ConcernInput(
            centre_id=centre_id, text=text, client_key=inbound.dedupe_key[:64], source="wechat"
        ),
        photos[: concerns.MAX_PHOTOS],
    )
    if held_ids:
        chat.mark_inbound_processed(held_ids[: concerns.MAX_PHOTOS])
    view = submitted.view
    photo_note = f"，附照片 {len(photos)} 张" if photos else ""
    return (
        f"已提交反映（编号 {view['id']}{photo_note}），监管部门将在 {view['decide_by']} 前受理。"
        "发送“进度”查看处理情况。"
    )
