"""Who may see and act on which centre. Every API, bot and page goes through these checks.

- admin: every centre;
- parent: centres they are linked to (read only);
- operator: their own centre;
- inspector: centres in their agency's jurisdiction (its district and the districts below it);
- technician: centres assigned to them.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Select, select

from app.errors import Forbidden, NotFound
from app.extensions import db
from app.models import Agency, Centre, District, ParentLink, Role, TechnicianAssignment, User


class Access(StrEnum):
    READ = "read"
    MANAGE = "manage"  # operator running the centre, technician installing it
    REGULATE = "regulate"  # inspector acting as regulator


_ALLOWED: dict[Role, set[Access]] = {
    Role.ADMIN: {Access.READ, Access.MANAGE, Access.REGULATE},
    Role.PARENT: {Access.READ},
    Role.OPERATOR: {Access.READ, Access.MANAGE},
    Role.INSPECTOR: {Access.READ, Access.REGULATE},
    Role.TECHNICIAN: {Access.READ, Access.MANAGE},
}


def jurisdiction_district_ids(agency: Agency) -> list[int]:
    """The agency's district and every district below it."""
    found = [agency.district_id]
    frontier = [agency.district_id]
    while frontier:
        children = list(
            db.session.scalars(select(District.id).where(District.parent_id.in_(frontier)))
        )
        frontier = [c for c in children if c not in found]
        found.extend(frontier)
    return found


def regulators_of(centre: Centre) -> list[Agency]:
    """The agencies whose jurisdiction covers the centre: those of its district and of every
    district above it."""
    return sorted(regulators_of_district(centre.district_id), key=lambda a: a.id)


def regulators_of_district(district_id: int) -> list[Agency]:
    """The agencies whose jurisdiction covers a district, nearest first: the district's own,
    then its parent's, and so on up."""
    districts: list[int] = []
    current: int | None = district_id
    while current is not None and current not in districts:
        districts.append(current)
        district = db.session.get(District, current)
        current = district.parent_id if district else None
    agencies = db.session.scalars(
        select(Agency).where(Agency.district_id.in_(districts)).order_by(Agency.id)
    )
    return sorted(agencies, key=lambda a: districts.index(a.district_id))


def visible_centre_ids(user: User) -> Select[tuple[int]] | None:
    """A SELECT of the centre ids the user may read, or None when they may read all."""
    if user.role is Role.ADMIN:
        return None
    if user.role is Role.PARENT:
        return select(ParentLink.centre_id).where(ParentLink.parent_id == user.id)
    if user.role is Role.OPERATOR:
        return select(Centre.id).where(Centre.id == user.centre_id)
    if user.role is Role.INSPECTOR:
        agency = db.session.get(Agency, user.agency_id)
        districts = jurisdiction_district_ids(agency) if agency else []
        return select(Centre.id).where(Centre.district_id.in_(districts))
    if user.role is Role.TECHNICIAN:
        return select(TechnicianAssignment.centre_id).where(
            TechnicianAssignment.technician_id == user.id
        )
    return select(Centre.id).where(False)


def can_access_centre(user: User, centre: Centre, access: Access = Access.READ) -> bool:
    if access not in _ALLOWED[user.role]:
        return False
    visible = visible_centre_ids(user)
    if visible is None:
        return True
    query = select(Centre.id).where(Centre.id == centre.id, Centre.id.in_(visible))
    return db.session.scalar(query) is not None


_REFUSALS: dict[Role, str] = {
    Role.PARENT: "您尚未绑定该托管机构",
    Role.OPERATOR: "这不是您经营的托管机构",
    Role.INSPECTOR: "该托管机构不在您单位的辖区内",
    Role.TECHNICIAN: "您未被指派到该托管机构",
}


def require_centre(user: User, centre_id: int, access: Access = Access.READ) -> Centre:
    """The centre, if the user may access it this way; 404 if it does not exist, else 403."""
    centre = db.session.get(Centre, centre_id)
    if centre is None:
        raise NotFound("找不到该托管机构")
    if access not in _ALLOWED[user.role]:
        raise Forbidden("您的角色不能执行此操作", reason="role")
    if not can_access_centre(user, centre, access):
        raise Forbidden(_REFUSALS.get(user.role, "没有权限访问该托管机构"), reason="scope")
    return centre


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise Forbidden("您的角色不能执行此操作", reason="role")
