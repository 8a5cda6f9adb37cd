"""LossLab's model zoo: registered models (`create_model`, `list_models`, `model_info`).

    import zoo
    model = zoo.create_model("lenet_embed", num_classes=10, embedding_dim=2)
    zoo.list_models()

`import zoo` loads the models and the registry only. Data lives in `zoo.datasets`, training
in `zoo.training` (`python -m zoo.train`), evaluation in `zoo.evaluation`, reference maths in
`zoo.reference`; docs/architecture.md draws the layers.
"""

from zoo import quiet

quiet.silence_tensorflow()  # before anything imports TensorFlow

from zoo.models import RepVGGBlock, embedding_model, reparameterize  # noqa: E402
from zoo.registry import (create_model, list_models, model_builder, model_info,  # noqa: E402
                          register_model)
from zoo.weights import list_weights  # noqa: E402

__all__ = ["create_model", "list_models", "list_weights", "model_builder", "model_info",
           "register_model", "embedding_model", "RepVGGBlock", "reparameterize"]
