"""The Seismic file of one `EmbeddedIndex` object: building it for a committed state (writer's side), loading
the one a state names (reader's side), and telling the user, once, why a search answered exactly."""

from __future__ import annotations

import logging
from pathlib import Path

from retrieval.backends.approximate import SeismicParams, SeismicScorer, seismic_available
from retrieval.backends.approximate_state import AnnState, AnnStatus, ann_status, new_ann_name
from retrieval.backends.live_view import LiveView
from retrieval.backends.manifest import AnnRef, Manifest
from retrieval.backends.seismic_build import build_seismic_file
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)


class SeismicFile:
    """Loads, builds and reports on the Seismic files of the index folder `root` (named by its manifests)."""

    def __init__(self, root: Path, params: SeismicParams | None = None) -> None:
        self.root = root
        self.params = params or SeismicParams()
        self._loaded: tuple[str, SeismicScorer] | None = None  # (file name, its index)
        self._unreadable: dict[str, str] = {}  # file name -> why it could not be loaded
        self._noticed: set[tuple] = set()  # notices already logged
        self._missing: str | None | bool = False  # seismic_available(), asked once (False: not yet)

    def unavailable(self) -> str | None:
        """Why pyseismic-lsr cannot be used (None when it can)."""
        if self._missing is False:
            self._missing = seismic_available()
        return self._missing

    def status(self, manifest: Manifest, passages: int, approximate_above: int | None) -> AnnStatus:
        """The state of `manifest`'s Seismic file for searches configured with `approximate_above`."""
        status = ann_status(manifest, self.root.name, passages, approximate_above, self.params,
                            self.unavailable() if approximate_above is not None else None)
        if status.state is AnnState.READY and manifest.ann.name in self._unreadable:
            return AnnStatus(AnnState.UNREADABLE, self.root.name, passages, manifest.last_seq, approximate_above,
                             manifest.ann, self._unreadable[manifest.ann.name])
        return status

    def scorer(self, manifest: Manifest, view: LiveView, approximate_above: int | None) -> SeismicScorer | None:
        """The loaded Seismic index of `view` (the live rows of `manifest`); None, the reason logged once, when unusable."""
        status = self.status(manifest, len(view.passages), approximate_above)
        if status.state is not AnnState.READY:
            self.notice_once(status)
            return None
        ref = manifest.ann
        loaded = self._loaded
        if loaded is not None and loaded[0] == ref.name:
            return loaded[1]
        try:
            scorer = SeismicScorer.load(self.root / ref.name, view.matrix, self.params)
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file; pyseismic raises several kinds
            self._unreadable[ref.name] = f"{type(exc).__name__}: {exc}"
            self.notice_once(self.status(manifest, len(view.passages), approximate_above))
            return None
        self._loaded = (ref.name, scorer)
        return scorer

    def notice_once(self, status: AnnStatus) -> None:
        """Log the status's notice, once per state of the index."""
        key = (status.state, status.last_seq, status.ref.name if status.ref else None)
        if status.notice() and key not in self._noticed:
            self._noticed.add(key)
            log.warning("%s", status.notice())

    def build(self, manifest: Manifest, view: LiveView, *, progress: bool = False) -> AnnRef:
        """Write the Seismic file of `view` (the live rows of `manifest`) under a new name; the caller commits the entry."""
        missing = self.unavailable()
        if missing is not None:
            raise RetrievalError(f"cannot build the Seismic index of {self.root}: {missing}")
        if not view.passages:
            raise RetrievalError(f"index {self.root} has no passages to build a Seismic index of")
        name = new_ann_name(manifest.last_seq)
        log.info("building the Seismic index of %s (%d passages)", self.root.name, len(view.passages))
        seconds = build_seismic_file(view.matrix, self.params, self.root / name, progress=progress)
        log.info("built the Seismic index of %s in %.1f s", self.root.name, seconds)
        return AnnRef(name=name, seq=manifest.last_seq, params=self.params.to_json(), passages=len(view.passages),
                      build_seconds=round(seconds, 3))
