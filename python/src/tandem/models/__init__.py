"""Models served by ``python -m tandem serve`` over ``inference.InferenceService``.

A model subclasses :class:`Model` (``name``, ``load``, ``warm``, ``predict_batch``, optional
``stream``) and declares its :class:`BatchConfig`; a :class:`Registry` in the served module
lists the models. :class:`RiskModel` is the bundled payment risk model. Importing this package
stays standard-library only: numpy is imported when a model loads.
"""

from ._model import BatchConfig, Model, Registry
from .risk import RiskModel

__all__ = ["BatchConfig", "Model", "Registry", "RiskModel"]
