"""POST /api/v1/scores/ (up to 1,000 customers, answered at once) and the scoring jobs for any number:
POST /api/v1/scoring-jobs/, GET /api/v1/scoring-jobs/{id}/ and GET /api/v1/scoring-jobs/{id}/result.csv."""

from __future__ import annotations

import uuid

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from ml.registry import NoChampion
from retention.api.base import ApiView, BulkApiView, StrictInput, not_text_problem, stored_text
from retention.api.customer_input import storable_text
from retention.api.errors import PayloadTooLarge, Unprocessable
from retention.api.schema import READ_ERRORS, WRITE_ERRORS, error_responses, responses
from retention.models import CustomerAccess, ScoringJob
from retention.selectors.api import customers_by_external_id, not_to_score, scoring_job_get
from retention.services.access_log import accesses_record
from retention.services.scoring_jobs import customers_score, scoring_job_create, scoring_job_result_path

MAX_SCORE_IDS = 1_000
MAX_ID_LENGTH = 100
MAX_LISTED = 100  # bad ids named in an error; enough to find the pattern
RISK_BANDS = ["low", "medium", "high"]
JOB_ID = OpenApiParameter("job_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The job's `id`.")


class ExternalIdsField(serializers.ListField):
    """External ids, checked in one plain pass: a scoring job may name millions of them."""

    def __init__(self, **kwargs) -> None:
        # min_length states in the schema (minItems) what allow_empty=False refuses.
        if kwargs.get("allow_empty") is False:
            kwargs.setdefault("min_length", 1)
        super().__init__(child=serializers.CharField(min_length=1, max_length=MAX_ID_LENGTH), **kwargs)

    def to_internal_value(self, data) -> list[str]:
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if not data and not self.allow_empty:
            self.fail("empty")
        problems = {}
        for index, value in enumerate(data):
            if problem := _external_id_problem(value):
                problems[index] = [problem]
                if len(problems) == MAX_LISTED:
                    break
        if problems:
            raise serializers.ValidationError(problems)
        return [stored_text(value).strip() for value in data]


def _external_id_problem(value: object) -> str:
    """What is wrong with one id; "" when it is one. A whole number is read as its digits, as customers are stored
    under them; another number is refused as the wrong type, not as an id."""
    text = stored_text(value)
    if text is None:
        return not_text_problem(value)
    text = text.strip()
    return "" if text and len(text) <= MAX_ID_LENGTH and storable_text(text) else ID_PROBLEM


ID_PROBLEM = f"must be an external id of 1 to {MAX_ID_LENGTH} characters"


def _refuse_too_many(data, limit: int) -> None:
    ids = data.get("customer_ids") if isinstance(data, dict) else None
    if isinstance(ids, list) and len(ids) > limit:
        raise PayloadTooLarge(f"{len(ids):,} ids; send at most {limit:,}, or use /api/v1/scoring-jobs/")


class ScoreInput(StrictInput):
    input_name = "a scores request"

    customer_ids = ExternalIdsField(allow_empty=False, max_length=MAX_SCORE_IDS, help_text="External ids.")


class ScoreOutput(serializers.Serializer):
    customer_id = serializers.CharField()
    churn_probability = serializers.FloatField()
    risk_band = serializers.ChoiceField(choices=RISK_BANDS)


class ScoresOutput(serializers.Serializer):
    model_version = serializers.CharField()
    policy_version = serializers.IntegerField(help_text="The policy whose risk bands apply.")
    scored_at = serializers.DateTimeField()
    scores = ScoreOutput(many=True, help_text="In the order asked, one per distinct id.")


class ScoreCreateView(BulkApiView):
    required_scope = "score"

    @extend_schema(
        request=ScoreInput,
        responses=responses({200: ScoresOutput}, *WRITE_ERRORS, 422),
        operation_id="scores_create",
        description=(
            f"Churn probabilities now, for up to {MAX_SCORE_IDS:,} customers in one batch. Nothing is stored. "
            "Unknown ids, those of customers who objected to profiling (refusal profiling_objection) and those of "
            "former customers (refusal former_customer) are refused with 422, listed under fields.customer_ids."
        ),
    )
    def post(self, request):
        _refuse_too_many(request.data, MAX_SCORE_IDS)
        data = ScoreInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(data.validated_data["customer_ids"]))
        customers = customers_by_external_id(external_ids=ids)
        unknown = [i for i in ids if i not in customers]
        objecting, former = not_to_score(customers=customers)
        if unknown or objecting or former:
            raise _unscorable(unknown, [i for i in ids if i in objecting], [i for i in ids if i in former])
        now = timezone.now()
        try:
            scorer, scores = customers_score(customers=[customers[i] for i in ids], as_of=now)
        except NoChampion as error:
            raise Unprocessable(str(error)) from error
        accesses_record(customers=customers.values(), purpose=CustomerAccess.Purpose.SCORE, reader=request.auth)
        body = {
            "model_version": scorer.model_version,
            "policy_version": scorer.policy_version,
            "scored_at": now,
            "scores": [vars(score) for score in scores],
        }
        return Response(ScoresOutput(body).data)


def _unscorable(unknown: list[str], objecting: list[str], former: list[str]) -> Unprocessable:
    """One refusal naming every id that cannot be scored: unknown ones first, then those who objected, then former
    customers."""
    said = [f"{len(unknown)} unknown customer id(s)"] if unknown else []
    refusals = []
    if objecting:
        said.append(f"{len(objecting)} customer(s) objected to profiling and are not scored")
        refusals.append("profiling_objection")
    if former:
        said.append(f"{len(former)} former customer(s) left and are not scored")
        refusals.append("former_customer")
    fields = {"customer_ids": unknown + objecting + former}
    return Unprocessable("; ".join(said), fields=fields, refusals=refusals or None)


# --- scoring jobs ---------------------------------------------------------------------------------------------


class ScoringJobInput(StrictInput):
    input_name = "a scoring job"

    customer_ids = ExternalIdsField(
        required=False, allow_empty=False, help_text="External ids, any number; leave out to score every customer."
    )


class ScoringJobOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ScoringJob.Status.choices)
    total = serializers.IntegerField(help_text="Rows the result will have.")
    scored = serializers.IntegerField()
    unknown = serializers.IntegerField(help_text="Requested ids with no stored customer (empty scores in the CSV).")
    objecting = serializers.IntegerField(
        help_text="Requested ids whose customer objected to profiling (empty scores in the CSV)."
    )
    former = serializers.IntegerField(
        help_text="Requested ids of former customers, whose latest renewal result says they left (empty scores in "
        "the CSV). A job for every customer scores only current ones."
    )
    progress = serializers.FloatField(help_text="Share done, 0 to 1.")
    model_version = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    result = serializers.URLField(allow_null=True, help_text="The CSV (external_id,churn_probability,risk_band).")


def scoring_job_json(job: ScoringJob, request) -> dict:
    done = job.status == ScoringJob.Status.DONE
    result_url = request.build_absolute_uri(reverse("api-scoring-job-result", args=[job.pk])) if done else None
    return {**{name: getattr(job, name) for name in JOB_FIELDS}, "progress": _progress(job), "result": result_url}


def _progress(job: ScoringJob) -> float:
    if job.status == ScoringJob.Status.DONE:
        return 1.0
    # Customers added while an every-customer job runs can push the count past the total taken at its start.
    done = job.scored + job.unknown + job.objecting + job.former
    return min(1.0, round(done / job.total, 4)) if job.total else 0.0


JOB_FIELDS = [name for name in ScoringJobOutput._declared_fields if name not in {"progress", "result"}]


class ScoringJobCreateView(BulkApiView):
    required_scope = "score"

    @extend_schema(
        request=ScoringJobInput,
        responses=responses({202: ScoringJobOutput}, *WRITE_ERRORS, 422),
        operation_id="scoring_jobs_create",
        description="Queues a job; poll its status, then download `result`.",
    )
    def post(self, request):
        data = ScoringJobInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = scoring_job_create(api_client=request.auth, customer_ids=data.validated_data.get("customer_ids"))
        except NoChampion as error:
            raise Unprocessable(str(error)) from error
        job.refresh_from_db()  # an eager task (tests, a worker-less setup) may already have finished it
        headers = {"Location": reverse("api-scoring-job", args=[job.pk])}
        return Response(
            ScoringJobOutput(scoring_job_json(job, request)).data, status=status.HTTP_202_ACCEPTED, headers=headers
        )


class ScoringJobDetailView(ApiView):
    required_scope = "score"

    @extend_schema(
        responses=responses({200: ScoringJobOutput}, *READ_ERRORS, 404),
        parameters=[JOB_ID],
        operation_id="scoring_jobs_retrieve",
    )
    def get(self, request, job_id: str):
        return Response(ScoringJobOutput(scoring_job_json(_job(job_id, request), request)).data)


class JsonErrorsOnly(BaseContentNegotiation):
    """The result is a file whatever the Accept header says; errors are always JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ScoringJobResultView(ApiView):
    required_scope = "score"
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonErrorsOnly

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV: external_id,churn_probability,risk_band"
            ),
            **error_responses(*READ_ERRORS, 404),
        },
        parameters=[JOB_ID],
        operation_id="scoring_jobs_result",
    )
    def get(self, request, job_id: str):
        job = _job(job_id, request)
        path = scoring_job_result_path(job)
        if job.status != ScoringJob.Status.DONE or path is None:
            raise NotFound(f"the job is {job.status}: its result is not ready")
        return FileResponse(
            path.open("rb"), content_type="text/csv", as_attachment=True, filename=f"scores-{job.pk}.csv"
        )


def _job(job_id: str, request) -> ScoringJob:
    # Taken as text, not by a uuid path converter, so that a malformed id is a JSON 404 like an unknown one.
    try:
        job = scoring_job_get(job_id=uuid.UUID(job_id), api_client=request.auth)
    except ValueError:
        job = None
    if job is None:
        raise NotFound(f"no scoring job {job_id}")
    return job
