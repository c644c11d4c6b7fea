"""Keras layers tl_kit puts inside models, so every model takes raw [0, 255] pixels.

:class:`Preprocess` reproduces, as an in-graph layer, what each network's
``keras.applications.*.preprocess_input`` does to raw pixels. Because it lives inside the
model, a trained or exported classifier needs no preprocessing code beside it.
"""

from __future__ import annotations

import keras
from keras import ops

from tl_kit.errors import UserError

__all__ = ["PREPROCESS_MODES", "Preprocess"]

PREPROCESS_MODES = ("unit", "tf", "caffe", "torch", "none")

# ImageNet statistics used by keras.applications.imagenet_utils.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="tl_kit")
class Preprocess(keras.layers.Layer):
    """Map raw pixels in [0, 255] to what a network expects.

    Modes (the same names as ``keras.applications.imagenet_utils.preprocess_input``):

    - ``"unit"``: scale to [0, 1];
    - ``"tf"``: scale to [-1, 1] (Inception, Xception, MobileNet, ResNetV2, NASNet);
    - ``"caffe"``: RGB to BGR, then subtract the ImageNet mean per channel (VGG, ResNet);
    - ``"torch"``: scale to [0, 1], then normalise with the ImageNet mean and std (DenseNet);
    - ``"none"``: identity (EfficientNet, ConvNeXt and MobileNetV3 rescale inside the model).

    Grey images (one channel) use the mean of the three channel statistics.

    Example:
    ```python
    x = keras.Input((224, 224, 3))
    y = Preprocess("caffe")(x)
    ```
    """

    def __init__(self, mode: str = "unit", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise UserError(f"`mode` must be one of {PREPROCESS_MODES}. Received: mode={mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mode = self.mode
        if mode == "none":
            return x
        if mode == "unit":
            return x / 255.0
        if mode == "tf":
            return x / 127.5 - 1.0
        channels = x.shape[-1]
        if mode == "caffe":
            if channels == 3:
                x = ops.flip(x, axis=-1)  # RGB -> BGR
                mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)
            else:
                mean = ops.convert_to_tensor(sum(_CAFFE_MEAN_BGR) / 3.0, dtype=x.dtype)
            return x - mean
        # torch
        x = x / 255.0
        if channels == 3:
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=x.dtype)
        else:
            mean = ops.convert_to_tensor(sum(_TORCH_MEAN) / 3.0, dtype=x.dtype)
            std = ops.convert_to_tensor(sum(_TORCH_STD) / 3.0, dtype=x.dtype)
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config["mode"] = self.mode
        return config
