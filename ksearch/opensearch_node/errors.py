"""The errors the local node manager raises."""

from __future__ import annotations

from pathlib import Path

class OpenSearchNodeError(RuntimeError):
    """Base class of the errors raised by the local node manager."""


class JavaNotFoundError(OpenSearchNodeError):
    """No Java runtime the chosen OpenSearch version accepts was found."""


class UnknownVersionError(OpenSearchNodeError, ValueError):
    """An OpenSearch version ksearch does not assemble was asked for."""


class DownloadError(OpenSearchNodeError):
    """An artifact could not be downloaded or failed its checksum."""

    def __init__(self, coordinate: str, url: str, reason: str) -> None:
        self.coordinate, self.url, self.reason = coordinate, url, reason
        super().__init__(f"could not download {coordinate} from {url}: {reason}")


class NodeStartError(OpenSearchNodeError):
    """The node did not come up; ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "", log_path: Path | None = None) -> None:
        self.log_tail, self.log_path = log_tail, log_path
        text = message
        if log_path is not None:
            text += f"\nnode log: {log_path}"
        if log_tail:
            text += "\n--- last lines of the node log ---\n" + log_tail
        super().__init__(text)
