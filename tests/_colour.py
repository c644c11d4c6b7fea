"""Tiny classifiers and images shared by the evaluation and prediction tests."""

from __future__ import annotations

import keras
import numpy as np

NAMES = ["red", "green", "blue"]


def colour_model(size: int = 8) -> keras.Model:
    """Predicts the dominant colour channel: logits = 0.05 * mean pixel per channel."""
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="colour")
    model.get_layer("predictions").set_weights([np.eye(3, dtype="float32") * 0.05,
                                                np.zeros(3, "float32")])
    return model


def colour_data(size: int = 8):
    """4 red (0), 4 green (1), 3 blue (2) and one blue image labelled red (the error)."""
    colours = [0] * 4 + [1] * 4 + [2] * 3 + [2]
    labels = np.array([0] * 4 + [1] * 4 + [2] * 3 + [0])
    images = np.zeros((len(colours), size, size, 3), "float32")
    for i, channel in enumerate(colours):
        images[i, ..., channel] = 100.0 + 10 * i
    return images, labels


def conv_model(size: int, name: str, seed: int, channels: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, channels), name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)
