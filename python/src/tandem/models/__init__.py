"""Models served by ``python -m tandem serve`` over ``inference.InferenceService``.

A model subclasses :class:`Model` (``name``, ``load``, ``warm``, ``predict_batch``, optional
``stream``) and declares its :class:`BatchConfig`; a :class:`Registry` in the served module
lists the models. :class:`RiskModel` (logistic regression) and :class:`RiskMlpModel` (a numpy
MLP whose compute batching amortizes) are the bundled payment risk models; both subclass
:class:`~tandem.models.payments.PaymentModel`. Importing this package stays standard-library
only: numpy is imported when a model loads.
"""

from ._model import BatchConfig, Model, Registry
from .payments import PaymentModel
from .risk import RiskModel
from .risk_mlp import RiskMlpModel

__all__ = ["BatchConfig", "Model", "PaymentModel", "Registry", "RiskMlpModel", "RiskModel"]
