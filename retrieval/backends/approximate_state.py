"""Whether an embedded index's sparse searches can use its Seismic file, and what to tell the user when they cannot.

The Seismic file is writer's work: built at the end of an ingest (`EmbeddedIndex.finish_writes`) or by
`ksearch index build-ann`, never by a search. A search that is configured to approximate but finds no usable
file answers exactly (the same results, slower) and says why through `AnnStatus.notice`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum

from retrieval.backends.approximate import SeismicParams, SeismicScorer
from retrieval.backends.manifest import AnnRef, Manifest

APPROXIMATE_PREFIX = "approx-seismic-"


class AnnState(str, Enum):
    """How sparse search runs on an index, as far as Seismic goes."""

    OFF = "off"  # approximate search is not configured (approximate_above is None): exact by choice
    SMALL = "small"  # fewer live passages than approximate_above: exact by choice
    READY = "ready"  # the manifest names a Seismic file of the current rows, built with the current settings
    STALE = "stale"  # the Seismic file predates the latest write, or was built with other settings
    MISSING = "missing"  # approximate search is wanted but no Seismic file was ever built
    UNAVAILABLE = "unavailable"  # pyseismic-lsr is not installed
    UNREADABLE = "unreadable"  # the named file could not be loaded (a later writer replaced it, or it is damaged)


EXACT_FALLBACK = frozenset({AnnState.STALE, AnnState.MISSING, AnnState.UNAVAILABLE, AnnState.UNREADABLE})


@dataclass(frozen=True)
class AnnStatus:
    """The state, and the figures a user needs to understand it."""

    state: AnnState
    index: str
    passages: int
    last_seq: int
    approximate_above: int | None
    ref: AnnRef | None
    detail: str = ""  # why not ready (unavailable, unreadable)

    @property
    def exact_fallback(self) -> bool:
        """True when searches answer exactly although the settings ask for Seismic."""
        return self.state in EXACT_FALLBACK

    def notice(self) -> str | None:
        """One line for the user when searches answer exactly against the settings; None otherwise."""
        if not self.exact_fallback:
            return None
        if self.state is AnnState.UNAVAILABLE:
            return (f"approximate search is on for index {self.index!r} but Seismic is unavailable ({self.detail}): "
                    "sparse search answers exactly")
        if self.state is AnnState.STALE and self.ref is not None and self.ref.seq != self.last_seq:
            why = f"its Seismic index was built at write {self.ref.seq} and the index is at write {self.last_seq}"
        elif self.state is AnnState.STALE:
            why = "its Seismic index was built with other build settings"
        elif self.state is AnnState.MISSING:
            why = "it has no Seismic index yet"
        else:
            why = f"its Seismic file could not be read ({self.detail}; reopening the index may help)"
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
            return (f"Seismic index {self.ref.name} of {self.ref.passages:,} passages (built in "
                    f"{self.ref.build_seconds:.1f} s): sparse search is approximate")
        return self.notice() or ""


def ref_is_current(manifest: Manifest, params: SeismicParams) -> bool:
    """True when the manifest's Seismic file reflects its latest write and the build settings of `params`."""
    ref = manifest.ann
    if ref is None or ref.seq != manifest.last_seq:
        return False
    return {k: ref.params.get(k) for k in params.build_settings()} == params.build_settings()


def ann_status(manifest: Manifest, index: str, passages: int, approximate_above: int | None, params: SeismicParams,
               seismic_missing: str | None) -> AnnStatus:
    """The state of index `index`'s Seismic file (per `manifest`) for searches configured with `approximate_above`."""
    def status(state: AnnState, detail: str = "") -> AnnStatus:
        return AnnStatus(state, index, passages, manifest.last_seq, approximate_above, manifest.ann, detail)

    if approximate_above is None:
        return status(AnnState.OFF)
    if passages < approximate_above:
        return status(AnnState.SMALL)
    if seismic_missing is not None:
        return status(AnnState.UNAVAILABLE, seismic_missing)
    if manifest.ann is None:
        return status(AnnState.MISSING)
    return status(AnnState.READY if ref_is_current(manifest, params) else AnnState.STALE)


def new_ann_name(seq: int) -> str:
    """A file name no earlier build used: a file a manifest names is never replaced under a reader."""
    return f"{APPROXIMATE_PREFIX}{seq:06d}-{uuid.uuid4().hex[:8]}{SeismicScorer.SUFFIX}"
