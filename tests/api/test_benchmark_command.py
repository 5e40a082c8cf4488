import io

from django.core.management import call_command

from retention.models import ApiClient, Customer


def test_the_benchmark_prints_its_figures_and_leaves_nothing_behind(db):
    out = io.StringIO()
    call_command("benchmark_api", customers=20, runs=1, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("20 customers per request, 1 run each, on ")
    assert [line.split(":")[0] for line in lines[1:]] == ["create", "update"]
    assert all(line.endswith("(the 2 s bar is for 1,000 records a request)") for line in lines[1:])
    assert not Customer.objects.exists() and not ApiClient.objects.exists()
