"""Fixtures for the JSON API: tokens and a client that speaks JSON with a bearer token."""

import json

import pytest
from django.test import Client

from incidents.services.api_tokens import api_token_create

INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-errors"


class ApiClient:
    """Django's test client, sending JSON and `Authorization: Bearer <token>` as a script would."""

    def __init__(self, client: Client, token: str | None):
        self.client = client
        self.token = token

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        if self.token is not None:
            headers = {"Authorization": f"Bearer {self.token}", **headers}
        return headers

    def post(self, path: str, body=None, *, raw: bytes | str | None = None, content_type="application/json", **headers):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type=content_type, headers=self._headers(headers))

    def patch(self, path: str, body=None, **headers):
        return self.client.patch(
            path, data=json.dumps(body), content_type="application/json", headers=self._headers(headers)
        )

    def get(self, path: str, **headers):
        return self.client.get(path, headers=self._headers(headers))

    def start(self, body, **headers):
        return self.post("/api/startIncident", body, **headers)


def make_token(user, **kwargs) -> str:
    _token, secret = api_token_create(owner=user, name=kwargs.pop("name", "test script"), **kwargs)
    return secret


@pytest.fixture
def support_token(support_user) -> str:
    return make_token(support_user)


@pytest.fixture
def api(support_token) -> ApiClient:
    return ApiClient(Client(), support_token)


def api_for(user) -> ApiClient:
    return ApiClient(Client(), make_token(user))


def link(url: str, title: str | None = None) -> dict:
    item = {"identifier": {"type": "OTHER", "value": {"url": url}}}
    if title is not None:
        item["title"] = title
    return item


def resource(arn: str, title: str | None = None) -> dict:
    item = {"identifier": {"type": "INVOLVED_RESOURCE", "value": {"arn": arn}}}
    if title is not None:
        item["title"] = title
    return item


def assert_error(response, status: int, code: str) -> dict:
    """The error envelope, exactly: returns `error`."""
    assert response.status_code == status, response.content.decode()[:2000]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]
