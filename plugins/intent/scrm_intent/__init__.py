"""Intent labels for social posts: a trained model in five languages, retrainable from agents' corrections.

``intent:complaint``, ``intent:question``, ``intent:purchase``, ``intent:praise``,
``intent:spam`` with a calibrated confidence, ``intent:unsure`` when the model is not
sure, nothing when the post has no intent. See README.md and docs/understanding.md.
"""

from .classifier import IntentClassifier
from .model import INTENTS, IntentModel, ModelError, Prediction

__version__ = "0.2.0"
__all__ = ["INTENTS", "IntentClassifier", "IntentModel", "ModelError", "Prediction"]
