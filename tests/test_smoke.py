from app.extensions import db
from tests import factories as f


def test_health_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["database"] == "ok"


def test_an_operator_sees_only_their_own_centre(app, client):
    meilan = f.district()
    a, b = f.centre(meilan, "甲中心"), f.centre(meilan, "乙中心")
    operator = f.operator_of(a)
    db.session.commit()
    headers = f.login(client, operator.username)
    names = [c["name"] for c in client.get("/api/v1/centres", headers=headers).get_json()]
    assert names == ["甲中心"]
    assert b.id
