"""Kopf's login handler: a fresh ConnectionInfo from the current credential each time Kopf asks, expiring when the
credential is due a refresh; asked again before that (Kopf got a 401), the source is told and must give another."""

from __future__ import annotations

import base64
import datetime

import kopf
import pytest

from acinode import errors, operator
from acinode.kube import connection, credentials

pytestmark = pytest.mark.timeout(2)

NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
ENDPOINT = connection.KubeConnection(
    server="https://aks.example:443", ca_data=b"-----BEGIN CA", namespace="ops"
)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime.datetime:
        return self.now


class FakeCredentialSource:
    """A credential source handing out the credentials it is given, one more on each invalidation."""

    def __init__(self, *issued: credentials.Credential | errors.AcinodeError) -> None:
        self.issued = list(issued)
        self.invalidated: list[credentials.Credential] = []

    @property
    def endpoint(self) -> connection.KubeConnection:
        return ENDPOINT

    @property
    def description(self) -> str:
        return "the fake source"

    async def current(self) -> credentials.Credential:
        head = self.issued[0]
        if isinstance(head, errors.AcinodeError):
            raise head
        return head

    def invalidate(self, stale: credentials.Credential) -> None:
        self.invalidated.append(stale)
        if len(self.issued) > 1 and self.issued[0] is stale:
            self.issued.pop(0)


def expiring(token: str, minutes: int) -> credentials.Credential:
    expires_at = NOW + datetime.timedelta(minutes=minutes)
    return credentials.Credential(
        token=token, expires_at=expires_at, refresh_at=expires_at - datetime.timedelta(seconds=30)
    )


async def test_the_connection_info_carries_the_credential_and_its_expiry() -> None:
    first = expiring("token-1", 10)
    info = await operator.KopfLogin(FakeCredentialSource(first), Clock()).connection_info()
    assert info == kopf.ConnectionInfo(
        server="https://aks.example:443",
        ca_data=base64.b64encode(b"-----BEGIN CA").decode(),
        token="token-1",
        default_namespace="ops",
        expiration=first.refresh_at,
    )


async def test_a_client_certificate_from_the_credential_is_passed_to_kopf() -> None:
    credential = credentials.Credential(certificate_data=b"CERT", private_key_data=b"KEY")
    info = await operator.KopfLogin(FakeCredentialSource(credential), Clock()).connection_info()
    assert (info.token, info.certificate_data, info.private_key_data, info.expiration) == (
        None,
        base64.b64encode(b"CERT").decode(),
        base64.b64encode(b"KEY").decode(),
        None,
    )


async def test_after_expiry_the_next_credential_is_taken_without_invalidating() -> None:
    clock = Clock()
    first, second = expiring("token-1", 10), expiring("token-2", 20)
    source = FakeCredentialSource(first)
    login = operator.KopfLogin(source, clock)
    await login.connection_info()
    clock.now = first.refresh_at or NOW
    source.issued = [second]  # what the source itself fetched once the first was due
    info = await login.connection_info()
    assert (info.token, info.expiration) == ("token-2", second.refresh_at)
    assert source.invalidated == []


async def test_asked_again_before_expiry_means_refused_and_a_new_credential_is_fetched() -> None:
    first, second = credentials.Credential(token="token-1"), credentials.Credential(token="token-2")
    source = FakeCredentialSource(first, second)
    login = operator.KopfLogin(source, Clock())
    await login.connection_info()
    info = await login.connection_info()
    assert info.token == "token-2"
    assert source.invalidated == [first]


async def test_refused_without_a_new_credential_kopf_is_told_to_ask_again_later() -> None:
    first = credentials.Credential(token="token-1")
    source = FakeCredentialSource(first)
    login = operator.KopfLogin(source, Clock())
    await login.connection_info()
    with pytest.raises(kopf.TemporaryError) as caught:
        await login.connection_info()
    assert str(caught.value) == (
        "the API server refused the credentials from the fake source (401), and no new ones are available yet"
    )
    assert caught.value.delay == operator.LOGIN_RETRY_SECONDS
    source.issued = [credentials.Credential(token="token-2")]  # e.g. the kubelet rotated the token file
    assert (await login.connection_info()).token == "token-2"


async def test_a_source_that_fails_makes_kopf_retry_with_the_reason() -> None:
    login = operator.KopfLogin(
        FakeCredentialSource(errors.AuthenticationError("exec plugin kubelogin failed")), Clock()
    )
    with pytest.raises(kopf.TemporaryError, match=r"^cannot log in: exec plugin kubelogin failed$"):
        await login.connection_info()
