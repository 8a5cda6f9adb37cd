"""The zoo's models; importing this package registers every builder (see `zoo.registry`).

- `lenet`: LeNet-5, the triplet-constrained CNN's LeNet, `lenet_embed` (pluggable head);
- `repvgg`: RepVGG blocks, `repvgg_tiny`, `repvgg_a0`, exact `reparameterize`;
- `crnn`: the CRNN text recognizer (CNN + BiLSTM + CTC logits) and its decoders;
- `detector`: the two-step detector (dense anchor-free step 1, crop classifier, the pipeline);
- `autoencoder`: denoising autoencoders, `conv_autoencoder` and the residual `unet_denoiser`.
"""

from zoo.models import autoencoder, crnn, detector, lenet, repvgg  # noqa: F401  (register)
from zoo.models.lenet import embedding_model
from zoo.models.repvgg import RepVGGBlock, reparameterize

__all__ = ["autoencoder", "crnn", "detector", "lenet", "repvgg", "embedding_model", "RepVGGBlock",
           "reparameterize"]
