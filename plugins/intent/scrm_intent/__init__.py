"""Intent labels for social posts: a trained model in five languages, retrainable from agents' corrections.

``intent:complaint``, ``intent:question``, ``intent:purchase``, ``intent:praise``,
``intent:spam`` with a calibrated confidence, ``intent:unsure`` when the model is not
sure, nothing when the post has no intent. See README.md and docs/understanding.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classifier import IntentClassifier
    from .model import INTENTS, IntentModel, ModelError, Prediction

__version__ = "0.2.0"
__all__ = ["INTENTS", "IntentClassifier", "IntentModel", "ModelError", "Prediction"]

# Imported on first use: the model needs numpy, which the plugin's loading should not pay for.
_WHERE = {"IntentClassifier": ".classifier", "INTENTS": ".model", "IntentModel": ".model", "ModelError": ".model"}
_WHERE["Prediction"] = ".model"


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
