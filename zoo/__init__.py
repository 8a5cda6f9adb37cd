"""LossLab's model zoo: a registry of models, datasets, training and export.

    import zoo
    model = zoo.create_model("lenet_embed", num_classes=10, embedding_dim=2)
    zoo.list_models()
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of logs

from zoo import crnn, detector, lenet, repvgg  # noqa: E402,F401  (register their models)
from zoo.lenet import embedding_model  # noqa: E402
from zoo.registry import create_model, list_models, model_builder, register_model  # noqa: E402
from zoo.repvgg import RepVGGBlock, reparameterize  # noqa: E402

__all__ = ["create_model", "list_models", "model_builder", "register_model", "embedding_model",
           "RepVGGBlock", "reparameterize"]
