"""Every Keras Application as a backbone: one keyword row each, blocks as data.

Each row registers ``keras.applications.<Class>`` as ``"keras:<class>"`` with
:func:`~tl_kit.models.registry.register_keras_application`: default input size, minimum
size, preprocessing mode (what the application's ``preprocess_input`` does), block
declarations (:mod:`tl_kit.models.blocks`), the blocks the ``medium`` recipe unfreezes,
family and paper. Networks whose layer names tl_kit's own builders share (VGG, ResNet,
EfficientNet) use the family module's declaration.
"""

from __future__ import annotations

from tl_kit.models.efficientnet_lite import stage_blocks
from tl_kit.models.registry import register_keras_application as _app
from tl_kit.models.resnet import BLOCKS as _RESNET
from tl_kit.models.vgg import BLOCKS as _VGG

__all__: list[str] = []

_RESNET_V2 = ("re:^(conv1_|pool1_)", "conv2_", "conv3_", "conv4_", "re:^(conv5_|post_)")
_DENSENET = (
    "re:^(conv1_|pool1$)",
    "re:^(conv2_|pool2_)",
    "re:^(conv3_|pool3_)",
    "re:^(conv4_|pool4_)",
    "re:^(conv5_|bn$|relu$)",
)
_MOBILENET = (
    "re:^(conv1(_|$)|conv_(pad|dw|pw)_1(_|$))",
    "re:^conv_(pad|dw|pw)_(2|3)(_|$)",
    "re:^conv_(pad|dw|pw)_(4|5)(_|$)",
    "re:^conv_(pad|dw|pw)_(6|7|8|9|10|11)(_|$)",
    "re:^conv_(pad|dw|pw)_(12|13)(_|$)",
)
# The seven bottleneck stages of the MobileNetV2 paper's table 2 (stem joins the first).
_MOBILENET_V2 = (
    "re:^(Conv1|bn_Conv1|expanded_conv_)",
    "re:^block_(1|2)_",
    "re:^block_(3|4|5)_",
    "re:^block_(6|7|8|9)_",
    "re:^block_(10|11|12)_",
    "re:^block_(13|14|15)_",
    "re:^(block_16_|Conv_1|out_relu)",
)
# Stages between the stride-2 bottlenecks (Howard et al. 2019, tables 1 and 2).
_MOBILENET_V3_SMALL = (
    "re:^(conv|conv_bn)$|^expanded_conv_[a-z]",
    "re:^expanded_conv_(1|2)_",
    "re:^expanded_conv_[3-7]_",
    "re:^(expanded_conv_(8|9|10)_|conv_1)",
)
_MOBILENET_V3_LARGE = (
    "re:^(conv|conv_bn)$|^expanded_conv_[a-z]",
    "re:^expanded_conv_(1|2)_",
    "re:^expanded_conv_[3-5]_",
    "re:^expanded_conv_([6-9]|10|11)_",
    "re:^(expanded_conv_(12|13|14)_|conv_1)",
)
_XCEPTION = tuple(f"block{i}_" for i in range(1, 15))
_INCEPTION_V3 = tuple(f"upto:mixed{i}" for i in range(11))
_INCEPTION_RESNET_V2 = (
    "upto:mixed_5b",
    "upto:block35_10_ac",
    "upto:mixed_6a",
    "upto:block17_20_ac",
    "upto:mixed_7a",
    "upto:conv_7b_ac",
)
_CONVNEXT = (
    "re:^convnext_[a-z]+_(prestem|stem|stage_0_)",
    "re:^convnext_[a-z]+_(downsampling_block_0|stage_1_)",
    "re:^convnext_[a-z]+_(downsampling_block_1|stage_2_)",
    "re:^convnext_[a-z]+_(downsampling_block_2|stage_3_)",
)

# NASNet names its layers after their cell: "..._stem_1", "..._0" (normal cell 0),
# "..._reduce_4". Keras's own auto-names (activation_12, add_3) are left to position.
_NASNET_AUTO = r"(?!(activation|add|zero_padding2d|cropping2d|concatenate)(_\d+)?$)"


def _nasnet_blocks(num_blocks: int) -> tuple[str, ...]:
    def cells(ids: range) -> str:
        return "|".join(str(i) for i in ids)

    n = num_blocks
    cell = rf"re:^{_NASNET_AUTO}.*(?<!stem)(?<!reduce)_({{}})$"
    return (
        r"re:^stem_|_stem_(1|2)$",
        cell.format(cells(range(0, n))),
        rf"re:^{_NASNET_AUTO}.*(_reduce_{n}|(?<!stem)(?<!reduce)_({cells(range(n + 1, 2 * n + 1))}))$",
        rf"re:^{_NASNET_AUTO}.*(_reduce_{2 * n}|(?<!stem)(?<!reduce)_({cells(range(2 * n + 1, 3 * n + 1))}))$",
    )


_P_VGG = "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015"
_P_RES = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
_P_RES2 = "He et al., Identity Mappings in Deep Residual Networks, ECCV 2016"
_P_INC3 = "Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016"
_P_IRV2 = "Szegedy et al., Inception-v4, Inception-ResNet and the Impact of Residual Connections, AAAI 2017"
_P_XCE = "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017"
_P_MN1 = "Howard et al., MobileNets: Efficient CNNs for Mobile Vision Applications, 2017"
_P_MN2 = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"
_P_MN3 = "Howard et al., Searching for MobileNetV3, ICCV 2019"
_P_DEN = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"
_P_EFF = "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019"
_P_EFF2 = "Tan & Le, EfficientNetV2: Smaller Models and Faster Training, ICML 2021"
_P_CNX = "Liu et al., A ConvNet for the 2020s, CVPR 2022"
_P_NAS = "Zoph et al., Learning Transferable Architectures for Scalable Image Recognition, CVPR 2018"

for _cls in ("VGG16", "VGG19"):
    _app(_cls, size=224, preprocess="caffe", blocks=_VGG, family="vgg", paper=_P_VGG)
for _cls in ("ResNet50", "ResNet101", "ResNet152"):
    _app(_cls, size=224, preprocess="caffe", blocks=_RESNET, family="resnet", paper=_P_RES)
for _cls in ("ResNet50V2", "ResNet101V2", "ResNet152V2"):
    _app(_cls, size=224, preprocess="tf", blocks=_RESNET_V2, family="resnet_v2", paper=_P_RES2)
_app("InceptionV3", size=299, min_size=75, preprocess="tf", blocks=_INCEPTION_V3,
     default_unfreeze=2, family="inception_v3", paper=_P_INC3)
_app("InceptionResNetV2", size=299, min_size=75, preprocess="tf", blocks=_INCEPTION_RESNET_V2,
     family="inception_resnet_v2", paper=_P_IRV2)
_app("Xception", size=299, min_size=71, preprocess="tf", blocks=_XCEPTION, default_unfreeze=2,
     family="xception", paper=_P_XCE)
_app("MobileNet", size=224, preprocess="tf", blocks=_MOBILENET, family="mobilenet", paper=_P_MN1)
_app("MobileNetV2", size=224, preprocess="tf", blocks=_MOBILENET_V2, default_unfreeze=2,
     family="mobilenet_v2", paper=_P_MN2)
_app("MobileNetV3Small", size=224, preprocess="none", blocks=_MOBILENET_V3_SMALL,
     family="mobilenet_v3", paper=_P_MN3)
_app("MobileNetV3Large", size=224, preprocess="none", blocks=_MOBILENET_V3_LARGE,
     family="mobilenet_v3", paper=_P_MN3)
for _cls in ("DenseNet121", "DenseNet169", "DenseNet201"):
    _app(_cls, size=224, preprocess="torch", blocks=_DENSENET, family="densenet", paper=_P_DEN)
_app("NASNetMobile", size=224, preprocess="tf", blocks=_nasnet_blocks(4), family="nasnet",
     paper=_P_NAS)
_app("NASNetLarge", size=331, preprocess="tf", blocks=_nasnet_blocks(6), family="nasnet",
     paper=_P_NAS)
for _b, _size in enumerate((224, 240, 260, 300, 380, 456, 528, 600)):
    _app(f"EfficientNetB{_b}", size=_size, preprocess="none", blocks=stage_blocks(7),
         default_unfreeze=2, family="efficientnet", paper=_P_EFF)
for _v2, _size, _stages in (("B0", 224, 6), ("B1", 240, 6), ("B2", 260, 6), ("B3", 300, 6),
                            ("S", 384, 6), ("M", 480, 7), ("L", 480, 7)):
    _app(f"EfficientNetV2{_v2}", size=_size, preprocess="none", blocks=stage_blocks(_stages),
         default_unfreeze=2, family="efficientnet_v2", paper=_P_EFF2)
for _cnx in ("Tiny", "Small", "Base", "Large", "XLarge"):
    _app(f"ConvNeXt{_cnx}", size=224, preprocess="none", blocks=_CONVNEXT, family="convnext",
         paper=_P_CNX)
