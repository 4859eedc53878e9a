"""Real network structures the onnx package ships (``onnx/backend/test/data/
light``): ResNet-50, SqueezeNet, DenseNet-121, Inception-v2, ShuffleNet,
VGG19 and others, with placeholder weights (onnx_import.realistic_weights
fills seeded He-scale values). Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UzError

#: The graph networks the golden model runs (the issue's six), and the image
#: size each is run at: as small as the model allows. ResNet-50, Inception-v2
#: and ShuffleNet need 224 (they end in a 7x7 average pool and a Reshape to
#: [1, C]); SqueezeNet and DenseNet-121 are fully convolutional (global pools)
#: and run at 64; VGG19 runs at 32 with its first FC cut to the smaller
#: flattened input, since at 224 that FC alone holds 100 M weights.
LIGHT_SIZES = {"resnet50": 224, "squeezenet": 64, "densenet121": 64, "inception_v2": 224, "shufflenet": 224,
               "vgg19": 32}

#: MobileNet-v2's inverted residual blocks (expansion t, channels c, blocks
#: n, first stride s), Sandler et al. 2018, Table 2.
MOBILENET_V2_BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2_spec(size: int = 224, classes: int = 1000) -> dict:
    """MobileNet-v2 (width 1.0) as a network description (golden.network),
    BatchNorm folded away: stem 3x3/2, the inverted residual blocks (1x1
    expansion + ReLU6, depthwise 3x3 + ReLU6, linear 1x1 projection, the
    identity add where stride and channels allow), 1x1 to 1280 + ReLU6,
    global average pool and the classifier. The onnx package ships no
    MobileNet: this builds its structure, weights come from the seed."""
    layers = [{"name": "stem", "type": "conv", "out_channels": 32, "kernel": 3, "stride": 2, "pad": 1},
              {"name": "stem_r", "type": "relu6"}]
    c_in, last = 32, "stem_r"
    for bi, (t, c, n, s) in enumerate(MOBILENET_V2_BLOCKS):
        for j in range(n):
            name, stride, src = f"b{bi}_{j}", (s if j == 0 else 1), last
            hidden = c_in * t
            if t != 1:
                layers += [{"name": f"{name}_exp", "type": "conv", "out_channels": hidden, "kernel": 1,
                            "inputs": [src]},
                           {"name": f"{name}_exp_r", "type": "relu6"}]
            layers += [{"name": f"{name}_dw", "type": "conv", "out_channels": hidden, "kernel": 3, "stride": stride,
                        "pad": 1, "groups": hidden, **({} if t != 1 else {"inputs": [src]})},
                       {"name": f"{name}_dw_r", "type": "relu6"},
                       {"name": f"{name}_proj", "type": "conv", "out_channels": c, "kernel": 1}]
            last = f"{name}_proj"
            if stride == 1 and c_in == c:
                layers.append({"name": f"{name}_add", "type": "add", "inputs": [last, src]})
                last = f"{name}_add"
            c_in = c
    layers += [{"name": "head", "type": "conv", "out_channels": 1280, "kernel": 1, "inputs": [last]},
               {"name": "head_r", "type": "relu6"},
               {"name": "gap", "type": "gap"},
               {"name": "flat", "type": "flatten"},
               {"name": "fc", "type": "fc", "out_features": classes}]
    return {"name": "mobilenetv2", "input_shape": [3, size, size], "layers": layers}


#: Networks built here rather than read from the onnx package.
BUILT = ("mobilenetv2",)


def built_model(name: str, size: int = 224, seed: int = 0):
    """A network the onnx package does not ship, built here (mobilenetv2), as
    an onnx.ModelProto with seeded He-scale weights."""
    from .network import load_network
    from .onnx_import import network_to_onnx

    if name != "mobilenetv2":
        raise UzError(f"no built network named {name!r} (built: mobilenetv2)")
    return network_to_onnx(load_network(dict(mobilenet_v2_spec(size), weights={"seed": seed})))


def light_path(name: str) -> str:
    import onnx
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    if not path.exists():
        raise UzError(f"the onnx package has no {path.name}")
    return str(path)


def light_model(name: str, size: int = 224):
    """The light model as an onnx.ModelProto on a size x size image (the input
    and, for VGG19, the first FC's input width changed), placeholder weights
    still in."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(light_path(name))
    if size == 224:
        return m
    inits = {t.name: t for t in m.graph.initializer}
    dims = m.graph.input[[v.name for v in m.graph.input].index(
        next(v.name for v in m.graph.input if v.name not in inits))].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    del m.graph.value_info[:]
    if name.startswith("vgg"):
        flat = 512 * (size // 32) ** 2
        producer = {o: n for n in m.graph.node for o in n.output}
        reshape = next(n for n in m.graph.node if n.op_type == "Reshape")
        fc6 = next(n for n in m.graph.node if n.op_type == "Gemm")
        shape_init = inits[producer[fc6.input[1]].input[0]]          # ConstantOfShape's shape
        inits[reshape.input[1]].CopyFrom(numpy_helper.from_array(np.array([1, flat], np.int64), reshape.input[1]))
        w = numpy_helper.to_array(shape_init).copy()
        w[1] = flat                                                  # transB: [out, in]
        shape_init.CopyFrom(numpy_helper.from_array(w, shape_init.name))
    return m


def without_final_softmax(model):
    """The model ending before its last Softmax (what load_onnx imports by default)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    last = m.graph.node[-1]
    if last.op_type in ("Softmax", "LogSoftmax"):
        del m.graph.node[-1]
        m.graph.output[0].name = last.input[0]
        m.graph.output[0].type.tensor_type.ClearField("shape")
    return m
