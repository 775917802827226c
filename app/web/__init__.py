"""The mobile web app (H5). For now: the landing page of the embedded default."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template

bp = Blueprint("web", __name__, template_folder="templates")


@bp.get("/")
def index():
    return render_template("index.html", demo=current_app.config["DEMO_MODE"])


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
