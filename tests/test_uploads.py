"""Request bodies are bounded before they are read: a body over the limit, or files from someone not signed in, are
answered without a byte of them read; a file over the limit stops being stored as it arrives."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from incidents.models import Declaration
from incidents.uploads import FileSizeLimitUploadHandler, OversizedUpload, max_request_bytes

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


class UnreadBody:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def post_unread(client, path, *, length: int, content_type=MULTIPART_CONTENT, **headers):
    return client.generic(
        "POST",
        path,
        data=b"x",
        content_type=content_type,
        CONTENT_LENGTH=str(length),
        **{"wsgi.input": UnreadBody()},
        **headers,
    )


def test_a_body_over_the_limit_is_answered_413_before_it_is_read(support_client, settings):
    settings.PORTAL_MAX_FILE_BYTES = MB
    response = post_unread(support_client, "/declare/", length=max_request_bytes() + 1)
    assert response.status_code == 413
    page = " ".join(response.content.decode().split())
    assert "Too large to send" in page
    assert "at most 10 files of up to 1 MB each" in page
    assert "Nothing was received or stored" in page
    assert not Declaration.objects.exists()


def test_the_limit_follows_the_portals_own(settings):
    settings.PORTAL_MAX_FILE_BYTES = 10 * MB
    settings.PORTAL_MAX_FILES = 10
    assert 100 * MB < max_request_bytes() < 104 * MB


def test_files_from_someone_not_signed_in_are_sent_to_sign_in_unread():
    """The issue's case: 40 MB to /declare/ without a session was spooled to disk before the redirect (CSRF's check
    read the form)."""
    client = Client(enforce_csrf_checks=True)
    response = post_unread(client, "/declare/", length=40 * MB)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/declare/")


def test_the_api_refuses_files_in_its_own_envelope_unread():
    response = post_unread(Client(), "/api/startIncident", length=40 * MB, HTTP_AUTHORIZATION="Bearer nope")
    assert response["Content-Type"] == "application/json"
    assert response.status_code in (401, 415)
    assert response.json()["success"] is False


def test_an_api_body_over_the_limit_is_answered_413_in_the_envelope_unread(settings):
    response = post_unread(
        Client(), "/api/startIncident", length=max_request_bytes() + 1, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


class Kept(FileUploadHandler):
    """Stands for Django's own handlers after ours: counts what it was given to store."""

    kept = 0

    def receive_data_chunk(self, raw_data, start):
        Kept.kept += len(raw_data)
        return raw_data

    def file_complete(self, file_size):
        return SimpleUploadedFile(self.file_name, b"kept")


def test_a_file_over_the_limit_stops_being_stored_as_it_arrives(settings):
    settings.PORTAL_MAX_FILE_BYTES = MB
    body = encode_multipart(BOUNDARY, {"items-0-file": SimpleUploadedFile("huge.log", b"x" * (5 * MB))})
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    Kept.kept = 0
    _, files = MultiPartParser(meta, io.BytesIO(body), [FileSizeLimitUploadHandler(), Kept()]).parse()
    upload = files["items-0-file"]
    assert isinstance(upload, OversizedUpload)
    assert (upload.name, upload.size) == ("huge.log", 5 * MB), "the size it had, for the person's message"
    assert Kept.kept <= MB, "no more than the limit was ever handed on to be stored"


def test_a_file_within_the_limit_is_stored_whole(settings):
    settings.PORTAL_MAX_FILE_BYTES = MB
    body = encode_multipart(BOUNDARY, {"f": SimpleUploadedFile("small.log", b"y" * 1000)})
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    Kept.kept = 0
    _, files = MultiPartParser(meta, io.BytesIO(body), [FileSizeLimitUploadHandler(), Kept()]).parse()
    assert files["f"].read() == b"kept"
    assert Kept.kept == 1000


def test_signing_in_still_works_from_a_client_that_sends_forms_as_multipart(support_user):
    response = Client().post("/accounts/login/", {"username": "sam.support", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert response["Location"] == "/declare/"


def test_someone_not_signed_in_cannot_send_more_than_a_sign_in_form_anywhere():
    response = post_unread(Client(), "/accounts/login/", length=40 * MB)
    assert response.status_code == 413
    assert "Too large to send" in response.content.decode()
