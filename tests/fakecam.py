#!/usr/bin/python3
"""The project's test camera: a GStreamer RTSP server serving a live synthetic H.264 stream.

Tests need a *real* RTSP peer (ffmpeg's RTSP client, its timeouts and its reconnect behaviour
are what we supervise), so this is a real server and not a mock. It must run under the system
Python (``/usr/bin/python3``), which has ``python3-gi``; the project venv does not.

Debian packages: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly (x264enc) gstreamer1.0-x (clockoverlay).

Faults the tests make with it: SIGTERM/SIGKILL = camera offline, SIGSTOP = camera hung (the
kernel still accepts TCP connections, nothing answers), SIGCONT = resumed, a new process on the
same ``--port`` = camera back.

    fakecam.py [--port 0] [--mount /cam] [--width 1280] [--height 720] [--fps 25]
               [--gop FRAMES] [--pattern smpte|ball|black|...] [--frozen] [--bframes]
               [--codec h264|h265] [--format I420|Y42B|I422_10LE|...]
               [--auth USER:PASS] [--no-overlay]

Prints ``READY rtsp://HOST:PORT/MOUNT WxH@FPS`` on stdout once it listens (``--port 0`` picks a
free port and the line tells which).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--mount", action="append", default=None, help="repeatable; default /cam")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--bitrate", type=int, default=2000, help="kbit/s")
    ap.add_argument("--gop", type=int, default=0, help="keyframe interval in frames (default: fps)")
    ap.add_argument(
        "--pattern", default="smpte", help="videotestsrc pattern (black = lens covered)"
    )
    ap.add_argument(
        "--frozen",
        action="store_true",
        help="one still picture repeated live (a hung encoder); implies --no-overlay",
    )
    ap.add_argument(
        "--bframes",
        action="store_true",
        help="High profile with B-frames, as many real cameras send",
    )
    ap.add_argument(
        "--codec",
        choices=("h264", "h265"),
        default="h264",
        help="h265: an HEVC camera (browsers and WeChat cannot play it; the supervisor transcodes)",
    )
    ap.add_argument(
        "--format",
        default="I420",
        help="raw picture format fed to the encoder: I420 = 8-bit 4:2:0 (what players decode);"
        " Y42B = 8-bit 4:2:2 (H.264 High 4:2:2), I422_10LE = 10-bit 4:2:2, …",
    )
    ap.add_argument("--auth", default=None, metavar="USER:PASS", help="require Basic auth")
    ap.add_argument("--no-overlay", action="store_true", help="no wall clock on the picture")
    return ap.parse_args(argv)


def launch_line(a: argparse.Namespace) -> str:
    """The gst-launch description of one camera's media pipeline."""
    gop = a.gop or a.fps
    payloader = "rtph264pay"
    rate = f"bitrate={a.bitrate}"
    size = f"width={a.width},height={a.height}"
    if a.frozen:
        # One buffer, repeated by imagefreeze at the live frame rate: the stream keeps flowing
        # (RTSP stays healthy, segments keep appearing) but every frame is the same picture.
        source = (
            f"videotestsrc num-buffers=1 pattern={a.pattern} ! video/x-raw,{size}"
            f" ! imagefreeze is-live=true ! video/x-raw,framerate={a.fps}/1"
        )
        # A constant quantizer, as an encoder stuck on one picture repeats it: with a bitrate
        # target, x264 re-encodes the still picture at a falling QP for seconds, so keyframes
        # a few seconds apart differ by coding noise (measured 44–51 dB PSNR).
        rate = "pass=quant quantizer=21"
    else:
        source = (
            f"videotestsrc is-live=true pattern={a.pattern}"
            f" ! video/x-raw,{size},framerate={a.fps}/1"
        )
        if not a.no_overlay:
            # A camera's OSD clock: wall time, not the pipeline's running time, which restarts
            # at zero whenever a new client rebuilds the shared pipeline (two pulls a second
            # apart would then show the same picture). It also keeps a static pattern live.
            source += (
                ' ! clockoverlay halignment=left valignment=top font-desc="Sans 16"'
                ' time-format="%Y-%m-%d %H:%M:%S"'
            )
    if a.codec == "h265":
        encoder = (
            f"x265enc tune=zerolatency speed-preset=ultrafast bitrate={a.bitrate}"
            f" key-int-max={gop} ! video/x-h265 ! h265parse"
        )
        payloader = "rtph265pay"
    elif a.format != "I420":
        # x264 picks the profile the format needs (High 4:2:2, High 10, High 4:4:4).
        encoder = f"x264enc tune=zerolatency speed-preset=ultrafast {rate} key-int-max={gop}"
    elif a.bframes:
        # tune=zerolatency would switch B-frames off, so it is left out here on purpose.
        encoder = (
            f"x264enc speed-preset=ultrafast {rate} key-int-max={gop}"
            " bframes=2 b-adapt=false cabac=true dct8x8=true ! video/x-h264,profile=high"
        )
    else:
        encoder = (
            f"x264enc tune=zerolatency speed-preset=ultrafast {rate}"
            f" key-int-max={gop} ! video/x-h264,profile=main"
        )
    return (
        f"( {source} ! videoconvert ! video/x-raw,format={a.format} ! {encoder}"
        f" ! {payloader} name=pay0 pt=96 config-interval=1 )"
    )


def add_basic_auth(
    server: GstRtspServer.RTSPServer, factory: GstRtspServer.RTSPMediaFactory, credentials: str
) -> None:
    user, _, password = credentials.partition(":")
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(
        Gst.Structure.from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )[0]
    )
    factory.set_permissions(permissions)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    mounts = a.mount or ["/cam"]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(a.host)
    server.set_service(str(a.port))
    mount_points = server.get_mount_points()
    launch = launch_line(a)
    for mount in mounts:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)  # one encoder per mount, shared by every client
        if a.auth:
            add_basic_auth(server, factory, a.auth)
        mount_points.add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"failed to bind {a.host}:{a.port}", file=sys.stderr, flush=True)
        return 2
    loop = GLib.MainLoop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    port = server.get_bound_port()
    print(f"READY rtsp://{a.host}:{port}{mounts[0]} {a.width}x{a.height}@{a.fps}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
