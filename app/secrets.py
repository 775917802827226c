"""Encryption of secrets at rest (RTSP credentials) and redaction for display and logs."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from config import Config
from media.redact import redact as media_redact

# One redaction everywhere: the media library's (media/ imports nothing from app/, so the app
# uses its pure helper rather than the other way round). It hides user:pass@ in URLs, whole
# even when the password contains "@", and password= query parameters.
redact = media_redact


def redact_url(url: str) -> str:
    """The URL as it may be shown and logged: no user:pass@ and no ``password=`` parameter
    (cheap cameras put one in the path or the query)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return redact(urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, "")))


def _fernet(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


def encrypt_secret(plaintext: str) -> str:
    return _fernet(current_app.config["CREDENTIALS_KEYS"]).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(current_app.config["CREDENTIALS_KEYS"]).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("stored secret cannot be decrypted with the configured keys") from exc


def ensure_local_secrets(config: Config) -> None:
    """Outside production, create the secret keys once in the instance folder so the embedded
    default needs no setup and keeps its keys across restarts."""
    names = ("SECRET_KEY", "CREDENTIALS_KEYS", "HLS_SIGNING_KEY")
    if all(getattr(config, name) for name in names):
        return
    path = Path(config.INSTANCE_PATH) / "secrets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    generators = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "CREDENTIALS_KEYS": lambda: Fernet.generate_key().decode(),
        "HLS_SIGNING_KEY": lambda: secrets.token_urlsafe(32),
    }
    if any(name not in stored for name in names):
        for name in names:
            stored.setdefault(name, generators[name]())
        path.write_text(json.dumps(stored))
        path.chmod(0o600)
    for name in names:
        if not getattr(config, name):
            setattr(config, name, stored[name])
