"""Downloading artifacts into the cache (Maven layout), each verified against its SHA-1 (published and pinned)."""

from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ksearch.opensearch_node.artifacts import Artifact
from ksearch.opensearch_node.errors import DownloadError

if TYPE_CHECKING:
    from rich.progress import Progress


def stderr_console():  # -> rich.console.Console
    """Where progress and notes go (stdout carries the commands' results)."""
    from rich.console import Console

    return Console(stderr=True)


def fetch_text(url: str, coordinate: str) -> str:
    """A small text file (a .sha1), or `DownloadError`."""
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read().decode("ascii", "replace")
    except urllib.error.HTTPError as e:
        raise DownloadError(coordinate, url, f"HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(coordinate, url, str(getattr(e, "reason", e))) from e


def expected_sha1(artifact: Artifact) -> str:
    """The SHA-1 a download must have: Maven's .sha1 file, which must agree with the pinned one."""
    url = artifact.url() + ".sha1"
    try:
        published = fetch_text(url, artifact.coordinate).strip().split()[0].lower()
    except DownloadError as e:
        if artifact.sha1 and "HTTP 404" in e.reason:
            return artifact.sha1  # no .sha1 published: rely on the pinned one
        raise
    except IndexError:
        published = ""
    if not re.fullmatch(r"[0-9a-f]{40}", published):
        raise DownloadError(artifact.coordinate, url, f"not a SHA-1: {published[:60]!r}")
    if artifact.sha1 and published != artifact.sha1:
        raise DownloadError(
            artifact.coordinate, url, f"published SHA-1 {published} differs from the pinned {artifact.sha1}"
        )
    return published


def download(artifact: Artifact, downloads_dir: Path, progress: Progress | None = None) -> Path:
    """Download one artifact into `downloads_dir` (verified with its .sha1), or reuse the cached file."""
    dest = downloads_dir / artifact.relpath
    sha_file = dest.with_name(dest.name + ".sha1")
    if dest.is_file() and sha_file.is_file():
        return dest
    url = artifact.url()
    expected = expected_sha1(artifact)
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(3):
        part = dest.with_name(f"{dest.name}.part{os.getpid()}")
        task = None
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                if progress is not None:
                    task = progress.add_task(dest.name, total=total)
                digest = hashlib.sha1()
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    if task is not None:
                        progress.update(task, advance=len(chunk))
            if digest.hexdigest() != expected:
                raise DownloadError(
                    artifact.coordinate, url, f"SHA-1 mismatch: got {digest.hexdigest()}, expected {expected}"
                )
            os.replace(part, dest)
            sha_file.write_text(expected + "\n")
            return dest
        except urllib.error.HTTPError as e:
            part.unlink(missing_ok=True)
            raise DownloadError(artifact.coordinate, url, f"HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, DownloadError) as e:
            part.unlink(missing_ok=True)
            last_error = e
            time.sleep(1 + 2 * attempt)
        finally:
            if task is not None:
                progress.remove_task(task)
    if isinstance(last_error, DownloadError):
        raise last_error
    raise DownloadError(artifact.coordinate, url, str(getattr(last_error, "reason", last_error))) from last_error


def download_all(artifacts: list[Artifact], downloads_dir: Path, *, say: Callable[[str], None],
                 quiet: bool = False, what: str = "OpenSearch") -> dict[Artifact, Path]:
    """Every artifact's cached file, downloading the missing ones with a progress bar (unless `quiet`)."""
    missing = [a for a in artifacts if not (downloads_dir / a.relpath).is_file()]
    if not missing:
        return {a: download(a, downloads_dir) for a in artifacts}
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    say(f"Downloading {len(missing)} {what} artifact(s) into {downloads_dir}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=stderr_console(),
        disable=quiet,
        transient=True,
    ) as progress:
        return {a: download(a, downloads_dir, progress) for a in artifacts}
