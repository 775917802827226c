"""The media library: camera streams to HLS with ffmpeg, probing, snapshots, tamper checks.

- ``media.argv``: pure builders of every ffmpeg/ffprobe command (tested as data);
- ``media.supervisor``: one ffmpeg per camera, on demand, restarted and watched;
- ``media.probe``: commissioning measurements and their pass/fail per checklist rule;
- ``media.snapshot``: one JPEG with its SHA-256, black and frozen checks;
- ``media.redact``: credentials out of every line that is kept or shown.

It imports nothing from ``app/``: the app drives it and hears back through callbacks
(DESIGN.md, "Which way imports run").
"""
