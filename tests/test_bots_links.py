"""Every link in a chat message opens a page of the H5 app that its reader may open.

The server serves one page (`/`); the app's pages are hash routes, declared in the `ROUTES`
table of app/web/static/js/main.js with the roles allowed on each. The table is read from
main.js itself, so a renamed page or a link to a page the reader's role is sent away from fails
here.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bots.render import GROUP, GROUP_READER, PERSON, TITLES, render

MAIN_JS = Path(__file__).resolve().parents[1] / "app" / "web" / "static" / "js" / "main.js"
BASE = "https://mcll.example.cn"

# Who the services write each kind of message for (app/services/notices.py, concerns.py,
# cameras.py, onboarding.py): a role for a person, GROUP for the agency's group robots.
READERS: dict[str, tuple[str, ...]] = {
    "notice.issued": ("operator", GROUP),
    "notice.acknowledged": ("inspector",),
    "notice.responded": ("inspector", GROUP),
    "notice.returned": ("operator", GROUP),
    "notice.verified": ("operator", GROUP),
    "notice.overdue": ("operator", "inspector", GROUP),
    "notice.escalated": ("operator", "inspector", GROUP),
    "notice.withdrawn": ("operator", GROUP),
    "concern.submitted": ("parent", GROUP),
    "concern.accepted": ("parent",),
    "concern.dismissed": ("parent",),
    "concern.resolved": ("parent",),
    "concern.assigned": ("inspector",),
    "camera.offline": ("operator", GROUP),
    "camera.tampered": ("operator", GROUP),
    "centre.suspended": ("operator",),
    "centre.recheck_failed": ("operator",),
}
PAYLOAD = {"notice_id": 17, "number": "美兰市监整〔2026〕17号", "concern_id": 5, "centre_id": 3}


def h5_routes() -> list[tuple[re.Pattern[str], list[str] | None]]:
    """main.js's ROUTES: each pattern as main.js matches it, with the roles allowed (None:
    public; []: any signed-in user)."""
    source = MAIN_JS.read_text(encoding="utf-8")
    table = re.search(r"const ROUTES = \[(.*?)\n\];", source, re.S)
    assert table, "main.js has no ROUTES table"
    routes = []
    for pattern, roles in re.findall(
        r'\[\s*"(/[^"]*)",\s*"\w+",\s*"\w+",\s*(null|\[[^\]]*\])\s*\]', table.group(1)
    ):
        regex = re.compile("^" + re.sub(r":\w+", "([^/]+)", pattern) + "/?$")
        routes.append((regex, None if roles == "null" else re.findall(r'"(\w+)"', roles)))
    assert len(routes) > 10, "could not read main.js's ROUTES"
    return routes


def opens_for(url: str, role: str) -> bool:
    """Whether `url` is the H5 shell with a hash route that `role` may open."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != BASE or parts.path != "/" or not parts.fragment:
        return False
    path = parts.fragment.split("?", 1)[0]
    for regex, roles in h5_routes():
        if regex.match(path):
            return roles is not None and (roles == [] or role in roles)
    return False


def test_the_route_table_is_read_from_main_js():
    assert opens_for(f"{BASE}/#/operator/notice/17", "operator")
    assert not opens_for(f"{BASE}/#/operator/notice/17", "inspector")
    assert not opens_for(f"{BASE}/notices/17", "operator")  # the old, dead link
    assert not opens_for(f"{BASE}/#/notices/17", "operator")


def test_the_server_serves_the_page_every_link_opens(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "js/main.js" in response.get_data(as_text=True)


def test_every_message_kind_has_its_own_title_and_readers_listed_here():
    # A kind without a title would reach people as the bare fallback "【通知】".
    assert set(TITLES) == set(READERS)
    assert render("concern.assigned", PAYLOAD, audience=PERSON, role="inspector").title == (
        "【家长反映已指派给您】"
    )


@pytest.mark.parametrize(
    ("event", "reader"), [(e, r) for e, readers in READERS.items() for r in readers]
)
def test_every_link_opens_a_page_its_reader_may_open(event, reader):
    message = render(
        event,
        PAYLOAD,
        audience=GROUP if reader == GROUP else PERSON,
        role=None if reader == GROUP else reader,
        centre_name="阳光小树苗托管中心",
        base_url=BASE,
    )
    assert message.url is not None, f"{event} to {reader} carries no link"
    role = GROUP_READER if reader == GROUP else reader
    assert opens_for(message.url, role), f"{event} to {reader}: {message.url}"
    assert message.url in message.as_text()


@pytest.mark.parametrize(
    ("event", "reader", "route"),
    [
        ("notice.issued", "operator", "/operator/notice/17"),
        ("notice.responded", "inspector", "/inspector/notice/17"),
        ("notice.overdue", GROUP, "/inspector/notice/17"),
        ("concern.resolved", "parent", "/parent/concern/5"),
        ("concern.assigned", "inspector", "/inspector/concern/5"),
        ("concern.submitted", GROUP, "/inspector/concern/5"),
        ("camera.offline", "operator", "/operator/cameras"),
        ("camera.tampered", GROUP, "/inspector/patrol/3"),
    ],
)
def test_a_link_names_the_very_notice_or_concern(event, reader, route):
    message = render(
        event,
        PAYLOAD,
        audience=GROUP if reader == GROUP else PERSON,
        role=None if reader == GROUP else reader,
        base_url=BASE,
    )
    assert message.url == f"{BASE}/#{route}"


def test_without_a_public_url_no_link_is_made():
    message = render("notice.issued", PAYLOAD, audience=PERSON, role="operator", base_url="")
    assert message.url is None
    assert "详情" not in message.as_text()
