# syntax=docker/dockerfile:1
# The one image of deploy/compose.yaml's web, worker, media and migrate services (the same
# processes as deploy/systemd/). Build from the repository root:
#     docker build -t bright-kitchen .

# --- The H5 app's front-end packages, as scripts/setup.sh installs them: `npm ci` with the lock
# file, whose postinstall (app/web/vendor.mjs) copies the browser builds to static/vendor/.
# Only the copied files reach the final image; Node.js and node_modules stay here.
FROM node:20-bookworm-slim AS vendor
WORKDIR /build/app/web
COPY app/web/package.json app/web/package-lock.json app/web/vendor.mjs ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- The application.
FROM python:3.11-slim-bookworm

# ffmpeg: the media supervisor, commissioning probes and snapshots (Debian 12's 5.1, the one the
# tests run). fonts-wqy-zenhei: the TrueType CJK font the PDF reports embed
# (app/services/reports.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fonts-wqy-zenhei \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 brightkitchen \
    && useradd --system --uid 10001 --gid brightkitchen --home-dir /opt/bright-kitchen \
        --no-create-home --shell /usr/sbin/nologin brightkitchen

WORKDIR /opt/bright-kitchen

# The pinned dependencies first (production extra: gunicorn + gevent), from pyproject.toml
# itself, with every transitive package held to constraints.txt (as scripts/setup.sh does), so
# that a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['production']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project, installed in place as scripts/setup.sh does (`pip install -e .`): the app finds
# migrations/ and static/ next to its code, and config.py and wsgi.py are top-level modules.
COPY config.py wsgi.py ./
COPY app app
COPY bots bots
COPY media media
COPY migrations migrations
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
RUN pip install --no-deps -e . && python -m compileall -q app bots media config.py wsgi.py
COPY --from=vendor /build/app/web/static/vendor app/web/static/vendor

# The code stays root's and read-only; the service user writes only the instance folder
# (snapshots, uploads, reports) and the HLS output, the two volumes of deploy/compose.yaml.
# A new named volume copies this ownership.
RUN mkdir -p instance /var/lib/bright-kitchen/hls \
    && chown brightkitchen:brightkitchen instance /var/lib/bright-kitchen/hls
USER brightkitchen

ENV BK_ENV=production \
    FLASK_APP=wsgi \
    HLS_ROOT=/var/lib/bright-kitchen/hls \
    BK_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
