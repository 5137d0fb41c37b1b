"""Models served by ``python -m tandem serve`` over ``inference.InferenceService``.

A model subclasses :class:`Model` (``name``, ``load``, ``warm``, ``predict_batch``, optional
``stream``) and declares its :class:`BatchConfig`; a :class:`Registry` in the served module
lists the models. The bundled payment risk models all subclass
:class:`~tandem.models.payments.PaymentModel`: :class:`RiskModel` (logistic regression),
:class:`RiskMlpModel` (a numpy MLP whose compute batching amortizes) and :class:`RiskSeqModel`
(a GRU over the card's recent transactions, :mod:`~tandem.models.history`, whose step-by-step
recurrence costs nearly the same for a batch of 64 as for one). Importing this package stays
standard-library only: numpy is imported when a model loads.
"""

from ._model import BatchConfig, Model, Registry
from .payments import PaymentModel
from .risk import RiskModel
from .risk_mlp import RiskMlpModel
from .risk_seq import RiskSeqModel

#: The bundled payment risk models, by model name.
BUNDLED: dict[str, type[PaymentModel]] = {
    m.name: m for m in (RiskModel, RiskMlpModel, RiskSeqModel)
}

__all__ = [
    "BUNDLED",
    "BatchConfig",
    "Model",
    "PaymentModel",
    "Registry",
    "RiskMlpModel",
    "RiskModel",
    "RiskSeqModel",
]
