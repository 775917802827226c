"""Configuration classes, read from environment variables when the app is created.

Nothing here runs at import time: `Config.from_env()` builds a config object when asked, so
tests can pass their own. Production refuses to start without its secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. production without a secret)."""


def _env_bool(value: str) -> bool:
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


@dataclass
class Config:
    """Settings shared by every environment. Upper-case names become Flask config keys."""

    ENV_NAME: str = "development"
    DEBUG: bool = False
    TESTING: bool = False
    SECRET_KEY: str | None = None
    # Fernet keys (comma-separated, newest first) that encrypt RTSP credentials at rest.
    CREDENTIALS_KEYS: str | None = None
    # Signs short-lived HLS URLs; nginx's secure_link checks the same signature in production.
    HLS_SIGNING_KEY: str | None = None
    HLS_TOKEN_TTL_S: int = 300
    # The embedded HLS route remembers for this long whether a camera's centre is suspended
    # (one database read per camera and period, not one per segment).
    HLS_SUSPENSION_CHECK_S: float = 2.0
    # Run the media supervisor inside the embedded server (`python -m app.serve`); production
    # runs it on media nodes (`flask bk media`).
    EMBEDDED_MEDIA: bool = True
    # Seconds a stream keeps running after its last viewer, meal window or patrol.
    MEDIA_IDLE_TIMEOUT_S: int = 30
    # A media node silent this long is taken for dead and its cameras are claimed by the others.
    MEDIA_NODE_DEAD_S: float = 30.0
    SNAPSHOT_RETENTION_DAYS: int = 30
    # Delivered chat messages and ended watch sessions (who watched what when) are kept this
    # long; pending and failed messages are never purged.
    NOTIFICATION_RETENTION_DAYS: int = 90
    WATCH_SESSION_RETENTION_DAYS: int = 365
    # A snapshot flags a frozen picture only when the camera is online and the first frames of
    # segments of its running stream this many seconds apart (several of them) are identical.
    # The live playlist holds about 6 s of 1 s segments, so keep it below 5.
    FROZEN_MIN_SPAN_S: float = 4.0
    # A camera bad for this long during a meal window is escalated to the regulators' groups.
    CAMERA_ALERT_ESCALATE_S: int = 600
    # Seconds of video a commissioning probe reads to measure frame rate and keyframe interval.
    PROBE_READ_SECONDS: float = 5.0
    # Sign-off refuses automatic checklist results older than this: run the checks again.
    COMMISSIONING_CHECK_MAX_AGE_H: int = 24
    # A viewer's lease keeps the camera's stream running this long after the last watch call.
    WATCH_LEASE_S: int = 90
    INSTANCE_PATH: str = str(BASE_DIR / "instance")
    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    # Database connections per process. A request that waits DB_POOL_TIMEOUT_S for one gets a
    # 503 "busy" answer at once rather than hanging on (size for the gevent worker's load).
    DB_POOL_SIZE: int = 10
    DB_MAX_OVERFLOW: int = 20
    DB_POOL_TIMEOUT_S: float = 10.0
    # Reverse proxies in front of the app (nginx = 1): their X-Forwarded-For/-Proto are trusted
    # for the client address (rate limits, audit log) and scheme.
    PROXY_HOPS: int = 0
    # Socket.IO async mode: threads in the embedded default, gevent under gunicorn.
    SOCKETIO_ASYNC_MODE: str = "threading"
    # JSON bodies and uploads above this are refused with 413.
    MAX_CONTENT_LENGTH: int = 16 * 1024 * 1024
    ACCESS_TOKEN_TTL_S: int = 15 * 60
    REFRESH_TOKEN_TTL_S: int = 30 * 24 * 3600
    JWT_ISSUER: str = "bright-kitchen"
    LOGIN_MAX_FAILURES: int = 5
    LOGIN_LOCKOUT_S: int = 15 * 60
    WECHAT_APP_ID: str | None = None
    WECHAT_APP_SECRET: str | None = None
    WECHAT_TOKEN: str | None = None
    WECHAT_AES_KEY: str | None = None
    # Mini-program (wx.login → code2session) credentials.
    WXA_APP_ID: str | None = None
    WXA_APP_SECRET: str | None = None
    # Mini-program subscription messages (订阅消息): how a parent who uses only the mini-program
    # hears what became of a concern. The template picked in the mini-program's console, and its
    # keys in order, filled with 事项, 状态, 时间, 说明 (types: thing ≤ 20 characters, phrase ≤ 5
    # Chinese characters, time). Unset: such parents are not told in chat.
    WXA_SUBSCRIBE_TEMPLATE_ID: str | None = None
    WXA_SUBSCRIBE_KEYS: str = "thing1,phrase2,time3,thing4"
    # The mini-program page the message opens, `{url}` replaced by the URL-quoted H5 link
    # (e.g. pages/web/index?url={url}); unset: the message opens nothing.
    WXA_SUBSCRIBE_PAGE: str | None = None
    # Base URL of the WeChat API; tests point it at a local stub.
    WECHAT_API_BASE: str = "https://api.weixin.qq.com"
    # Where WeChat's in-app browser is sent for web authorisation (网页授权): parents opening the
    # H5 app from the official account are signed in by their openid. PUBLIC_URL's host must be
    # one of the account's authorised domains (网页授权域名).
    WECHAT_OAUTH_BASE: str = "https://open.weixin.qq.com"
    WECHAT_HTTP_TIMEOUT_S: float = 5.0
    # Official-account template for notifications outside the 48-hour customer-service window
    # (fields first/keyword1/keyword2/keyword3/remark).
    WECHAT_TEMPLATE_ID: str | None = None
    # WeCom (企业微信) self-built app: callbacks are always encrypted.
    WECOM_CORP_ID: str | None = None
    WECOM_AGENT_ID: int | None = None
    WECOM_SECRET: str | None = field(default=None, repr=False)
    WECOM_TOKEN: str | None = field(default=None, repr=False)
    WECOM_AES_KEY: str | None = field(default=None, repr=False)
    WECOM_API_BASE: str = "https://qyapi.weixin.qq.com"
    DINGTALK_API_BASE: str = "https://oapi.dingtalk.com"
    FEISHU_API_BASE: str = "https://open.feishu.cn"
    # Group-robot destinations as JSON: {"meilan-market": {"channel": "wecom_robot", "key": …},
    # "meilan-ding": {"channel": "dingtalk_robot", "access_token": …, "secret": …},
    # "meilan-feishu": {"channel": "feishu_robot", "token": …, "secret": …}}. Secrets: never logged.
    CHAT_ROBOTS: str | None = field(default=None, repr=False)
    CHAT_HTTP_TIMEOUT_S: float = 5.0
    # Callback bodies above this are refused with 413 before any parsing.
    CHAT_CALLBACK_MAX_BYTES: int = 64 * 1024
    # How far a callback's timestamp may be from our clock (replays outside it are refused).
    CHAT_SIGNATURE_WINDOW_S: int = 300
    # Photos sent in chat join the operator's answer while the answer is open: until this long
    # after the last message of it (then it is submitted), or until they send 提交.
    CHAT_PHOTO_WINDOW_S: int = 180
    # Outbox delivery: retries with exponential backoff, then `failed`. 10 s doubling to 30 min,
    # 16 attempts: a platform down for about four hours still gets every message.
    OUTBOX_MAX_ATTEMPTS: int = 16
    OUTBOX_BACKOFF_BASE_S: float = 10.0
    OUTBOX_BACKOFF_CAP_S: float = 1800.0
    # A claimed row not marked within this is considered abandoned (crashed worker) and retried.
    OUTBOX_LEASE_S: float = 120.0
    OUTBOX_BATCH: int = 100
    # The worker polls the outbox this often (a commit that writes a row also wakes it).
    OUTBOX_POLL_S: float = 2.0
    # Bearer token for /metrics from other hosts (loopback is always allowed).
    METRICS_TOKEN: str | None = None
    DEMO_MODE: bool = False
    DEMO_PASSWORD: str = "bk-demo-2026"
    PUBLIC_URL: str = "http://127.0.0.1:5000"
    HLS_ROOT: str = str(BASE_DIR / "hls")
    # Uploaded photos; defaults to <instance>/uploads.
    UPLOAD_ROOT: str | None = None
    UPLOAD_MAX_BYTES: int = 10 * 1024 * 1024
    # Days an overdue notice waits before it is escalated (supervisor told, on-site visit).
    ESCALATION_GRACE_DAYS: int = 3
    # Invite codes: failed binds counted over a rolling window, per parent and per address (the
    # address limit is looser: many parents share a carrier or school network address).
    BIND_MAX_FAILURES: int = 5
    BIND_MAX_FAILURES_PER_IP: int = 50
    BIND_FAILURE_WINDOW_S: int = 15 * 60
    INVITE_CODE_TTL_DAYS: int = 30
    # Concerns one parent may submit per rolling hour.
    CONCERNS_PER_HOUR: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def SQLALCHEMY_DATABASE_URI(self) -> str:  # noqa: N802 - Flask config key
        if self.DATABASE_URL:
            url = self.DATABASE_URL
            # Accept the common libpq spellings and use the psycopg 3 driver.
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return "sqlite:///" + str(Path(self.INSTANCE_PATH) / "bright_kitchen.sqlite3")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        """Build a config from environment variables (typed by the field annotations)."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in environ:
                continue
            raw = environ[f.name]
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            try:
                if kind.startswith("bool"):
                    values[f.name] = _env_bool(raw)
                elif kind.startswith("int"):
                    values[f.name] = int(raw)
                elif kind.startswith("float"):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ConfigError(f"{f.name}: {exc}") from exc
        values.update(overrides)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Check the settings; subclasses tighten this."""
        self.chat_robots()

    def chat_robots(self) -> dict[str, dict[str, str]]:
        """`CHAT_ROBOTS` parsed: destination name → {"channel": …, and its key or secrets}."""
        if not self.CHAT_ROBOTS:
            return {}
        try:
            robots = json.loads(self.CHAT_ROBOTS)
        except ValueError as exc:
            # Not the text itself: it holds secrets.
            raise ConfigError("CHAT_ROBOTS is not valid JSON") from exc
        if not isinstance(robots, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("channel"), str) for v in robots.values()
        ):
            raise ConfigError('CHAT_ROBOTS must map each destination to {"channel": …, …}')
        return robots

    def to_flask(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["SQLALCHEMY_DATABASE_URI"] = self.SQLALCHEMY_DATABASE_URI
        out["UPLOAD_ROOT"] = self.UPLOAD_ROOT or str(Path(self.INSTANCE_PATH) / "uploads")
        out.update(self.extra)
        return out


@dataclass
class DevelopmentConfig(Config):
    """The embedded default: SQLite in the instance folder, demo data allowed."""

    ENV_NAME: str = "development"
    DEMO_MODE: bool = True


@dataclass
class TestingConfig(Config):
    ENV_NAME: str = "testing"
    TESTING: bool = True
    DEMO_MODE: bool = True
    SECRET_KEY: str | None = "test-secret-key-that-is-long-enough-for-hs256"
    # A fixed Fernet key so tests are repeatable; never used outside tests.
    CREDENTIALS_KEYS: str | None = "8rgvJ0i6cC2mKxJgWm0HKzqJ8Q6m0yA1zD0b3V0tW3c="
    HLS_SIGNING_KEY: str | None = "test-hls-signing-key"
    WXA_APP_ID: str | None = "wx-test-miniprogram"
    WXA_APP_SECRET: str | None = "wxa-test-secret"


@dataclass
class ProductionConfig(Config):
    ENV_NAME: str = "production"
    DEMO_MODE: bool = False
    PROXY_HOPS: int = 1
    SOCKETIO_ASYNC_MODE: str = "gevent"

    def validate(self) -> None:
        super().validate()
        missing = [
            name
            for name in ("SECRET_KEY", "CREDENTIALS_KEYS", "HLS_SIGNING_KEY", "DATABASE_URL")
            if not getattr(self, name)
        ]
        if missing:
            raise ConfigError("production needs these settings: " + ", ".join(missing))
        if len(self.SECRET_KEY or "") < 32:
            raise ConfigError("SECRET_KEY must be at least 32 characters in production")
        if self.DEMO_MODE:
            raise ConfigError("DEMO_MODE cannot be on in production")
        _check_fernet_keys(self.CREDENTIALS_KEYS or "")


def _check_fernet_keys(keys: str) -> None:
    """Refuse a malformed key list at start-up rather than at the first camera saved."""
    from cryptography.fernet import Fernet

    listed = [k.strip() for k in keys.split(",") if k.strip()]
    if not listed:
        raise ConfigError("CREDENTIALS_KEYS: key 1 is missing")
    for n, key in enumerate(listed, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ConfigError(
                f"CREDENTIALS_KEYS: key {n} is not a Fernet key (32 url-safe base64-encoded "
                "bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(environ: dict[str, str] | None = None, **overrides: Any) -> Config:
    """Pick the config class by `BK_ENV` (development by default) and read the environment."""
    env = dict(os.environ if environ is None else environ)
    name = env.get("BK_ENV", "development")
    if name not in CONFIGS:
        raise ConfigError(f"BK_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
    return CONFIGS[name].from_env(env, **overrides)
