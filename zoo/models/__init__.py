"""The zoo's models; importing this package registers every builder (see `zoo.registry`).

- `lenet`: LeNet-5, the triplet-constrained CNN's LeNet, `lenet_embed` (pluggable head);
- `repvgg`: RepVGG blocks, `repvgg_tiny`, `repvgg_a0`, exact `reparameterize`;
- `crnn`: the CRNN text recognizer (CNN + BiLSTM + CTC logits) and its decoders;
- `detector`: the two-step detector (dense anchor-free step 1, crop classifier, the pipeline).
"""

from zoo.models import crnn, detector, lenet, repvgg  # noqa: F401  (register their models)
from zoo.models.lenet import embedding_model
from zoo.models.repvgg import RepVGGBlock, reparameterize

__all__ = ["crnn", "detector", "lenet", "repvgg", "embedding_model", "RepVGGBlock",
           "reparameterize"]
