"""HLS benchmark (not a test): signed segment and playlist requests per second through nginx's
secure_link and through the app's own route, against plain nginx serving the same files.

    .venv/bin/python bench/hls.py [--duration 10] [--slices 5] [--threads 2] [--connections 64]
        [--workers 1,N] [--json]

Run from the repository root. Needs nginx, ffmpeg and wrk (Debian: `apt-get install -y wrk`).

The files are real: ffmpeg encodes a lavfi test source (720p25, 1 s GOP, CBR 2 Mbit/s, so
≈250 KB a segment) into 1 s segments and a live playlist (6 entries, no end tag) under
<tmp>/hls/<camera>/, the layout the media supervisor writes. Every server reads that folder.

Paths, all measured in the same run:

1. nginx static (the baseline): a plain `location /hls/ { root …; }`, no token;
2. nginx secure_link: deploy/nginx/hls-maps.conf + hls-location.conf as production includes
   them, with a valid token from app.services.watch.token_for;
3. embedded: the app's signed route `GET /hls/<token>/<camera>/<file>` on the production web
   server — gunicorn with deploy/gunicorn.conf.py (gevent worker), `BK_ENV=production`, the
   required secrets in the environment and a throwaway SQLite database migrated by
   `flask db upgrade` — with 1 worker (the production layout: one worker per process) and,
   when the machine has more than one core, with one worker per core (`--workers N`).

Both nginx servers run in one nginx with Debian's default http settings (worker_processes auto,
sendfile, tcp_nopush, an access log); gunicorn logs every request as its config says. Before any
load each URL is fetched once and must return the file byte for byte, and a forged token must be
refused, so no path is fast because it answers an error; a run with any non-2xx response or
socket error is flagged.

Load: wrk with fixed threads and keep-alive connections, `--duration` seconds per path and file
after a 1 s warm-up; a small Lua script reports requests, bytes and latency percentiles. The
duration is cut into `--slices` wrk runs, interleaved across the paths in a rotating order, so
that other jobs on the machine weigh on every path alike; rates are over all slices together,
p50 and p99 the medians of the slices' own. wrk runs on the same cores as the servers, so every
path shares the machine with its load generator and with whatever else runs there: the load
average is printed at the start and end (and per slice in --json). The servers' CPU time
(utime+stime of master and workers, from /proc) gives requests per CPU-second, which depends
less on the other jobs than requests per second.

Targets (req/s against nginx static, for segments; playlists are held to the same bars):
embedded (1 worker) ≥ 10 %, nginx secure_link ≥ 90 %. On a busy machine single slices of the
two nginx paths differ by 10-15 % either way, so secure_link can come out above its baseline.

Whatever happens (errors, Ctrl-C, SIGTERM), every process started here is stopped by PID and the
temporary folder is removed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import CLK_TCK, children_of  # noqa: E402 - bench/ is on sys.path

from app.services.watch import token_for  # noqa: E402

DEPLOY = ROOT / "deploy"
CAMERA_ID = 7
SEGMENT = "seg_3.ts"
PLAYLIST = "index.m3u8"
TARGETS = {"embedded": 0.10, "nginx_secure_link": 0.90}
NPROC = os.cpu_count() or 1

# wrk prints its own report first; this line is the one the bench reads.
WRK_REPORT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\": %d, \\"bytes\\": %d, \\"duration_us\\": %d, "
    .. "\\"connect_errors\\": %d, \\"read_errors\\": %d, \\"write_errors\\": %d, "
    .. "\\"non_2xx\\": %d, \\"timeouts\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"max_us\\": %d}\\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""

# Processes are exec'd through this one-liner so that they die with the bench (same PID),
# even when it is SIGKILLed.
EXEC_DYING_WITH_PARENT = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def tool_path(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"  # nginx is in sbin, off a user's PATH


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------- processes we started


@dataclass
class Started:
    procs: list[subprocess.Popen] = field(default_factory=list)


STARTED = Started()


def popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", EXEC_DYING_WITH_PARENT, *args],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        **kwargs,
    )
    STARTED.procs.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process, then SIGKILL its process group (its own session: ours alone)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers left behind by a killed master
    if proc.poll() is None:
        proc.wait(5)


def cleanup() -> None:
    for proc in reversed(STARTED.procs):
        with contextlib.suppress(Exception):
            stop(proc)
    left = [p.pid for p in STARTED.procs if p.poll() is None]
    if left:
        note(f"WARNING: still running after cleanup: {left}")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields_[11]) + int(fields_[12])
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{proc.args[3]} did not start ({proc.poll()}):\n{tail}")
        time.sleep(0.1)


@dataclass
class Server:
    label: str
    proc: subprocess.Popen
    base_url: str
    workers: int

    def pids(self) -> list[int]:
        return [self.proc.pid, *children_of(self.proc.pid)]


# ------------------------------------------------------------------------------------ files


def make_segments(camera_dir: Path) -> None:
    """Seven 1 s segments and a live playlist listing the last six, as ffmpeg writes them."""
    camera_dir.mkdir(parents=True)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
        + ["-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25", "-t", "7"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        + ["-b:v", "2M", "-minrate", "2M", "-maxrate", "2M", "-bufsize", "2M"]
        + ["-x264-params", "nal-hrd=cbr", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"]
        + ["-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_flags", "omit_endlist"]
        + ["-hls_segment_filename", str(camera_dir / "seg_%d.ts"), str(camera_dir / PLAYLIST)],
        check=True,
        timeout=120,
    )
    listed = [line for line in (camera_dir / PLAYLIST).read_text().splitlines() if line[:1] != "#"]
    if SEGMENT not in listed:
        raise RuntimeError(f"ffmpeg's playlist does not list {SEGMENT}: {listed}")


# ------------------------------------------------------------------------------------ nginx


def start_nginx(tmp: Path, hls_root: Path, key: str) -> tuple[Server, Server]:
    nginx = tool_path("nginx")
    prefix = tmp / "nginx"
    prefix.mkdir()
    static_port, secure_port = free_port(), free_port()
    (prefix / "hls-key.conf").write_text(f'set $hls_signing_key "{key}";\n')
    conf = prefix / "nginx.conf"
    # Debian's nginx.conf for the http settings; the secure server is production's include.
    conf.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    include {DEPLOY}/nginx/hls-maps.conf;
    server {{
        listen 127.0.0.1:{static_port};
        location /hls/ {{
            types {{
                application/vnd.apple.mpegurl m3u8;
                video/mp2t ts;
            }}
            root {tmp};
        }}
    }}
    server {{
        listen 127.0.0.1:{secure_port};
        set $hls_root {hls_root};
        include {prefix}/hls-key.conf;
        include {DEPLOY}/nginx/hls-location.conf;
    }}
}}
"""
    )
    check = subprocess.run(
        [nginx, "-t", "-q", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    log = prefix / "error.log"
    with log.open("ab") as out:
        proc = popen(
            [nginx, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_listening(static_port, proc, log)
    wait_listening(secure_port, proc, log)
    deadline = time.monotonic() + 10
    while len(children_of(proc.pid)) < NPROC and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = len(children_of(proc.pid))
    return (
        Server("nginx static", proc, f"http://127.0.0.1:{static_port}/hls", workers),
        Server("nginx secure_link", proc, f"http://127.0.0.1:{secure_port}/hls", workers),
    )


# ---------------------------------------------------------------------------------- gunicorn


def production_env(tmp: Path, key: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BK_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CREDENTIALS_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "HLS_SIGNING_KEY": key,
        "DATABASE_URL": f"sqlite:///{tmp}/bright_kitchen.sqlite3",
        "INSTANCE_PATH": str(tmp / "instance"),
        "HLS_ROOT": str(tmp / "hls"),
    }
    env.pop("REDIS_URL", None)
    return env


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{done.stdout}\n{done.stderr}")


def start_gunicorn(tmp: Path, env: dict[str, str], workers: int) -> Server:
    port = free_port()
    log = tmp / f"gunicorn-{workers}.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log.open("ab") as out:
        proc = popen(
            [str(gunicorn), "-c", str(DEPLOY / "gunicorn.conf.py"), "--workers", str(workers)]
            + ["wsgi:app"],
            env={**env, "BK_BIND": f"127.0.0.1:{port}"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_listening(port, proc, log)
    deadline = time.monotonic() + 60
    while True:  # listening is the master; the app is loaded when /healthz answers
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r,
        ):
            if r.status == 200:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not become healthy:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    while len(children_of(proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    found = len(children_of(proc.pid))
    if found != workers:
        raise RuntimeError(f"gunicorn has {found} workers, expected {workers}")
    label = f"embedded, gunicorn gevent {workers} worker{'s' if workers > 1 else ''}"
    return Server(label, proc, f"http://127.0.0.1:{port}/hls", workers)


# ------------------------------------------------------------------------------------- load


@dataclass
class Variant:
    key: str
    server: Server
    token: str | None  # None: the unsigned baseline

    def url(self, filename: str) -> str:
        middle = f"/{self.token}" if self.token else ""
        return f"{self.server.base_url}{middle}/{CAMERA_ID}/{filename}"


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def check_variant(variant: Variant, camera_dir: Path, key: str) -> None:
    """Each file byte for byte, and a forged token refused: nobody is fast by answering 403."""
    for filename in (SEGMENT, PLAYLIST):
        status, body = fetch(variant.url(filename))
        if status != 200 or body != (camera_dir / filename).read_bytes():
            raise RuntimeError(f"{variant.server.label}: {filename} answered {status}")
    if variant.token is not None:
        forged = token_for(CAMERA_ID, int(variant.token.split("-")[0]), key + "-forged")
        status, _ = fetch(variant.url(SEGMENT).replace(variant.token, forged))
        if status != 403:
            raise RuntimeError(f"{variant.server.label}: a forged token answered {status}")


def run_wrk(url: str, args: argparse.Namespace, script: Path, seconds: int) -> dict:
    argv = [tool_path("wrk"), f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s"]
    argv += ["--timeout", "10s", "-s", str(script), url]
    proc = subprocess.Popen(
        argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    STARTED.procs.append(proc)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            stop(proc)
        STARTED.procs.remove(proc)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk gave no report ({proc.returncode}):\n{out}")


def measure(variant: Variant, filename: str, args: argparse.Namespace, script: Path) -> dict:
    """One slice: a wrk run, and the server's CPU time over it."""
    pids = variant.server.pids()
    load = loadavg()
    ticks0, t0 = cpu_ticks(pids), time.monotonic()
    report = run_wrk(variant.url(filename), args, script, args.slice_s)
    report["elapsed_s"] = time.monotonic() - t0
    report["cpu_s"] = (cpu_ticks(pids) - ticks0) / CLK_TCK
    report["loadavg"] = load
    return report


def combine(slices: list[dict]) -> dict:
    """Rates over all slices together; latency percentiles are the medians of the slices'."""
    seconds = sum(s["duration_us"] for s in slices) / 1e6
    requests = sum(s["requests"] for s in slices)
    cpu_s = sum(s["cpu_s"] for s in slices)
    errors = ("connect_errors", "read_errors", "write_errors", "timeouts")
    return {
        "rps": requests / seconds,
        "mb_s": sum(s["bytes"] for s in slices) / seconds / 1e6,
        "p50_ms": statistics.median(s["p50_us"] for s in slices) / 1000,
        "p99_ms": statistics.median(s["p99_us"] for s in slices) / 1000,
        "max_ms": max(s["max_us"] for s in slices) / 1000,
        "slice_rps": [round(s["requests"] / (s["duration_us"] / 1e6)) for s in slices],
        "requests": requests,
        "seconds": seconds,
        "non_2xx": sum(s["non_2xx"] for s in slices),
        "socket_errors": sum(s[k] for s in slices for k in errors),
        "server_cpu_pct": 100 * cpu_s / sum(s["elapsed_s"] for s in slices),
        "requests_per_cpu_s": requests / cpu_s if cpu_s else None,
        "loadavg_1min": [s["loadavg"][0] for s in slices],
    }


# ----------------------------------------------------------------------------------- bench


def bench(args: argparse.Namespace) -> dict:
    for tool in ("wrk", "nginx", "ffmpeg"):
        if not Path(tool_path(tool)).exists():
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install -y {tool})")
    load_start = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bk-bench-hls-"))
    key = secrets.token_urlsafe(24)
    try:
        camera_dir = tmp / "hls" / str(CAMERA_ID)
        note("encoding test segments with ffmpeg")
        make_segments(camera_dir)
        script = tmp / "report.lua"
        script.write_text(WRK_REPORT)
        env = production_env(tmp, key)
        note("migrating a throwaway SQLite database (flask db upgrade)")
        migrate(env)

        static, secure = start_nginx(tmp, tmp / "hls", key)
        token = token_for(CAMERA_ID, int(time.time()) + 24 * 3600, key)
        variants = [
            Variant("nginx_static", static, None),
            Variant("nginx_secure_link", secure, token),
        ]
        for workers in args.workers:
            note(f"starting gunicorn with {workers} worker(s)")
            server = start_gunicorn(tmp, env, workers)
            variants.append(Variant(f"embedded_{workers}", server, token))
        for variant in variants:
            check_variant(variant, camera_dir, key)
        note("every path serves the files byte for byte and refuses a forged token")

        files = {"segment": SEGMENT, "playlist": PLAYLIST}
        runs: dict[str, dict[str, list[dict]]] = {f: {v.key: [] for v in variants} for f in files}
        if args.warmup:
            for filename in files.values():
                for variant in variants:
                    run_wrk(variant.url(filename), args, script, args.warmup)
        # Slices interleaved, in a rotating order, so that the other jobs on the machine weigh
        # on every path alike.
        for slice_ in range(args.slices):
            for kind, filename in files.items():
                for i in range(len(variants)):
                    variant = variants[(i + slice_) % len(variants)]
                    report = measure(variant, filename, args, script)
                    runs[kind][variant.key].append(report)
                    rps = report["requests"] / (report["duration_us"] / 1e6)
                    note(
                        f"slice {slice_ + 1}/{args.slices} {kind:<8} "
                        f"{variant.server.label:<37} {rps:>7.0f} req/s  "
                        f"p99 {report['p99_us'] / 1000:6.1f} ms  load {report['loadavg'][0]}"
                    )
        sizes = {kind: (camera_dir / name).stat().st_size for kind, name in files.items()}
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    results: dict[str, Any] = {}
    for kind in files:
        base = combine(runs[kind]["nginx_static"])
        rows = []
        for variant in variants:
            row = combine(runs[kind][variant.key])
            per_cpu, base_per_cpu = row["requests_per_cpu_s"], base["requests_per_cpu_s"]
            row.update(
                key=variant.key,
                label=variant.server.label,
                workers=variant.server.workers,
                vs_nginx_static=row["rps"] / base["rps"],
                per_cpu_vs_nginx_static=per_cpu / base_per_cpu
                if per_cpu and base_per_cpu
                else None,
                valid=row["non_2xx"] == 0 and row["socket_errors"] == 0,
            )
            rows.append(row)
        results[kind] = rows

    judged = {"embedded": f"embedded_{args.workers[0]}", "nginx_secure_link": "nginx_secure_link"}
    targets = []
    for kind in files:
        for name, variant_key in judged.items():
            row = next(r for r in results[kind] if r["key"] == variant_key)
            value = row["vs_nginx_static"]
            targets.append(
                {
                    "path": variant_key,
                    "file": kind,
                    "ratio": value,
                    "target": TARGETS[name],
                    "met": row["valid"] and value is not None and value >= TARGETS[name],
                }
            )
    return {
        "wrk": {
            "threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration,
            "slices": args.slices,
        },
        "files": {kind: {"name": files[kind], "bytes": sizes[kind]} for kind in files},
        "results": results,
        "targets": targets,
        "machine": {
            "nproc": NPROC,
            "mem_total_mib": mem_total_mib(),
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "nginx": tool_version([tool_path("nginx"), "-v"]),
            "wrk": tool_version([tool_path("wrk"), "-v"]),
        },
    }


def mem_total_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


def tool_version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (done.stderr or done.stdout).strip().splitlines()
        return text[0].split(" Copyright")[0] if text else ""
    return ""


# ------------------------------------------------------------------------------------ table


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def print_table(r: dict) -> None:
    w, m = r["wrk"], r["machine"]
    print(
        f"HLS requests — wrk -t{w['threads']} -c{w['connections']}, keep-alive, "
        f"{w['duration_s']} s per path and file in {w['slices']} interleaved slices; "
        f"segment {r['files']['segment']['name']} "
        f"({r['files']['segment']['bytes']:,} B), playlist {r['files']['playlist']['name']} "
        f"({r['files']['playlist']['bytes']:,} B)"
    )
    print(
        f"machine: {m['nproc']} cores, {m['mem_total_mib']} MiB RAM, Python {m['python']}, "
        f"{m['nginx'].replace('nginx version: ', '')}, {m['wrk']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    print()
    header = ("file", "path", "req/s", "MB/s", "p50", "p99", "server CPU", "req/CPU-s",
              "req/s vs static", "req/CPU-s vs static")  # fmt: skip
    rows = [header]
    flagged = []
    for kind in ("segment", "playlist"):
        for row in r["results"][kind]:
            label = row["label"]
            if row["key"].startswith("nginx"):
                label += f" ({row['workers']} workers)"
            if row["key"] == "nginx_static":
                label += ", baseline"
            if not row["valid"]:
                label += " *"
                flagged.append((kind, row))
            per_cpu = row["requests_per_cpu_s"]
            rows.append(
                (
                    kind,
                    label,
                    f"{row['rps']:,.0f}",
                    f"{row['mb_s']:,.1f}",
                    f"{row['p50_ms']:.1f} ms",
                    f"{row['p99_ms']:.1f} ms",
                    f"{row['server_cpu_pct']:.0f} %",
                    "—" if per_cpu is None else f"{per_cpu:,.0f}",
                    percent(row["vs_nginx_static"]),
                    percent(row["per_cpu_vs_nginx_static"]),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * width for width in widths))
    print()
    labels = {row["key"]: row["label"] for row in r["results"]["segment"]}
    print("targets, req/s against nginx static (the issue's are for segments):")
    for t in r["targets"]:
        print(
            f"  {labels[t['path']]}, {t['file']}s: {t['ratio'] * 100:.1f} % "
            f"(target ≥ {t['target'] * 100:.0f} %): {'met' if t['met'] else 'NOT met'}"
        )
    print(
        "server CPU: master + workers, % of one core over the runs; req/CPU-s: requests per "
        "second of that CPU time. wrk ran on the same cores."
    )
    for kind, row in flagged:
        print(
            f"* {kind} via {row['label']}: {row['non_2xx']} non-2xx responses, "
            f"{row['socket_errors']} socket errors or timeouts: not a valid figure"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="s of load per path and file")
    parser.add_argument("--slices", type=int, default=5, help="interleaved wrk runs it is cut in")
    parser.add_argument("--warmup", type=int, default=1, help="s of unmeasured load per path")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--workers",
        default=",".join(dict.fromkeys(["1", str(NPROC)])),
        help="gunicorn worker counts for the embedded path, comma-separated (first: targets)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",") if n.strip()]
    if not args.workers or min(args.workers) < 1:
        parser.error("--workers needs counts ≥ 1")
    if args.slices < 1 or args.duration % args.slices:
        parser.error("--duration must be a multiple of --slices (wrk takes whole seconds)")
    args.slice_s = args.duration // args.slices

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    result = bench(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
