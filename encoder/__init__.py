"""Korean text -> sparse SPLADE vectors. Knows nothing of search backends."""

from encoder.feature_names import feature_to_token, is_safe_feature_name, token_to_feature
from encoder.model_resolution import PRODUCTION_MODEL_ID, ModelNotFoundError, resolve_model
from encoder.pruning import Pruning, PruneType
from encoder.sparse_encoder import SparseEncoder

__all__ = [
    "PRODUCTION_MODEL_ID",
    "ModelNotFoundError",
    "Pruning",
    "PruneType",
    "SparseEncoder",
    "feature_to_token",
    "is_safe_feature_name",
    "resolve_model",
    "token_to_feature",
]
