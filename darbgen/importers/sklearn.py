"""scikit-learn MLPClassifier / MLPRegressor into darbgen's layer graph.

Reads the fitted estimator's attributes (``coefs_``, ``intercepts_``,
``activation``, ``out_activation_``); scikit-learn itself is never imported
here, so darbgen does not need it unless the user has it.
"""
import numpy as np

from ..errors import DarbgenError
from ..graph import Activation, Dense, Model

HIDDEN = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "none"}
OUTPUT = {"softmax": "softmax", "logistic": "sigmoid", "identity": "none"}


def is_sklearn_mlp(obj):
    """True for a fitted scikit-learn MLPClassifier or MLPRegressor."""
    return type(obj).__name__ in ("MLPClassifier", "MLPRegressor") and hasattr(obj, "coefs_")


def from_sklearn(estimator, name=None):
    """A :class:`~darbgen.graph.Model` equal to ``estimator`` (a fitted
    MLPClassifier or MLPRegressor). A classifier's classes are kept in
    ``model.classes`` (predictions map an output index to them)."""
    kind = type(estimator).__name__
    if kind not in ("MLPClassifier", "MLPRegressor"):
        raise DarbgenError(f"{kind}: only scikit-learn MLPClassifier and MLPRegressor can be imported")
    if not hasattr(estimator, "coefs_"):
        raise DarbgenError(f"{kind}: is not fitted; call fit() before importing it")
    hidden = HIDDEN.get(estimator.activation)
    out = OUTPUT.get(estimator.out_activation_)
    if hidden is None or out is None:
        raise DarbgenError(f"{kind}: activation {estimator.activation!r} / output {estimator.out_activation_!r} "
                           f"is not supported")
    layers = []
    count = len(estimator.coefs_)
    for i, (coef, intercept) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        layer_name = f"fc{i + 1}"
        w = np.asarray(coef, np.float64).T            # scikit-learn stores (in, out)
        layers.append(Dense(layer_name, w, np.asarray(intercept)))
        act = hidden if i < count - 1 else out
        if act != "none":
            layers.append(Activation(f"{layer_name}.{act}", act))
    model = Model(name or ("mlp_classifier" if kind == "MLPClassifier" else "mlp_regressor"),
                  (int(estimator.coefs_[0].shape[0]),), layers)
    if kind == "MLPClassifier":
        model.classes = np.asarray(estimator.classes_)
    return model
