"""Printable documents: the 责令改正通知书 of a notice and the 巡查记录 of a patrol (PDF)."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from flask import current_app
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.extensions import db
from app.models import (
    Agency,
    Centre,
    FindingCategory,
    KitchenArea,
    Patrol,
    RectificationNotice,
    Severity,
    Snapshot,
    User,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# TrueType CJK fonts from Debian (fonts-wqy-zenhei); reportlab cannot embed CFF-based OTF.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
CATEGORY_LABELS = {
    FindingCategory.HYGIENE: "环境卫生",
    FindingCategory.STORAGE: "食品贮存",
    FindingCategory.PESTS: "虫鼠害",
    FindingCategory.STAFF: "人员着装与操作",
    FindingCategory.EQUIPMENT: "设施设备",
    FindingCategory.CAMERA: "摄像头/覆盖",
    FindingCategory.OTHER: "其他",
}
SEVERITY_LABELS = {
    Severity.I: "Ⅰ级（立即整改）",
    Severity.II: "Ⅱ级（限期整改）",
    Severity.III: "Ⅲ级（一般）",
}


class MissingFont(RuntimeError):
    """No embeddable CJK font: the documents would depend on the reader's fonts."""


@cache
def _font() -> str:
    """The CJK font every document is set in, embedded (subset) in the PDF.

    Without it a notice would print only where the viewer happens to have Adobe's Chinese
    fonts (the STSong-Light CID fallback is not embedded). Under test that is an error; in
    production the document is still produced, and the missing package is logged as an error."""
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            pdfmetrics.registerFont(TTFont("BKChinese", path, subfontIndex=0))
            return "BKChinese"
    problem = (
        "no embeddable CJK font for PDF documents: install the Debian package fonts-wqy-zenhei"
        f" (looked for {', '.join(FONT_CANDIDATES)})"
    )
    if current_app.testing:
        raise MissingFont(problem)
    current_app.logger.error("%s; falling back to the non-embedded STSong-Light", problem)
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    return {
        "title": ParagraphStyle(
            "title", fontName=font, fontSize=18, leading=26, alignment=TA_CENTER, spaceAfter=4
        ),
        "number": ParagraphStyle(
            "number", fontName=font, fontSize=11, leading=16, alignment=TA_CENTER, spaceAfter=10
        ),
        "body": ParagraphStyle("body", fontName=font, fontSize=11, leading=18, wordWrap="CJK"),
        "head": ParagraphStyle("head", fontName=font, fontSize=12, leading=20, spaceBefore=8),
        "right": ParagraphStyle(
            "right", fontName=font, fontSize=11, leading=18, alignment=TA_RIGHT
        ),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _local(value) -> str:  # type: ignore[no-untyped-def]
    return value.astimezone(LOCAL_TZ).strftime("%Y年%m月%d日 %H:%M") if value else "—"


def _date(value) -> str:  # type: ignore[no-untyped-def]
    return f"{value.year}年{value.month}月{value.day}日" if value else "—"


def _build(story: list, title: str) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="明厨亮灶监管平台",
    )
    doc.build(story)
    return buffer.getvalue()


def _snapshot_image(path: str) -> Image | None:
    file = Path(path)
    if not file.is_absolute():
        file = Path(current_app.config["INSTANCE_PATH"]) / path
    if not file.exists():
        return None
    image = Image(str(file))
    ratio = (70 * mm) / image.imageWidth
    image.drawWidth, image.drawHeight = 70 * mm, image.imageHeight * ratio
    return image


def _snapshot_story(snapshot: Snapshot, style: ParagraphStyle, label: str = "") -> list:
    """A snapshot as evidence: the picture and when it was taken, with its fingerprint."""
    image = _snapshot_image(snapshot.path)
    if image is None:
        return [_p(f"{label}抓拍照片（编号 {snapshot.id}）文件缺失", style)]
    return [
        image,
        _p(
            f"{label}抓拍时间：{_local(snapshot.taken_at)}　SHA-256：{snapshot.sha256[:16]}…",
            style,
        ),
    ]


def notice_pdf(notice: RectificationNotice) -> bytes:
    styles = _styles()
    centre = db.session.get(Centre, notice.centre_id)
    agency = db.session.get(Agency, notice.agency_id)
    issuer = db.session.get(User, notice.issuer_id)
    assert centre is not None and agency is not None
    story: list = [
        _p(agency.name, styles["title"]),
        _p("责令改正通知书", styles["title"]),
        _p(notice.number or "（草稿，未编号）", styles["number"]),
        _p(f"{centre.name}：", styles["body"]),
        _p(f"地址：{centre.address or '—'}", styles["body"]),
        Spacer(1, 4 * mm),
        _p("经检查，你单位存在下列问题：", styles["body"]),
    ]
    for index, finding in enumerate(notice.findings, start=1):
        area = db.session.get(KitchenArea, finding.area_id) if finding.area_id else None
        where = f"（{area.name}）" if area else ""
        story.append(
            _p(
                f"{index}. {CATEGORY_LABELS[finding.category]}{where}"
                f"【{SEVERITY_LABELS[finding.severity]}】{finding.description}",
                styles["body"],
            )
        )
        for snapshot in finding.snapshots:
            story += _snapshot_story(snapshot, styles["body"])
    if notice.legal_basis:
        story += [_p("依据：", styles["head"]), _p(notice.legal_basis, styles["body"])]
    deadline = _date(notice.deadline)
    if notice.deadline_working_days:
        deadline += f"（{notice.deadline_working_days} 个工作日内"
        deadline += (
            "，节假日安排未公布，暂按周一至周五计算）" if notice.deadline_provisional else "）"
        )
    story += [
        _p("整改要求：", styles["head"]),
        _p(notice.requirements, styles["body"]),
        _p(
            f"请于 {deadline} 前完成整改，并通过“明厨亮灶”平台回复整改情况及照片。"
            "逾期未整改的，将依法依规处理。",
            styles["body"],
        ),
        Spacer(1, 10 * mm),
        _p(f"承办人：{issuer.display_name if issuer else '—'}", styles["right"]),
        _p(agency.name, styles["right"]),
        _p(f"下发时间：{_local(notice.issued_at)}", styles["right"]),
        _p(f"送达时间：{_local(notice.served_at)}", styles["right"]),
    ]
    return _build(story, f"责令改正通知书 {notice.number or ''}")


def patrol_record_pdf(patrol: Patrol) -> bytes:
    styles = _styles()
    centre = db.session.get(Centre, patrol.centre_id)
    inspector = db.session.get(User, patrol.inspector_id)
    assert centre is not None
    mode = "远程视频巡查" if patrol.mode.value == "remote" else "现场巡查"
    story: list = [
        _p("巡查记录", styles["title"]),
        _p(f"编号：XC-{patrol.id:06d}", styles["number"]),
        _p(f"托管机构：{centre.name}", styles["body"]),
        _p(f"巡查方式：{mode}", styles["body"]),
        _p(f"巡查人员：{inspector.display_name if inspector else '—'}", styles["body"]),
        _p(f"开始：{_local(patrol.started_at)}　结束：{_local(patrol.ended_at)}", styles["body"]),
        _p("各区域检查情况：", styles["head"]),
    ]
    rows = [[_p("区域", styles["body"]), _p("结果", styles["body"]), _p("说明", styles["body"])]]
    room_snapshots: list[tuple[str, Snapshot]] = []
    for check in patrol.area_checks:
        area = db.session.get(KitchenArea, check.area_id)
        result = "正常" if check.result.value == "ok" else "发现问题"
        note = check.note or "—"
        if check.snapshot_id is not None:
            snapshot = db.session.get(Snapshot, check.snapshot_id)
            if snapshot is not None:
                room_snapshots.append((area.name if area else "—", snapshot))
                note += f"（抓拍 {snapshot.id}）"
        rows.append(
            [
                _p(area.name if area else "—", styles["body"]),
                _p(result, styles["body"]),
                _p(note, styles["body"]),
            ]
        )
    table = Table(rows, colWidths=[30 * mm, 30 * mm, 110 * mm])
    table.setStyle(
        TableStyle(
            [("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        )
    )
    story.append(table)
    if room_snapshots:
        story.append(_p("区域抓拍：", styles["head"]))
        for room, snapshot in room_snapshots:
            story += _snapshot_story(snapshot, styles["body"], f"{room}　")
    story.append(_p("发现的问题：", styles["head"]))
    if not patrol.findings:
        story.append(_p("未发现问题。", styles["body"]))
    for index, finding in enumerate(patrol.findings, start=1):
        story.append(
            _p(
                f"{index}. {CATEGORY_LABELS[finding.category]}"
                f"【{SEVERITY_LABELS[finding.severity]}】{finding.description}",
                styles["body"],
            )
        )
        for snapshot in finding.snapshots:
            story += _snapshot_story(snapshot, styles["body"])
    if patrol.summary:
        story += [_p("巡查小结：", styles["head"]), _p(patrol.summary, styles["body"])]
    return _build(story, f"巡查记录 XC-{patrol.id:06d}")
