"""GET /health/: 200 while the service can answer, 503 naming the database, cache or model files that fail."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from config import health


def probe(client):
    response = client.get("/health/")
    return response.status_code, response.json()


def test_a_new_deployment_without_a_model_is_up_and_says_none_is_trained(client, db):
    status, body = probe(client)

    assert status == 200 and body["status"] == "ok"
    assert body["checks"] == {
        "database": "ok", "cache": "ok", "churn_model": "none trained yet", "acceptance_model": "none trained yet",
    }  # fmt: skip


def test_a_champion_whose_file_was_damaged_fails_the_probe_naming_it(client, churn_champion):
    assert probe(client)[1]["checks"]["churn_model"] == "ok"
    damaged = sorted((Path(settings.MODEL_DIR) / churn_champion.artifact_dir).glob("booster-*.ubj"))[0]
    damaged.write_bytes(b"not a booster")

    status, body = probe(client)

    assert status == 503 and body["status"] == "failing"
    assert damaged.name in body["checks"]["churn_model"] and "corrupt" in body["checks"]["churn_model"]
    assert str(settings.MODEL_DIR) not in body["checks"]["churn_model"]  # no path on the server to an anonymous probe


@pytest.mark.parametrize("part", ["database", "cache"])
def test_a_database_or_cache_that_cannot_be_reached_fails_the_probe_with_the_details_in_the_log_only(
    client, db, monkeypatch, caplog, part
):
    def refuse(*args, **kwargs):
        raise ConnectionError("connection to db.internal:5432 as retention refused")

    # The probe's own view of them, so the test's database stays whole for its teardown.
    if part == "database":
        monkeypatch.setattr(health, "connection", SimpleNamespace(cursor=refuse))
    else:
        monkeypatch.setattr(health, "cache", SimpleNamespace(set=refuse))

    status, body = probe(client)

    assert status == 503 and body["checks"][part] == "failing: ConnectionError (details in the service's log)"
    assert f"the {part} check failed: ConnectionError: connection to db.internal:5432" in caplog.text
