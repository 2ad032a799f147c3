"""Connecting to OpenSearch, and turning transport failures into readable errors.

Credentials never appear in messages or logs: URLs are shown without their `user:password@` part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from retrieval.errors import IndexNotFoundError, RetrievalError


class OpenSearchUnavailableError(RetrievalError):
    """OpenSearch cannot be reached, refuses the credentials, or fails a request."""


@dataclass(frozen=True)
class OpenSearchConnection:
    """Where and how to reach OpenSearch (`retrieval.settings.Settings.opensearch_connection()`, or given in tests)."""

    url: str = "http://127.0.0.1:9200"  # Settings.opensearch_connection(): KSEARCH_OPENSEARCH_URL, else the node `ksearch opensearch start` runs
    user: str | None = None
    password: str | None = None  # plain text here; settings hold it as SecretStr
    verify_certs: bool = True
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def safe_url(self) -> str:
        """The URL without user information (safe to print)."""
        return redact_url(self.url)

    def __repr__(self) -> str:  # never show the password
        return f"OpenSearchConnection(url={self.safe_url!r}, user={self.user!r}, verify_certs={self.verify_certs})"

    def client(self):  # -> opensearchpy.OpenSearch
        """An `opensearchpy.OpenSearch` client (credentials from the fields or the URL)."""
        from opensearchpy import OpenSearch

        parts = urlsplit(self.url)
        user, password = self.user, self.password
        if parts.username and user is None:
            user, password = parts.username, parts.password
        host = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
        kwargs = {"hosts": [host], "timeout": self.timeout, "verify_certs": self.verify_certs,
                  "ssl_show_warn": self.verify_certs, "http_compress": False}
        if user is not None:
            kwargs["http_auth"] = (user, password or "")
        if self.ca_file is not None:
            kwargs["ca_certs"] = str(self.ca_file)
        return OpenSearch(**kwargs)


def redact_url(url: str) -> str:
    """`url` without `user:password@`."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


HOW_TO_START = ("start one with `ksearch opensearch start` (found without further settings while it runs) or "
                "`docker compose up -d opensearch`, or point KSEARCH_OPENSEARCH_URL at a running one")


@contextlib.contextmanager
def translated_errors(conn: OpenSearchConnection, what: str, index: str | None = None) -> Iterator[None]:
    """Re-raise opensearch-py failures of `what` as `RetrievalError`s that say what to do (no credentials)."""
    from opensearchpy import exceptions as ex

    url = conn.safe_url
    try:
        yield
    except ex.SSLError as exc:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url}: TLS verification failed while {what} ({type(exc).__name__}); set "
            f"KSEARCH_OPENSEARCH_CA_FILE to the cluster's CA certificate (or KSEARCH_OPENSEARCH_VERIFY_CERTS=false "
            f"for a local test node)") from None
    except ex.ConnectionTimeout:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} did not answer within {conn.timeout:g} s while {what}; check that it is healthy "
            f"or raise KSEARCH_OPENSEARCH_TIMEOUT") from None
    except ex.ConnectionError:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} is not reachable (connection refused or host unknown) while {what}: "
            f"{HOW_TO_START}") from None
    except ex.AuthenticationException:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} refused the credentials (HTTP 401) while {what}: set KSEARCH_OPENSEARCH_USER and "
            f"KSEARCH_OPENSEARCH_PASSWORD") from None
    except ex.AuthorizationException:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url}: user {conn.user!r} may not do this (HTTP 403) while {what}") from None
    except ex.NotFoundError as exc:
        if index is not None and "index_not_found" in str(getattr(exc, "error", "")):
            raise IndexNotFoundError(missing_index_message(index, url)) from None
        raise OpenSearchUnavailableError(f"OpenSearch at {url}: not found while {what}: {_reason(exc)}") from None
    except ex.TransportError as exc:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} failed while {what} (HTTP {exc.status_code}): {_reason(exc)}") from None


def missing_index_message(index: str, url: str) -> str:
    """What to tell a user whose OpenSearch index (alias) does not exist."""
    return (f"OpenSearch index {index!r} does not exist at {redact_url(url)}: build it with "
            f"`ksearch ingest PATH --backend opensearch --index {index}` (e.g. `ksearch ingest sample_data/corpus.jsonl "
            f"--backend opensearch`)")


def _reason(exc) -> str:
    info = getattr(exc, "info", None)
    if isinstance(info, dict):
        err = info.get("error")
        if isinstance(err, dict):
            root = (err.get("root_cause") or [err])[0]
            return f"{root.get('type', '')}: {root.get('reason', '')}"[:500]
    return str(getattr(exc, "error", exc))[:500]
