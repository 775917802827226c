"""Property-based fuzzing (hypothesis) of what strangers can send: the HLS token in the URL path
and the WeChat / WeCom callbacks.

- `check_token` never raises, and accepts only a token it signed for that camera (random
  strings; valid tokens mutated one edit at a time).
- `/wechat/callback` and `/wecom/callback` answer every random query and body with a 4xx or a
  200, never a 500; a request whose signature is not valid stores nothing. The signed requests
  are built as the platforms build them (tests/bots_support.py) and then mutated.

Examples are kept modest (200 per property) so the file runs in seconds in CI.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.models import InboundMessage
from app.services.watch import check_token, token_for
from tests.bots_support import (
    MP_TOKEN,
    Signed,
    chat_config,
    post,
    sign,
    text_xml,
    wechat_plain,
    wechat_safe,
    wecom_signed,
)
from tests.bots_support import close_channels as _close_channels
from tests.bots_support import stubs as _stubs
from tests.bots_support import world as _world

stubs, world, close_channels = _stubs, _world, _close_channels

KEY = "fuzz-hls-signing-key"
FUZZ = settings(
    max_examples=200,
    deadline=None,  # the machine may be busy; speed is not what is tested here
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the HLS token ----------------------------------------------------------------------------

camera_ids = st.integers(min_value=1, max_value=10**6)
# A day ahead: the strategy is built at collection time, long before the tests run.
future = st.integers(min_value=int(time.time()) + 86_400, max_value=9_999_999_999)


@st.composite
def mutated(draw, original: str) -> str:  # type: ignore[no-untyped-def]
    """One edit of ``original``: a character replaced, inserted or deleted, or text appended."""
    alphabet = st.characters(codec="utf-8")
    position = draw(st.integers(min_value=0, max_value=len(original)))
    edit = draw(st.sampled_from(["replace", "insert", "delete", "append"]))
    if edit == "replace" and position < len(original):
        return original[:position] + draw(alphabet) + original[position + 1 :]
    if edit == "delete" and position < len(original):
        return original[:position] + original[position + 1 :]
    if edit == "append":
        return original + draw(st.text(alphabet, min_size=1, max_size=5))
    return original[:position] + draw(alphabet) + original[position:]


@FUZZ
@given(token=st.text(max_size=80), camera_id=camera_ids)
def test_check_token_never_raises_and_refuses_random_tokens(token: str, camera_id: int) -> None:
    result = check_token(token, camera_id, KEY)
    assert result in (None, "token_invalid", "token_expired")
    if result is None:  # only possible if the random text happens to be a signed token
        assert token == token_for(camera_id, int(token[:10]), KEY)


@FUZZ
@given(camera_id=camera_ids, expires=future, data=st.data())
def test_check_token_refuses_a_valid_token_for_another_camera_or_key(
    camera_id: int, expires: int, data: st.DataObject
) -> None:
    token = token_for(camera_id, expires, KEY)
    assert check_token(token, camera_id, KEY) is None
    other = data.draw(camera_ids.filter(lambda c: c != camera_id))
    assert check_token(token, other, KEY) == "token_invalid"
    assert check_token(token, camera_id, KEY + "x") == "token_invalid"


@FUZZ
@given(camera_id=camera_ids, expires=future, data=st.data())
def test_a_mutated_token_carries_the_same_expiry_and_signature_when_accepted(
    camera_id: int, expires: int, data: st.DataObject
) -> None:
    """No accepted mutation grants a different expiry or stands on a different signature.
    (Some mutations may be accepted: ones that change neither the expiry nor the signature.)"""
    token = token_for(camera_id, expires, KEY)
    changed = data.draw(mutated(token))
    assume(changed != token)
    result = check_token(changed, camera_id, KEY)
    assert result in (None, "token_invalid", "token_expired")
    if result is None:
        assert int(changed[:10]) == expires
        assert changed[11:33] == token[11:]


def _arabic_indic_expiry(token: str) -> str:
    return "".join(chr(0x660 + int(c)) for c in token[:10]) + token[10:]


@pytest.mark.parametrize(
    "change",
    [lambda t: t + "\n", _arabic_indic_expiry],
    ids=["trailing-newline", "arabic-indic-digits"],
)
def test_check_token_accepts_only_the_exact_token_it_signed(change) -> None:  # type: ignore[no-untyped-def]
    token = token_for(7, int(time.time()) + 300, KEY)
    assert check_token(change(token), 7, KEY) == "token_invalid"


# --- the WeChat / WeCom callbacks ---------------------------------------------------------------


@pytest.fixture
def app_config(app_config, stubs):  # type: ignore[no-untyped-def]
    return chat_config(app_config, stubs)


def stored() -> int:
    return db.session.scalar(select(func.count(InboundMessage.id)))


QUERY_KEYS = [
    "signature",
    "timestamp",
    "nonce",
    "msg_signature",
    "encrypt_type",
    "openid",
    "echostr",
]
queries = st.dictionaries(
    st.sampled_from(QUERY_KEYS) | st.text(min_size=1, max_size=8),
    st.text(max_size=60) | st.from_regex(r"\A[0-9]{1,12}\Z") | st.just(str(int(time.time()))),
    max_size=7,
)
bodies = (
    st.binary(max_size=2000)
    | st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass"))
    | st.builds(
        lambda tag, inner: f"<xml><{tag}>{inner}</{tag}></xml>".encode("utf-8", "surrogatepass"),
        st.sampled_from(["MsgType", "Encrypt", "Content", "FromUserName", "Event"]),
        st.text(max_size=200),
    )
)
PATHS = ["/wechat/callback", "/wecom/callback"]


def _ok_status(status: int) -> bool:
    return status == 200 or 400 <= status < 500


@FUZZ
@given(path=st.sampled_from(PATHS), query=queries, body=bodies)
def test_callbacks_answer_random_requests_without_a_500_and_store_nothing(
    client, world, path: str, query: dict[str, str], body: bytes
) -> None:
    before = stored()
    response = client.post(path, query_string=query, data=body, content_type="text/xml")
    assert _ok_status(response.status_code), (response.status_code, response.get_data()[:300])
    assert response.status_code != 200  # nothing random carries a valid signature
    echo = client.get(path, query_string=query)
    assert _ok_status(echo.status_code)
    assert stored() == before


@FUZZ
@given(field=st.sampled_from(["signature", "timestamp", "nonce"]), data=st.data())
def test_a_signed_message_with_any_query_field_mutated_is_refused(
    client, world, field: str, data: st.DataObject
) -> None:
    before = stored()
    signed = wechat_plain(text_xml(world["operator"].wechat_openid, "通知"))
    changed = data.draw(mutated(signed.query[field]))
    assume(changed != signed.query[field])
    signed.query[field] = changed
    # Another timestamp with a signature still valid for it would be a different request.
    ts, nonce = signed.query["timestamp"], signed.query["nonce"]
    assume(sign(MP_TOKEN, ts, nonce) != signed.query["signature"])
    response = post(client, "/wechat/callback", signed)
    assert response.status_code == 403, response.get_data()[:300]
    assert stored() == before


@FUZZ
@given(data=st.data())
def test_a_safe_mode_message_with_its_envelope_mutated_is_refused(
    client, world, data: st.DataObject
) -> None:
    before = stored()
    signed = wechat_safe(text_xml(world["operator"].wechat_openid, "通知"))
    start = signed.body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    end = signed.body.index("]]></Encrypt>")
    encrypted = signed.body[start:end]
    changed = data.draw(mutated(encrypted).filter(lambda s: "]]>" not in s))
    assume(changed != encrypted)
    mutated_request = Signed(signed.query, signed.body[:start] + changed + signed.body[end:])
    response = post(client, "/wechat/callback", mutated_request)
    assert response.status_code in (400, 403), response.get_data()[:300]
    assert stored() == before


@FUZZ
@given(data=st.data())
def test_a_wecom_message_with_its_envelope_mutated_is_refused(
    client, world, stubs, data: st.DataObject
) -> None:
    before = stored()
    corp, agent = stubs.wecom.corp_id, stubs.wecom.agent_id
    signed = wecom_signed(text_xml("wang.jianguan", "通知", to=corp, agent_id=agent), corp, agent)
    start = signed.body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    end = signed.body.index("]]></Encrypt>")
    encrypted = signed.body[start:end]
    changed = data.draw(mutated(encrypted).filter(lambda s: "]]>" not in s))
    assume(changed != encrypted)
    mutated_request = Signed(signed.query, signed.body[:start] + changed + signed.body[end:])
    response = post(client, "/wecom/callback", mutated_request)
    assert response.status_code in (400, 403), response.get_data()[:300]
    assert stored() == before


@pytest.mark.parametrize("created", [":795987053", "yesterday", "1.5"])
def test_a_signed_message_with_a_non_numeric_create_time_is_a_400(
    client, world, created: str
) -> None:
    xml = text_xml(world["operator"].wechat_openid, "通知")
    xml = re.sub(r"<CreateTime>\d+</CreateTime>", f"<CreateTime>{created}</CreateTime>", xml)
    response = post(client, "/wechat/callback", wechat_plain(xml))
    assert response.status_code == 400


@FUZZ
@given(data=st.data())
def test_a_validly_signed_plain_message_with_a_mutated_body_never_gets_a_500(
    client, world, data: st.DataObject
) -> None:
    """Plain mode signs only token, timestamp and nonce, so a changed body still passes the
    signature: whatever it says must be answered (200) or refused (4xx), never crash.
    """
    xml = text_xml(world["operator"].wechat_openid, "通知")
    body = data.draw(mutated(xml))
    signed = wechat_plain(body)
    response = post(client, "/wechat/callback", signed)
    assert _ok_status(response.status_code), (response.status_code, response.get_data()[:300])
