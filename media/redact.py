"""Strip camera credentials from any text before it is kept, logged or returned.

ffmpeg prints the input URL in its errors (``rtsp://admin:pw@10.0.0.7/cam: Connection refused``),
so every stderr line the supervisor keeps and every error it reports goes through `redact`.

The app uses this same function for its own log records (``app.secrets.redact``). It also
hides ``password=`` query parameters, which cheap cameras put in their RTSP paths
(``/user=admin&password=123&channel=1``).
"""

from __future__ import annotations

import re

# Greedy up to the last "@" before the path, so a password containing "@" is hidden whole.
_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"]*@")
_PASSWORD_PARAM_RE = re.compile(r"(?i)\b(?P<key>password|passwd|pwd|pass)=[^&\s'\";]*")


def redact(text: str) -> str:
    """``scheme://user:pass@host`` → ``scheme://***@host`` and ``password=x`` → ``password=***``
    everywhere in ``text``."""
    text = _USERINFO_RE.sub(r"\g<scheme>***@", text)
    return _PASSWORD_PARAM_RE.sub(r"\g<key>=***", text)
