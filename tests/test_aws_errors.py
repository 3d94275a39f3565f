"""How AWS's answers become a declaration's outcome: which errors are retried, which fail at once."""

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError
from botocore.stub import Stubber

from incidents.aws.client import AwsError, _client, _translate, start_incident
from incidents.models import Declaration
from tests.conftest import wait_for_state
from tests.helpers import declare_post


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_access_denied_fails_at_once_and_says_why(support_client, plans, sandbox):
    sandbox.inject(operation="StartIncident", deny_next=1)
    support_client.post("/declare/", declare_post(plans["website-outage"]))
    declaration = wait_for_state(Declaration.objects.get(), Declaration.State.FAILED)
    assert declaration.failure_code == "AccessDeniedException"
    assert declaration.attempts == 1
    assert len(sandbox.calls()) == 1
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "AccessDeniedException" in page


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ValidationException", 400, False),
        ("AccessDeniedException", 403, False),
        ("ResourceNotFoundException", 404, False),
        ("ConflictException", 409, False),
        ("ThrottlingException", 429, True),
        ("InternalServerException", 500, True),
    ],
)
def test_aws_error_codes_are_classified(code, status, retryable):
    # A stubbed client for this one branch: the sandbox cannot answer ValidationException for a request
    # that the portal's own validation already refuses.
    client = _client("ssm-incidents")
    request = {"responsePlanArn": "arn:aws:ssm-incidents::123456789012:response-plan/x", "clientToken": "t"}
    with Stubber(client) as stub:
        stub.add_client_error(
            "start_incident",
            service_error_code=code,
            service_message="AWS said no",
            http_status_code=status,
            expected_params=request,
        )
        with pytest.raises(AwsError) as raised:
            start_incident(request)
    assert raised.value.code == code
    assert raised.value.message == "AWS said no"
    assert raised.value.retryable is retryable


@pytest.mark.parametrize(
    "exc",
    [EndpointConnectionError(endpoint_url="http://aws"), ConnectTimeoutError(endpoint_url="http://aws")],
    ids=["refused", "timeout"],
)
def test_network_errors_are_retryable(exc):
    error = _translate(exc)
    assert error.retryable
    assert error.code == "ConnectionError"


def test_unknown_client_errors_are_not_retried():
    error = _translate(
        ClientError({"Error": {"Code": "Mystery"}, "ResponseMetadata": {"HTTPStatusCode": 418}}, "StartIncident")
    )
    assert (error.code, error.retryable, error.status) == ("Mystery", False, 418)
