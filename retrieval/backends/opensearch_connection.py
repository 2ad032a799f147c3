"""Connecting to OpenSearch, and turning transport failures into readable errors.

Credentials never appear in messages or logs: URLs are shown without their `user:password@` part.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from retrieval.errors import IndexNotFoundError, RetrievalError


class OpenSearchError(RetrievalError):
    """OpenSearch failed a request; `retryable` says whether the same request may succeed later, `status` is the HTTP
    status (None when there was no answer)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenSearchUnavailableError(OpenSearchError):
    """OpenSearch cannot be reached, did not answer in time, or is overloaded (HTTP 429, 5xx): retry later."""

    retryable = True


class OpenSearchBadRequestError(OpenSearchError):
    """OpenSearch refused a request as malformed (HTTP 400): bad input or a ksearch bug; retrying cannot help.

    `error_type` and `reason` are OpenSearch's; `field` the field (or query, setting) it named, when it named one.
    """

    def __init__(self, message: str, *, error_type: str, reason: str, field: str | None) -> None:
        super().__init__(message, status=400)
        self.error_type, self.reason, self.field = error_type, reason, field


class OpenSearchRefusedError(OpenSearchError):
    """OpenSearch (or its TLS certificate) refused us: credentials (401), permissions (403), a blocked index, or
    another 4xx answer; retrying cannot help until the settings or the cluster change."""


@dataclass(frozen=True)
class OpenSearchConnection:
    """Where and how to reach OpenSearch (`retrieval.settings.Settings.opensearch_connection()`, or given in tests)."""

    # Settings.opensearch_connection(): KSEARCH_OPENSEARCH_URL, else the node `ksearch opensearch start` runs; several
    # nodes of one cluster comma-separated (requests go round-robin, a node that does not answer is skipped)
    url: str = "http://127.0.0.1:9200"
    user: str | None = None
    password: str | None = None  # plain text here; settings hold it as SecretStr
    verify_certs: bool = True
    ca_file: Path | None = None
    timeout: float = 30.0

    @property
    def safe_url(self) -> str:
        """The URL without user information (safe to print)."""
        return redact_url(self.url)

    @property
    def urls(self) -> list[str]:
        """The node URLs of `url` (several when it lists them comma-separated)."""
        urls = [u.strip().rstrip("/") for u in self.url.split(",") if u.strip()]
        if not urls:
            raise RetrievalError("the OpenSearch URL is empty: set KSEARCH_OPENSEARCH_URL to http(s)://host:port "
                                 "(several nodes of a cluster comma-separated)")
        return urls

    def __repr__(self) -> str:  # never show the password
        return f"OpenSearchConnection(url={self.safe_url!r}, user={self.user!r}, verify_certs={self.verify_certs})"

    def client(self):  # -> opensearchpy.OpenSearch
        """An `opensearchpy.OpenSearch` client of every node in `urls` (credentials from the fields or the first URL
        that has some)."""
        from opensearchpy import OpenSearch

        user, password, hosts = self.user, self.password, []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.username and user is None:
                user, password = parts.username, parts.password
            hosts.append(urlunsplit((parts.scheme, (parts.hostname or "") + (f":{parts.port}" if parts.port else ""),
                                     parts.path, "", "")))
        kwargs = {"hosts": hosts, "timeout": self.timeout, "verify_certs": self.verify_certs,
                  "ssl_show_warn": self.verify_certs, "http_compress": False}
        if user is not None:
            kwargs["http_auth"] = (user, password or "")
        if self.ca_file is not None:
            kwargs["ca_certs"] = str(self.ca_file)
        return OpenSearch(**kwargs)


def redact_url(url: str) -> str:
    """`url` without `user:password@` (each of several comma-separated URLs)."""
    if "," in url:
        return ",".join(redact_url(u.strip()) for u in url.split(","))
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
    """Re-raise opensearch-py failures of `what` as `RetrievalError`s that say what to do (no credentials).

    Unreachable, timed out, 429, 5xx and a scan that met failed shards: `OpenSearchUnavailableError` (retryable).
    400: `OpenSearchBadRequestError` naming OpenSearch's reason and field. A missing `index`: `IndexNotFoundError`.
    TLS, 401, 403 and other 4xx: `OpenSearchRefusedError`.
    """
    from opensearchpy import exceptions as ex
    from opensearchpy.helpers import ScanError

    url = conn.safe_url
    try:
        yield
    except ScanError as exc:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url}: some shards failed while {what} ({exc}); a node may have left the cluster: check "
            f"`ksearch opensearch status` (or the cluster's health) and retry once the index is yellow or green") from None
    except ex.SSLError as exc:
        raise OpenSearchRefusedError(
            f"OpenSearch at {url}: TLS verification failed while {what} ({type(exc).__name__}); set "
            f"KSEARCH_OPENSEARCH_CA_FILE to the cluster's CA certificate (or KSEARCH_OPENSEARCH_VERIFY_CERTS=false "
            f"for a local test node)") from None
    except ex.ConnectionTimeout:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} did not answer within {conn.timeout:g} s while {what}; check that it is healthy "
            f"or raise KSEARCH_OPENSEARCH_TIMEOUT (retrying later may work)") from None
    except ex.ConnectionError:
        raise OpenSearchUnavailableError(
            f"OpenSearch at {url} is not reachable (connection refused or host unknown) while {what}: "
            f"{HOW_TO_START}") from None
    except ex.TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else None
        raise http_error(conn, what, status, _error_of(exc), index) from None


def http_error(conn: OpenSearchConnection, what: str, status: int | None, error: dict | str | None,
               index: str | None = None) -> RetrievalError:
    """The error for an HTTP failure `status` with OpenSearch's `error` object (of a response, or of one bulk item)."""
    url = conn.safe_url
    error_type, reason = _type_and_reason(error)
    if status == 400:
        named = named_field(error)
        return OpenSearchBadRequestError(
            f"OpenSearch at {url} refused the request as malformed (HTTP 400) while {what}: {error_type}: {reason}"
            + (f" [{named[0]}: {named[1]}]" if named else "")
            + ". Retrying will not help: the input is invalid or ksearch built a wrong request (please report it "
              "with this message)", error_type=error_type, reason=reason,
            field=named[1] if named else None)
    if status == 404 and error_type == "index_not_found_exception" and index is not None:
        return IndexNotFoundError(missing_index_message(index, url))
    if status == 401:
        return OpenSearchRefusedError(
            f"OpenSearch at {url} refused the credentials (HTTP 401) while {what}: set KSEARCH_OPENSEARCH_USER and "
            f"KSEARCH_OPENSEARCH_PASSWORD", status=status)
    if status == 403:
        return OpenSearchRefusedError(
            f"OpenSearch at {url} refused (HTTP 403) while {what}: {error_type}: {reason} (user {conn.user!r} may not "
            f"do this, or the index is blocked, e.g. read-only)", status=status)
    if status == 429 or (status is not None and status >= 500):
        return OpenSearchUnavailableError(
            f"OpenSearch at {url} could not serve the request (HTTP {status}) while {what}: {error_type}: {reason}; "
            f"it is overloaded or not ready: retry later", status=status)
    return OpenSearchRefusedError(f"OpenSearch at {url} refused the request (HTTP {status}) while {what}: "
                                  f"{error_type}: {reason}", status=status)


def missing_index_message(index: str, url: str) -> str:
    """What to tell a user whose OpenSearch index (alias) does not exist."""
    return (f"OpenSearch index {index!r} does not exist at {redact_url(url)}: build it with "
            f"`ksearch ingest PATH --backend opensearch --index {index}` (e.g. `ksearch ingest sample_data/corpus.jsonl "
            f"--backend opensearch`)")


def _error_of(exc) -> dict | str | None:
    """OpenSearch's `error` object of a failed response (a string for some errors, None when it sent none)."""
    info = getattr(exc, "info", None)
    if isinstance(info, dict) and "error" in info:
        return info["error"]
    return str(getattr(exc, "error", "") or "") or None


def _chain(error: dict | str | None) -> list[dict]:
    """The error, its first root cause and its `caused_by` chain (each an object with `type` and `reason`)."""
    if not isinstance(error, dict):
        return []
    found, todo = [], [*(error.get("root_cause") or [])[:1], error]
    while todo:
        item = todo.pop(0)
        if isinstance(item, dict) and item not in found:
            found.append(item)
            todo.append(item.get("caused_by"))
    return found


def _type_and_reason(error: dict | str | None) -> tuple[str, str]:
    """OpenSearch's error type and reason (the root cause's, with what caused it), at most 500 characters."""
    chain = _chain(error)
    if not chain:
        return "error", (str(error) if error else "no reason given")[:500]
    error_type = str(chain[0].get("type", "error"))
    reasons = list(dict.fromkeys(str(e.get("reason", "")) for e in chain if e.get("reason")))
    return error_type, "; ".join(reasons)[:500] or "no reason given"


_NAMED = (  # what a 400 error's reason names, and what kind of thing it is
    ("field", re.compile(r"on field \[?([^\]\s,;]+)\]?")),  # rank_features: "... for feature a on field sparse ..."
    ("field", re.compile(r"(?:failed to parse field|unknown field|dynamic introduction of|\bfield) \[([^\]]+)\]")),
    ("query", re.compile(r"unknown query \[([^\]]+)\]")),
    ("query option", re.compile(r"^\[([^\]]+)\] query does not support \[([^\]]+)\]")),
    ("setting", re.compile(r"changing the \[([^\]]+)\] index level setting")),
)


def named_field(error: dict | str | None) -> tuple[str, str] | None:
    """(kind, name) of what a 400 error names: ("field", "sparse"), ("query", "bogus"), ("setting",
    "index.max_result_window"); None when its reason names nothing we recognise."""
    for item in _chain(error):
        reason = str(item.get("reason", ""))
        for kind, pattern in _NAMED:
            match = pattern.search(reason)
            if match:
                return kind, ".".join(match.groups())
    return None
