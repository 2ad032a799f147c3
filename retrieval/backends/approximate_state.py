"""Whether an embedded index's sparse searches can use its approximate index, and what to tell the user when they cannot.

The approximate index (impact-ordered postings, `impact.py`, stored by `impact_file.py`) is writer's work: built at
the end of an ingest (`EmbeddedIndex.finish_writes`) or by `ksearch index build-ann`, never by a search. A search
that is configured to approximate but finds no usable index answers exactly (the same results, slower) and says why
through `AnnStatus.notice`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

from retrieval.backends.manifest import AnnRef, Manifest

APPROXIMATE_PREFIX = "approx-"  # approximate indexes, current (approx-impact-*) or of an earlier ksearch (approx-seismic-*)
IMPACT_PREFIX = "approx-impact-"


class AnnState(str, Enum):
    """How sparse search runs on an index, as far as its approximate index goes."""

    OFF = "off"  # approximate search is not configured (approximate_above is None): exact by choice
    SMALL = "small"  # fewer live passages than approximate_above: exact by choice
    READY = "ready"  # the manifest names an approximate index of the current rows, built with the current settings
    STALE = "stale"  # the approximate index predates the latest write, or was built with other settings
    MISSING = "missing"  # approximate search is wanted but no approximate index was ever built
    UNREADABLE = "unreadable"  # the named index could not be loaded (a later writer replaced it, or it is damaged)


EXACT_FALLBACK = frozenset({AnnState.STALE, AnnState.MISSING, AnnState.UNREADABLE})


@dataclass(frozen=True)
class AnnStatus:
    """The state, and the figures a user needs to understand it."""

    state: AnnState
    index: str
    passages: int
    last_seq: int
    approximate_above: int | None
    ref: AnnRef | None
    detail: str = ""  # why not ready (unreadable)

    @property
    def exact_fallback(self) -> bool:
        """True when searches answer exactly although the settings ask for the approximate index."""
        return self.state in EXACT_FALLBACK

    def notice(self) -> str | None:
        """One line for the user when searches answer exactly against the settings; None otherwise."""
        if not self.exact_fallback:
            return None
        if self.state is AnnState.STALE and self.ref is not None and self.ref.seq != self.last_seq:
            why = f"its approximate index was built at write {self.ref.seq} and the index is at write {self.last_seq}"
        elif self.state is AnnState.STALE:
            why = (f"its approximate index was built with other build settings ({self.ref.params.get('method', 'Seismic')}"
                   " by an earlier ksearch, or other block settings)")
        elif self.state is AnnState.MISSING:
            why = "it has no approximate index yet"
        else:
            why = f"its approximate index could not be read ({self.detail}; reopening the index may help)"
        return (f"sparse search on index {self.index!r} answers exactly because {why}: run "
                f"`ksearch index build-ann --index {self.index}` (an ingest also rebuilds it)")

    def describe(self) -> str:
        """One line for `ksearch index status` and build-ann."""
        if self.state is AnnState.OFF:
            return "approximate search off (KSEARCH_APPROXIMATE_ABOVE unset): sparse search is exact"
        if self.state is AnnState.SMALL:
            return (f"{self.passages:,} passages, below KSEARCH_APPROXIMATE_ABOVE={self.approximate_above:,}: "
                    "sparse search is exact")
        if self.state is AnnState.READY:
            return (f"approximate index {self.ref.name} ({self.ref.params.get('method')}) of {self.ref.passages:,} "
                    f"passages (built in {self.ref.build_seconds:.1f} s): sparse search is approximate")
        return self.notice() or ""


def ref_is_current(manifest: Manifest, settings: dict) -> bool:
    """True when the manifest's approximate index reflects its latest write and was built with `settings`."""
    ref = manifest.ann
    if ref is None or ref.seq != manifest.last_seq:
        return False
    return {k: ref.params.get(k) for k in settings} == settings


def ann_status(manifest: Manifest, index: str, passages: int, approximate_above: int | None,
               settings: dict) -> AnnStatus:
    """The state of index `index`'s approximate index (per `manifest`) for searches configured with `approximate_above`
    and an index built with `settings`."""
    def status(state: AnnState, detail: str = "") -> AnnStatus:
        return AnnStatus(state, index, passages, manifest.last_seq, approximate_above, manifest.ann, detail)

    if approximate_above is None:
        return status(AnnState.OFF)
    if passages < approximate_above:
        return status(AnnState.SMALL)
    if manifest.ann is None:
        return status(AnnState.MISSING)
    return status(AnnState.READY if ref_is_current(manifest, settings) else AnnState.STALE)


def new_ann_name(seq: int) -> str:
    """A folder name no earlier build used: files a manifest names are never replaced under a reader."""
    return f"{IMPACT_PREFIX}{seq:06d}-{uuid.uuid4().hex[:8]}"
