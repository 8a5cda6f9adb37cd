"""The classification task: image datasets, a loss recipe, test accuracy and confusion.

Data: `zoo.datasets.load(name)` (mnist, fashion_mnist, cifar10; `--data-dir` is tried
first), a validation split held out of the training set. Model: the registered model with
the head the loss recipe asks for (`losses.get_recipe`); recipes that mine pairs or triplets
in the batch get class-balanced P x K batches. The run folder receives model.keras,
history.csv, curves.png and confusion_matrix.png; metrics: test accuracy and loss,
per-class accuracy, the confusion matrix.
"""

from __future__ import annotations

import numpy as np

import losses
from zoo import datasets
from zoo.datasets.augment import AUGMENTATIONS, ShiftedBatches
from zoo.datasets.label_checks import check_class_labels
from zoo.datasets.samplers import PKBatches
from zoo.evaluation.classification import confusion_matrix
from zoo.evaluation.plots import plot_confusion_matrix, plot_history
from zoo.models.lenet import EMBEDDING_LAYER
from zoo.registry import create_model, model_accepts
from zoo.training.config import ConfigError
from zoo.training.optimizers import make_optimizer
from zoo.training.run_folder import read_history
from zoo.training.tasks.base import Option, Prepared, Task

EVAL_BATCH_SIZE = 512


def build_model(config, num_classes: int, input_shape):
    """The registered model with the head that the loss recipe asks for."""
    recipe = losses.get_recipe(config.loss)
    kwargs = {"num_classes": num_classes, "input_shape": input_shape}
    if model_accepts(config.model, "head"):
        kwargs.update(head=recipe.head, head_kwargs=recipe.head_kwargs)
        if config.embedding_dim is not None:
            kwargs["embedding_dim"] = config.embedding_dim
    elif recipe.head != "softmax":
        raise ConfigError(
            f"loss {config.loss!r} needs a {recipe.head!r} head but model {config.model!r} "
            "has a fixed dense output; use a model with a pluggable head such as lenet_embed")
    return create_model(config.model, **kwargs)


def compile_model(model, config, num_classes: int, steps: int):
    """The recipe's loss, Adam with cosine decay over the run, sparse accuracy."""
    import keras

    recipe = losses.get_recipe(config.loss)
    model.compile(optimizer=make_optimizer(config.learning_rate,
                                           config.epochs * steps),
                  loss=recipe.build_loss(num_classes),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def embedding_retrieval(model, test) -> dict:
    """Retrieval metrics of the test images' embeddings (each image searches the others by
    cosine similarity; `callbacks.retrieval`), and NMI/AMI of their k-means clusters: how
    an embedding model is judged in metric learning, also on classes it never trained on
    (`zoo.evaluate RUN --dataset OTHER`)."""
    from callbacks.margin_monitor import embedding_submodel
    from callbacks.retrieval import clustering_scores, retrieval_metrics

    embeddings = embedding_submodel(model, EMBEDDING_LAYER).predict(
        test.x, batch_size=EVAL_BATCH_SIZE, verbose=0)
    embeddings = np.asarray(embeddings).reshape(len(test.y), -1)
    return {**retrieval_metrics(embeddings, test.y, ks=(1, 5, 10)),
            **clustering_scores(embeddings, test.y), "distance": "cosine"}


def load_image_splits(config):
    """(train, validation or None, test) `Split`s of the run's named image dataset."""
    common = dict(validation_split=config.validation_split, seed=config.seed,
                  data_dir=config.data_dir)
    train = datasets.load(config.dataset, "train", limit=config.train_limit, **common)
    validation = (datasets.load(config.dataset, "validation", **common)
                  if config.validation_split > 0 else None)
    test = datasets.load(config.dataset, "test", limit=config.test_limit, **common)
    return train, validation, test


def image_test_split(task, spec, config, model):
    """The test split of the named image dataset `spec`, checked against `model`'s input
    (for `zoo.evaluate RUN --dataset SPEC` of the image tasks); ConfigError otherwise."""
    if spec not in datasets.list_datasets():
        raise ConfigError(f"unknown {task} dataset {spec!r}; known: "
                          f"{', '.join(datasets.list_datasets())}")
    test = datasets.load(spec, "test", limit=config.test_limit, data_dir=config.data_dir)
    if tuple(test.x.shape[1:]) != tuple(model.input_shape[1:]):
        raise ConfigError(f"{spec} images are {test.x.shape[1:]} but the model takes "
                          f"{tuple(model.input_shape[1:])}")
    return test


class ClassificationTask(Task):
    name = "classification"
    default_dataset = "fashion_mnist"
    default_loss = "softmax"
    options = {"augment": Option("none", "classification: training-time augmentation: random "
                                 "shifts of up to 2 px, and left-right flips", type=str,
                                 choices=AUGMENTATIONS)}
    refuses = {}

    @property
    def dataset_forms(self):
        return tuple(datasets.list_datasets())

    def losses(self):
        return losses.list_recipes()

    def check(self, config):
        super().check(config)
        recipe = losses.get_recipe(config.loss)
        augment = self.option(config, "augment")
        if augment not in AUGMENTATIONS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got "
                              f"{augment!r}")
        if augment != "none" and recipe.balanced_batches:
            raise ConfigError(f"--augment {augment} cannot be combined with loss "
                              f"{config.loss!r}, which trains on class-balanced P x K batches")
        if recipe.head == "xbm" and config.distribute == "mirrored":
            raise ConfigError(f"loss {config.loss!r} keeps a queue of embeddings in the "
                              f"model, which replicas of tf.distribute would each overwrite "
                              f"with their own share of the batch; train it on one device")
        if recipe.head != "softmax" and not model_accepts(config.model, "head"):
            raise ConfigError(
                f"loss {config.loss!r} needs a {recipe.head!r} head but model "
                f"{config.model!r} has a fixed dense output; use a model with a pluggable "
                "head such as lenet_embed")
        if config.embedding_dim is not None and not model_accepts(config.model,
                                                                  "embedding_dim"):
            raise ConfigError(f"--embedding-dim does not apply to model {config.model!r}: "
                              "it has no embedding layer of adjustable size")

    def prepare(self, config):
        train, validation, test = load_image_splits(config)
        num_classes = len(train.class_names)
        for split, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:  # once here: XLA-compiled steps drop the losses' assertions
                check_class_labels(part.y, num_classes, split)
        recipe = losses.get_recipe(config.loss)
        augment = self.option(config, "augment")
        if augment != "none":
            fit_data = ShiftedBatches(train.x, train.y, config.batch_size, max_shift=2,
                                      flip=augment == "shift_flip", seed=config.seed)
            fit_kwargs = {}
            steps = len(fit_data)
            samples_per_epoch = len(train)
        elif recipe.balanced_batches:  # in-batch mining needs several samples of each class
            classes_per_batch = min(num_classes, 8)
            fit_data = PKBatches(train.x, train.y, classes_per_batch=classes_per_batch,
                                 samples_per_class=max(2, config.batch_size // classes_per_batch),
                                 seed=config.seed)
            fit_kwargs = {}
            steps = len(fit_data)
            samples_per_epoch = steps * fit_data.p * fit_data.k
        else:
            fit_data = train.x
            fit_kwargs = dict(y=train.y, batch_size=config.batch_size, shuffle=True)
            steps = int(np.ceil(len(train) / config.batch_size))
            samples_per_epoch = len(train)
        model = build_model(config, num_classes, train.x.shape[1:])
        compile_model(model, config, num_classes, steps)
        data = {"train": train, "validation": validation, "test": test, "fit_data": fit_data,
                "fit_kwargs": fit_kwargs}
        return Prepared(data, model, samples_per_epoch)

    def fit(self, config, prepared, fitter):
        data, model = prepared.data, prepared.model
        validation = data["validation"]

        def fit(callbacks, epochs, initial_epoch=0):
            model.fit(data["fit_data"], epochs=epochs, initial_epoch=initial_epoch,
                      validation_data=(validation.x, validation.y) if validation else None,
                      callbacks=callbacks, verbose=config.verbose, **data["fit_kwargs"])

        return {"model": fitter.fit_stage("model", model, fit)}

    def probe_data(self, config, prepared):
        validation = prepared.data["validation"]
        split = validation or prepared.data["train"]
        return split.x, split.y, "validation" if validation else "train"

    def evaluate(self, config, prepared, models, folder):
        model, test = models["model"], prepared.data["test"]
        class_names = list(test.class_names)
        test_loss, test_accuracy = model.evaluate(test.x, test.y, batch_size=EVAL_BATCH_SIZE,
                                                  verbose=0)
        predictions = np.argmax(model.predict(test.x, batch_size=EVAL_BATCH_SIZE, verbose=0),
                                axis=-1)
        matrix = confusion_matrix(test.y, predictions, len(class_names))
        per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
        title = f"{config.model} · {config.dataset} · {config.loss}"
        if folder.file("history.csv").exists():  # absent when scoring a trained model
            plot_history(read_history(folder.file("history.csv")), folder.file("curves.png"),
                         title)
        plot_confusion_matrix(matrix, class_names, folder.file("confusion_matrix.png"),
                              f"{title} · test accuracy {test_accuracy:.4f}")
        metrics = {
            "test_accuracy": float(test_accuracy),
            "test_loss": float(test_loss),
            "per_class_accuracy": {n: float(a) for n, a in zip(class_names, per_class)},
            "confusion_matrix": matrix.tolist(),
            "class_names": class_names,
            "test_samples": len(test),
            "files": ["model.keras", "history.csv", "curves.png", "confusion_matrix.png"],
        }
        counts = np.bincount(np.asarray(test.y, np.int64))
        if (EMBEDDING_LAYER in {layer.name for layer in model.layers}
                and np.count_nonzero(counts) >= 2 and counts.max() >= 2):
            metrics["retrieval"] = embedding_retrieval(model, test)
        return metrics

    def compile_for_scoring(self, config, model):
        return compile_model(model, config, int(model.output_shape[-1]), 1)

    def test_data(self, config, spec, models):
        return Prepared({"test": image_test_split(self.name, spec, config, models["model"])},
                        models["model"], 0)

    def summary(self, metrics):
        retrieval = metrics.get("retrieval")
        return f"test accuracy {metrics['test_accuracy']:.4f}" + (
            f"; retrieval MAP@R {retrieval['map_at_r']:.4f}, precision@1 "
            f"{retrieval['precision_at_1']:.4f}" if retrieval else "")
