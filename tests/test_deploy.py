"""The production layout: gunicorn with gevent workers serving the API and Socket.IO over
WebSocket, the nginx site configs parsing, and deploy/compose.yaml checked without a container
engine (none runs on the build machines): what it builds, mounts, runs and configures."""

from __future__ import annotations

import fnmatch
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio
import yaml
from cryptography.fernet import Fernet

from app.extensions import db
from app.models import Role
from config import Config, load_config
from tests import factories as f
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_nginx_site_config_parses(tmp_path):
    site = (ROOT / "deploy" / "nginx" / "bright-kitchen.conf").read_text()
    (tmp_path / "hls-key.conf").write_text('set $hls_signing_key "k";\n')
    site = site.replace("/etc/bright-kitchen/hls-key.conf", str(tmp_path / "hls-key.conf"))
    site = site.replace("/opt/bright-kitchen/deploy", str(ROOT / "deploy"))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{_free_port()};")
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ include {ROOT}/deploy/nginx/hls-maps.conf; include {tmp_path}/site.conf; }}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_gunicorn_gevent_serves_the_api_and_websocket_socketio(app, app_config):
    user = f.user(Role.ADMIN)
    db.session.commit()
    port = _free_port()
    database_url = PG_URL or f"sqlite:///{app_config.INSTANCE_PATH}/bright_kitchen.sqlite3"
    env = {
        **os.environ,
        "BK_ENV": "production",
        "SECRET_KEY": app_config.SECRET_KEY,
        "CREDENTIALS_KEYS": app_config.CREDENTIALS_KEYS,
        "HLS_SIGNING_KEY": "production-test-key",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": app_config.INSTANCE_PATH,
        "BK_BIND": f"127.0.0.1:{port}",
    }
    env.pop("REDIS_URL", None)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(base + "/healthz", timeout=5)
                break
            except requests.RequestException:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        token = requests.post(
            base + "/api/v1/auth/login",
            json={"username": user.username, "password": f.PASSWORD},
            timeout=5,
        ).json()["access_token"]
        connected = threading.Event()
        client = socketio.Client(reconnection=False)
        client.on("connect", lambda: connected.set(), namespace="/live")
        client.connect(
            base,
            namespaces=["/live"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            assert connected.wait(5)
            assert client.transport() == "websocket"
        finally:
            client.disconnect()
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


# --------------------------------------------------------------------- deploy/compose.yaml

COMPOSE = DEPLOY / "compose.yaml"
# What an operator copies to deploy/.env (git-ignored) and fills in.
ENV_EXAMPLE = DEPLOY / "env.example"
# The values env.example leaves empty for the operator, filled here the way it says.
FILLED_BY_OPERATOR = {
    "SECRET_KEY": secrets.token_urlsafe(48),
    "CREDENTIALS_KEYS": Fernet.generate_key().decode(),
    "HLS_SIGNING_KEY": secrets.token_urlsafe(32),
    "POSTGRES_PASSWORD": secrets.token_hex(24),
}
# Used only by compose itself (interpolation), not read by the app.
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env_example(*, commented: bool = False) -> dict[str, str]:
    """NAME=value lines of env.example (with `commented`, also the `# NAME=` ones)."""
    pattern = r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$" if commented else r"^([A-Z][A-Z0-9_]*)=(.*)$"
    return {
        m.group(1): m.group(2)
        for m in map(re.compile(pattern).match, ENV_EXAMPLE.read_text().splitlines())
        if m
    }


def _dotenv() -> dict[str, str]:
    """deploy/.env as the operator writes it: env.example with its blanks filled."""
    values = _env_example()
    blanks = {name for name, value in values.items() if not value}
    assert blanks == set(FILLED_BY_OPERATOR), "env.example's blanks changed: update this test"
    return {**values, **FILLED_BY_OPERATOR}


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:?message}` and `${NAME:-default}` (from deploy/.env)."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"compose would refuse to start: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:\?|:-)([^}]*))?\}", one, value)


def _service_env(service: dict) -> dict[str, str]:
    """The environment a container of this service starts with (env_file, then environment)."""
    env: dict[str, str] = {}
    env_files = service.get("env_file") or []
    for name in [env_files] if isinstance(env_files, str) else env_files:
        assert name == ".env", f"unexpected env_file {name!r}"
        env.update(_dotenv())
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({k: _interpolate(str(v), _dotenv()) for k, v in environment.items()})
    return env


def _built_services() -> dict[str, dict]:
    """The services that run our image (built from the repository), by name."""
    return {name: svc for name, svc in _compose()["services"].items() if "build" in svc}


def _bind_mounts(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of the service's bind mounts (short syntax)."""
    mounts = []
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


def _upstream_servers(site: str) -> list[tuple[str, int]]:
    upstream = re.search(r"upstream bright_kitchen_web \{(.*?)\}", site, re.S)
    assert upstream, "no upstream bright_kitchen_web"
    return [(h, int(p)) for h, p in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream[1], re.M)]


def test_compose_builds_from_a_dockerfile_whose_files_exist():
    built = _built_services()
    assert {"web1", "web2", "worker", "media", "migrate"} <= set(built)
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name, service in built.items():
        context = (DEPLOY / service["build"]["context"]).resolve()
        dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: no {dockerfile}"
        text = dockerfile.read_text().replace("\\\n", " ")
        copies = [line.split()[1:] for line in text.splitlines() if line.startswith("COPY ")]
        assert copies, "the Dockerfile copies nothing"
        for args in copies:
            if any(a.startswith("--from=") for a in args):
                continue
            for source in [a for a in args if not a.startswith("--")][:-1]:
                assert (context / source).exists(), f"Dockerfile copies missing {source}"
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), (
                    f"{source} is copied but .dockerignore leaves it out of the context"
                )
    # The secrets file never goes into an image.
    assert any(fnmatch.fnmatch("deploy/.env", pattern) for pattern in ignored)


def test_compose_mounts_only_files_that_exist_and_declares_its_volumes():
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for host, _ in _bind_mounts(service):
            assert host.is_file(), f"{name} mounts {host}, which does not exist"
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
    # env_file .env is the operator's copy of env.example, kept out of git.
    assert ENV_EXAMPLE.is_file()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, check=False
    ).returncode
    assert ignored == 0, "deploy/.env (the secrets) must be git-ignored"


def test_env_example_names_only_settings_the_app_reads():
    known = {f.name for f in Config.__dataclass_fields__.values()} | COMPOSE_ONLY
    unknown = set(_env_example(commented=True)) - known
    assert not unknown, f"env.example names settings config.py does not have: {unknown}"


def test_every_app_service_gets_a_production_config_that_starts(tmp_path):
    for name, service in _built_services().items():
        env = {**_service_env(service), "INSTANCE_PATH": str(tmp_path / name)}
        config = load_config(env)  # raises ConfigError on anything production refuses
        assert config.ENV_NAME == "production", name
        assert config.SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg://bk:"), name
        assert "@postgres:5432/" in config.SQLALCHEMY_DATABASE_URI, name
        # Events from any process (worker, media) must reach every web process's clients.
        assert config.REDIS_URL == "redis://redis:6379/0", name


def test_the_hls_volume_is_where_media_writes_and_nginx_reads():
    services = _compose()["services"]
    hls_root = _service_env(services["media"])["HLS_ROOT"]
    media_volume = next(v for v in services["media"]["volumes"] if v.split(":")[1] == hls_root)
    nginx_volume = next(v for v in services["nginx"]["volumes"] if v.split(":")[1] == hls_root)
    assert media_volume.split(":")[0] == nginx_volume.split(":")[0] == "hls"
    assert nginx_volume.endswith(":ro")
    site = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert f"set $hls_root {hls_root};" in site


def test_nginx_upstream_is_every_web_service_on_its_bind_port():
    services = _compose()["services"]
    web = {
        name: int(_service_env(svc)["BK_BIND"].rsplit(":", 1)[1])
        for name, svc in services.items()
        if str(svc.get("command", "")).startswith("gunicorn")
    }
    assert len(web) >= 2
    servers = _upstream_servers((DEPLOY / "nginx" / "compose.conf").read_text())
    assert sorted(servers) == sorted(web.items())
    for name, port in web.items():
        assert f"127.0.0.1:{port}/healthz" in str(services[name]["healthcheck"]["test"])
        assert set(services["nginx"]["depends_on"][name].values()) == {"service_healthy"}


def test_services_start_after_what_they_need():
    services = _compose()["services"]
    for name, service in _built_services().items():
        needs = service["depends_on"]
        assert needs["postgres"] == {"condition": "service_healthy"}, name
        if name != "migrate":
            assert needs["migrate"] == {"condition": "service_completed_successfully"}, name
            assert needs["redis"] == {"condition": "service_healthy"}, name
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], name


def test_every_compose_command_is_a_real_entry_point(tmp_path):
    """Each distinct command, as the image runs it (from the repository root): flask commands
    with --help appended (click refuses unknown commands and options before printing help),
    gunicorn with --check-config (loads its config file and the WSGI app)."""
    bin_dir = Path(sys.executable).parent
    commands = {}
    for name, service in _built_services().items():
        commands.setdefault(service["command"], (name, service))
    checks = []
    for command, (name, service) in commands.items():
        argv = shlex.split(command)
        env = {
            **os.environ,
            **_service_env(service),
            # A real database and Redis are not needed to load the app and its commands.
            "DATABASE_URL": f"sqlite:///{tmp_path}/bk.sqlite3",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "HLS_ROOT": str(tmp_path / "hls"),
        }
        env.pop("REDIS_URL")
        if argv[0] == "flask":
            check = [str(bin_dir / "flask"), *argv[1:], "--help"]
        elif argv[0] == "gunicorn":
            check = [str(bin_dir / "gunicorn"), "--check-config", *argv[1:]]
        else:
            pytest.fail(f"{name}: unknown entry point {argv[0]}")
        # Side by side: each one spends a few seconds importing the app.
        process = subprocess.Popen(
            check, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        checks.append((name, command, process))
    for name, command, process in checks:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name}: {command}\n{output}"


def test_the_compose_nginx_config_parses(tmp_path):
    """The nginx service's files laid out where its volumes put them (under tmp_path), the key
    template rendered as the image's entrypoint does, the official image's include of
    conf.d/*.conf at http level, and the upstream's service names pointed at 127.0.0.1."""
    services = _compose()["services"]
    nginx = services["nginx"]
    env = _service_env(nginx)
    assert set(env) == {"HLS_SIGNING_KEY"}, "nginx gets this one secret and nothing else"
    root = tmp_path / "root"
    for host, target in _bind_mounts(nginx):
        text = host.read_text().replace("/etc/nginx/", f"{root}/etc/nginx/")
        if target.startswith("/etc/nginx/templates/"):
            # 20-envsubst-on-templates.sh: templates/X.template → conf.d/X, defined vars only.
            text = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m[1], m[0]), text)
            target = "/etc/nginx/conf.d/" + target.removeprefix("/etc/nginx/templates/")
            target = target.removesuffix(".template")
        path = root / target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    site = root / "etc/nginx/conf.d/default.conf"
    text = site.read_text()
    for host, _ in _upstream_servers(text):
        assert host in services, f"nginx upstream {host} is not a compose service"
        text = re.sub(rf"server\s+{re.escape(host)}:", "server 127.0.0.1:", text)
    site.write_text(text.replace("listen 80;", f"listen 127.0.0.1:{_free_port()};"))
    key = (root / "etc/nginx/conf.d/hls-key.inc").read_text()
    assert f'set $hls_signing_key "{FILLED_BY_OPERATOR["HLS_SIGNING_KEY"]}";' in key
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{ include {root}/etc/nginx/conf.d/*.conf; }}\n"
    )
    result = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
