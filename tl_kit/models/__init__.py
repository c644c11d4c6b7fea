"""Classic CNNs as Keras functional builders with the keras.applications signature.

Importing this package registers every family, and every Keras Application
(:mod:`tl_kit.models.keras_apps`), with :mod:`tl_kit.models.registry`.
"""

from tl_kit.models import (  # noqa: F401
    alexnet,
    efficientnet_lite,
    inception,
    keras_apps,
    lenet,
    mobilenet,
    resnet,
    vgg,
)
from tl_kit.models.registry import (
    ModelSpec,
    ParamCheck,
    build_model,
    get_spec,
    list_models,
    register_model,
)

__all__ = ["ModelSpec", "ParamCheck", "build_model", "get_spec", "list_models", "register_model"]
