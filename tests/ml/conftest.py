import pytest
from django.utils import timezone

from ml.models import ModelVersion
from ml.registry import champions
from tests.builders import own_artifact_copy, store_labelled_base


@pytest.fixture
def churn_champion(db, trained_churn_artifact):
    """The labelled base and, as champion, the churn model trained on it once per session."""
    store_labelled_base()
    champions.clear()
    version = ModelVersion.objects.create(
        **{**trained_churn_artifact, "artifact_dir": own_artifact_copy(trained_churn_artifact["artifact_dir"])},
        status=ModelVersion.Status.CHAMPION,
        promoted_by="test",
        promoted_at=timezone.now(),
    )
    yield version
    champions.clear()
