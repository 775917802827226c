"""Live view (后厨直播): who may watch which camera when, the record of every watch, and the
short-lived signed HLS URLs.

URL: /hls/<expires>-<signature>/<camera_id>/index.m3u8. The token sits in the path so the
playlist's relative segment URIs inherit it. signature = base64url(md5("<expires><camera_id>
<key>")) without padding — the form nginx's secure_link_md5 computes, so the embedded server
and nginx in production check the same tokens (the key comes last, so the MD5 construction
cannot be extended by a client).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from app.errors import Forbidden, NotFound
from app.extensions import db
from app.models import (
    Camera,
    Centre,
    CentreStatus,
    KitchenArea,
    Patrol,
    Role,
    User,
    WatchSession,
    utcnow,
)
from app.services.base import publish, transaction
from app.services.centres import CENTRE_TZ, current_meal_window, in_meal_window
from app.services.scope import Access, require_centre

# ASCII only and matched whole (fullmatch): "\d" would take other scripts' digits and "$" a
# trailing newline — text the app never signed and nginx's secure_link would refuse.
TOKEN_RE = re.compile(r"(?P<expires>[0-9]{10})-(?P<signature>[A-Za-z0-9_-]{22})")
# What the HLS folder may serve: the playlist and ffmpeg's segment files, nothing else.
HLS_FILE_RE = re.compile(r"index\.m3u8|[A-Za-z0-9_-]{1,64}\.(?:ts|m4s|mp4)")
# What a parent is told when a suspension has no reason on record.
SUSPENDED_TEXT = "监管部门已暂停该机构的直播"


@dataclass(frozen=True)
class WatchGrant:
    camera: Camera
    url: str
    expires_at: datetime
    session: WatchSession


def sign(camera_id: int, expires: int, key: str) -> str:
    """The token's signature: a keyed MD5 over expiry and camera, in exactly the form nginx's
    stock secure_link module checks (secure_link_md5), so production serves HLS with no code
    on the request path. Not an HMAC: Debian's nginx has no HMAC check without a scripting
    module. The key stays server-side and the expiry is short (HLS_TOKEN_TTL_S)."""
    digest = hashlib.md5(f"{expires}{camera_id} {key}".encode()).digest()  # noqa: S324
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_for(camera_id: int, expires: int, key: str) -> str:
    return f"{expires}-{sign(camera_id, expires, key)}"


def check_token(token: str, camera_id: int, key: str, now: datetime | None = None) -> str | None:
    """None when the token lets this request through, else why not (for the error body)."""
    match = TOKEN_RE.fullmatch(token)
    if match is None:
        return "token_invalid"
    expected = sign(camera_id, int(match["expires"]), key)
    if not hmac.compare_digest(expected, match["signature"]):
        return "token_invalid"
    if int(match["expires"]) < int((now or utcnow()).timestamp()):
        return "token_expired"
    return None


def _window_text(camera: Camera, at: datetime) -> str:
    local = at.astimezone(CENTRE_TZ)
    today = [
        w for w in camera.centre.meal_windows if w.weekday is None or w.weekday == local.weekday()
    ]
    if not today:
        return "今日无开放时段"
    return "、".join(
        f"{w.label} {w.starts_at.strftime('%H:%M')}–{w.ends_at.strftime('%H:%M')}" for w in today
    )


def _authorise(user: User, camera: Camera, at: datetime) -> None:
    """The watch policy (DESIGN.md): parents only their centres' cameras in rooms shown to
    parents during meal windows; operators their own centre; inspectors their jurisdiction at
    any time; technicians the centres they install; admins everything."""
    _require_scope(user, camera.centre)
    refusal = _viewing_refusal(user, camera, db.session.get(KitchenArea, camera.area_id), at)
    if refusal is not None:
        raise refusal


def _require_scope(user: User, centre: Centre) -> None:
    access = Access.REGULATE if user.role is Role.INSPECTOR else Access.READ
    require_centre(user, centre.id, access)


def _viewing_refusal(
    user: User, camera: Camera, area: KitchenArea | None, at: datetime
) -> Forbidden | None:
    """The rest of the policy, for a user whose scope covers the camera's centre (`area`:
    the camera's room)."""
    if user.role is not Role.PARENT:
        return None
    centre = camera.centre
    if centre.status is CentreStatus.SUSPENDED:
        reason = centre.suspension_reason or SUSPENDED_TEXT
        return Forbidden(f"该机构直播已暂停：{reason}", reason="centre_suspended")
    if centre.status is not CentreStatus.LIVE:
        return Forbidden("该机构的明厨亮灶尚未开通", reason="centre_not_live")
    if area is None or not area.shown_to_parents:
        return Forbidden("该区域不向家长开放", reason="room_not_shown")
    if not in_meal_window(centre, at):
        return Forbidden(
            f"当前不在直播开放时段（{_window_text(camera, at)}）", reason="outside_meal_window"
        )
    return None


def watch_refusal(user: User, camera: Camera, at: datetime) -> Forbidden | None:
    """Why `user` may not watch `camera` at `at` (the policy `start_watch` applies), or None
    when they may: lets a page show which cameras can be watched now without trying each."""
    return watch_refusals(user, [camera], at)[camera.id]


def watch_refusals(user: User, cameras: list[Camera], at: datetime) -> dict[int, Forbidden | None]:
    """`watch_refusal` for each of one centre's cameras (by camera id), with the user's scope
    checked once for the centre rather than once per camera."""
    if not cameras:
        return {}
    centre = cameras[0].centre
    if any(camera.centre_id != centre.id for camera in cameras):
        raise ValueError("cameras of one centre only")
    try:
        _require_scope(user, centre)
    except Forbidden as refusal:
        return {camera.id: refusal for camera in cameras}
    rooms = {area.id: area for area in centre.areas}  # one query, not one per camera
    return {
        camera.id: _viewing_refusal(user, camera, rooms.get(camera.area_id), at)
        for camera in cameras
    }


def start_watch(
    user: User, camera_id: int, purpose: str = "live", now: datetime | None = None
) -> WatchGrant:
    """Authorise, record the watch (extending the viewer's running session when they refresh
    the URL) and return a signed playlist URL. The media runner sees the lease and keeps the
    camera's stream running while it lasts."""
    now = now or utcnow()
    cfg = current_app.config
    with transaction():
        camera = db.session.get(Camera, camera_id)
        if camera is None or not camera.is_enabled:
            raise NotFound("找不到该摄像头")
        _authorise(user, camera, now)
        lease_until = now + timedelta(seconds=cfg["WATCH_LEASE_S"])
        session = db.session.scalar(
            select(WatchSession)
            .where(
                WatchSession.user_id == user.id,
                WatchSession.camera_id == camera.id,
                WatchSession.ended_at >= now,
            )
            .order_by(WatchSession.id.desc())
            .limit(1)
        )
        if session is None:
            session = WatchSession(
                user_id=user.id, camera_id=camera.id, started_at=now, purpose=purpose
            )
            db.session.add(session)
        # ended_at is the lease: it moves forward on every refresh and stays where the viewer
        # stopped asking, so the record says who watched from when to when.
        session.ended_at = lease_until
        db.session.flush()
        publish(
            "camera.watch_requested",
            camera_id=camera.id,
            centre_id=camera.centre_id,
            until=lease_until.isoformat(),
        )
    if user.role is not Role.PARENT:
        # Staff may watch a suspended centre: their playlist must not meet a refusal cached
        # before their lease existed.
        _forget_cameras({camera.id})
    expires = int(now.timestamp()) + cfg["HLS_TOKEN_TTL_S"]
    token = token_for(camera.id, expires, cfg["HLS_SIGNING_KEY"])
    return WatchGrant(
        camera=camera,
        url=f"/hls/{token}/{camera.id}/index.m3u8",
        expires_at=datetime.fromtimestamp(expires, tz=now.tzinfo),
        session=session,
    )


def cameras_in_demand(now: datetime | None = None) -> set[int]:
    """Cameras somebody is watching now (an unexpired lease)."""
    now = now or utcnow()
    return set(
        db.session.scalars(select(WatchSession.camera_id).where(WatchSession.ended_at >= now))
    )


@dataclass(frozen=True)
class StreamDemand:
    """Why a camera's stream should run now, and until when."""

    camera_id: int
    key: str  # a viewer lease ("watch:<session id>") or a warm reason ("meal", "patrol")
    until: datetime
    viewer: bool


PATROL_WARM = timedelta(minutes=2)
PATROL_MAX_AGE = timedelta(hours=4)


def stream_demand(camera_ids: set[int], now: datetime | None = None) -> list[StreamDemand]:
    """Who needs which of these cameras now (DESIGN.md media rules): viewers' leases; rooms
    shown to parents during their centre's meal windows (kept warm so the first frame comes
    from a running stream); every room of a centre under an open patrol."""
    now = now or utcnow()
    demands: list[StreamDemand] = []
    leases = db.session.execute(
        select(WatchSession.id, WatchSession.camera_id, WatchSession.ended_at)
        .join(User, User.id == WatchSession.user_id)
        .join(Camera, Camera.id == WatchSession.camera_id)
        .join(Centre, Centre.id == Camera.centre_id)
        .where(
            WatchSession.ended_at >= now,
            WatchSession.camera_id.in_(camera_ids),
            # A parent's lease counts only while the centre is live: one taken in the instant
            # before a suspension committed must not keep the stream running.
            or_(User.role != Role.PARENT, Centre.status == CentreStatus.LIVE),
        )
    )
    for session_id, camera_id, ended_at in leases:
        demands.append(StreamDemand(camera_id, f"watch:{session_id}", ended_at, True))
    cameras = list(db.session.scalars(select(Camera).where(Camera.id.in_(camera_ids))))
    for camera in cameras:
        centre = camera.centre
        if centre.status is CentreStatus.LIVE and camera.area.shown_to_parents:
            window = current_meal_window(centre, now)
            if window is not None:
                demands.append(StreamDemand(camera.id, "meal", window.ends_at, False))
    patrolled = set(
        db.session.scalars(
            select(Patrol.centre_id).where(
                Patrol.ended_at.is_(None), Patrol.started_at >= now - PATROL_MAX_AGE
            )
        )
    )
    for camera in cameras:
        # A suspended centre is never kept warm: its streams run only while staff watch.
        if camera.centre_id in patrolled and camera.centre.status is not CentreStatus.SUSPENDED:
            demands.append(StreamDemand(camera.id, "patrol", now + PATROL_WARM, False))
    return demands


def withheld_cameras(camera_ids: set[int]) -> set[int]:
    """Those of these cameras whose centre is suspended: the media runner takes back every
    demand on them but staff viewers' leases, so their streams stop at once (not after the
    idle timeout) unless staff are watching."""
    return set(
        db.session.scalars(
            select(Camera.id)
            .join(Centre, Centre.id == Camera.centre_id)
            .where(Camera.id.in_(camera_ids), Centre.status == CentreStatus.SUSPENDED)
        )
    )


# --- suspension ----------------------------------------------------------------------------


def end_parent_leases(centre_id: int, at: datetime) -> None:
    """End now every parent's running lease on the centre's cameras (in the caller's
    transaction): the watch record says they watched until the suspension, and the media
    runner no longer counts them."""
    db.session.execute(
        update(WatchSession)
        .where(
            WatchSession.camera_id.in_(select(Camera.id).where(Camera.centre_id == centre_id)),
            WatchSession.user_id.in_(select(User.id).where(User.role == Role.PARENT)),
            WatchSession.ended_at > at,
            WatchSession.started_at <= at,
        )
        .values(ended_at=at)
        .execution_options(synchronize_session=False)
    )


# Per app (app.extensions): camera id → (valid until, monotonic; centre id; refusal or None).
_SUSPENSION_CACHE = "bk_hls_suspension"


def suspended_stream_refusal(camera_id: int, now: datetime | None = None) -> Forbidden | None:
    """Why the signed HLS route must refuse this camera's playlist and segments, or None:
    its centre is suspended and no staff member holds a lease on it.

    Remembered for HLS_SUSPENSION_CHECK_S per camera, so segments cost no database read;
    suspending, reinstating and a staff watch forget it in this process at once (others
    follow within that period).

    The window that remains: tokens name the camera, not the viewer, so while staff watch a
    suspended centre's camera a parent holding an unexpired URL could go on fetching it until
    the token expires (HLS_TOKEN_TTL_S); their next watch call is refused. In production nginx
    checks only the token: there the parent's URL goes dead when the media runner stops the
    stream (no parent lease counts, nothing keeps it warm), within the same window when staff
    keep it running."""
    cache: dict[int, tuple[float, int | None, str | None]] = current_app.extensions.setdefault(
        _SUSPENSION_CACHE, {}
    )
    clock = time.monotonic()
    hit = cache.get(camera_id)
    if hit is not None and hit[0] > clock:
        message = hit[2]
    else:
        centre_id, message = _suspension_message(camera_id, now or utcnow())
        period = float(current_app.config["HLS_SUSPENSION_CHECK_S"])
        cache[camera_id] = (clock + period, centre_id, message)
    return None if message is None else Forbidden(message, reason="centre_suspended")


def _suspension_message(camera_id: int, now: datetime) -> tuple[int | None, str | None]:
    row = db.session.execute(
        select(Centre.id, Centre.status, Centre.suspension_reason)
        .join(Camera, Camera.centre_id == Centre.id)
        .where(Camera.id == camera_id)
    ).first()
    if row is None or row.status is not CentreStatus.SUSPENDED:
        return (row.id if row else None), None
    staff_watching = db.session.scalar(
        select(WatchSession.id)
        .join(User, User.id == WatchSession.user_id)
        .where(
            WatchSession.camera_id == camera_id,
            WatchSession.ended_at >= now,
            User.role != Role.PARENT,
        )
        .limit(1)
    )
    if staff_watching is not None:
        return row.id, None
    return row.id, f"该机构直播已暂停：{row.suspension_reason or SUSPENDED_TEXT}"


def forget_suspension(centre_id: int) -> None:
    """Drop what this process remembers about the centre's cameras (after its status changed)."""
    cache = current_app.extensions.get(_SUSPENSION_CACHE)
    if cache:
        _forget_cameras({cid for cid, entry in list(cache.items()) if entry[1] == centre_id})


def _forget_cameras(camera_ids: set[int]) -> None:
    cache = current_app.extensions.get(_SUSPENSION_CACHE)
    if cache:
        for camera_id in camera_ids:
            cache.pop(camera_id, None)
