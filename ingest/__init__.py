"""The ingest worker: corpus readers, passage splitting, batched encoding, resumable writes."""

from ingest.chunking import PassageSplitter
from ingest.problems import InputFileError, RowProblem
from ingest.readers import ColumnMapping, SourceDocument, read_documents
from ingest.worker import IngestReport, ingest_path

__all__ = ["ColumnMapping", "IngestReport", "InputFileError", "PassageSplitter", "RowProblem", "SourceDocument",
           "ingest_path", "read_documents"]
