"""Model analysis: per-layer output shapes, parameters, multiply-adds, receptive field.

:func:`summary` takes a ``keras.Model`` or a registered name and returns a
:class:`ModelSummary`: one row per layer (layers of nested models such as a backbone
inside a classifier included, named ``backbone/block1_conv1``) and the totals.

Convention for multiply-adds (MACs), as in the papers (VGG's 15.5 G, ResNet-50's 3.8-4.1 G,
MobileNetV2's 300 M): only convolutions and fully connected layers are counted, one MAC
per weight use, biases ignored:

- ``Conv`` (1D/2D/3D, any ``groups``): ``prod(output spatial) * k_h * k_w * C_in / groups * C_out``
- ``DepthwiseConv``: ``prod(output spatial) * k_h * k_w * C_in * depth_multiplier``
- ``SeparableConv``: the depthwise part plus the 1x1 pointwise part, both at the output size
- ``ConvTranspose``: ``prod(input spatial) * k_h * k_w * C_in * C_out``
- ``Dense``: ``in * out`` per position (``prod`` of the non-feature output dimensions)

Batch normalization, activations, pooling, additions, concatenations and preprocessing
are counted as 0. FLOPs are usually quoted as ``2 * MACs``.

The receptive field (``rf``) is the theoretical one along the height axis, taken as the
largest over all paths: ``rf += (k_eff - 1) * jump; jump *= stride`` for convolutions and
pooling windows, where ``k_eff = dilation * (k - 1) + 1``. Layers that mix all positions
(flatten, global pooling, dense on a flat vector) have no receptive field column.

Keras is imported inside the functions so that ``tl-kit --help`` stays fast.

- :mod:`~tl_kit.analysis.model_summary`: :func:`summary`; :mod:`~tl_kit.analysis.results`:
  :class:`ModelSummary`, :class:`LayerRow` and their text / rich / JSON forms;
- :mod:`~tl_kit.analysis.trace`: walking the graph; :mod:`~tl_kit.analysis.macs`: the
  multiply-adds of one layer call;
- :mod:`~tl_kit.analysis.sources`: building a name or loading a model file;
  :mod:`~tl_kit.analysis.shapes`: :func:`parse_input_shape`;
- :mod:`~tl_kit.analysis.catalog`: :func:`model_catalog`.
"""

from __future__ import annotations

from tl_kit.analysis.catalog import model_catalog
from tl_kit.analysis.model_summary import summary
from tl_kit.analysis.results import MACS_CONVENTION, LayerRow, ModelSummary
from tl_kit.analysis.shapes import parse_input_shape

__all__ = [
    "LayerRow",
    "ModelSummary",
    "summary",
    "parse_input_shape",
    "model_catalog",
    "MACS_CONVENTION",
]
