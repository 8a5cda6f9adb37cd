"""Model registry and the LeNet family."""

import numpy as np
import pytest

import zoo


def test_registry_lists_and_rejects_unknown_names():
    assert {"lenet5", "lenet_tcnn", "lenet_embed"} <= set(zoo.list_models())
    assert zoo.list_models("lenet_t*") == ["lenet_tcnn"]
    with pytest.raises(ValueError, match="known models: .*lenet5"):
        zoo.create_model("resnet9000")


def test_register_model_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model(zoo.model_builder("lenet5"))


def test_lenet5_matches_the_paper():
    model = zoo.create_model("lenet5", num_classes=10)
    # C1 6*(5*5*1+1) + C3 16*(5*5*6+1) + F5 (16*5*5+1)*120 + F6 121*84 + out 85*10
    expected = 6 * 26 + 16 * 151 + 401 * 120 + 121 * 84 + 85 * 10
    assert expected == 61706
    assert model.count_params() == expected
    assert model.get_layer("c1").output.shape[1:] == (28, 28, 6)
    assert model.get_layer("s4").output.shape[1:] == (5, 5, 16)
    assert model.output_shape == (None, 10)


def test_lenet_tcnn_structure():
    model = zoo.create_model("lenet_tcnn", num_classes=10)
    assert model.get_layer("c1").output.shape[1:] == (24, 24, 6)
    assert model.get_layer("s2").output.shape[1:] == (12, 12, 6)
    assert model.get_layer("c3").output.shape[1:] == (8, 8, 12)
    assert model.get_layer("embedding").output.shape[1:] == (192,)
    assert model.count_params() == 6 * 26 + 12 * (25 * 6 + 1) + 193 * 10


@pytest.mark.parametrize("dim", [2, 16])
def test_lenet_embed_exposes_its_embedding(dim):
    model = zoo.create_model("lenet_embed", num_classes=7, embedding_dim=dim)
    assert model.output_shape == (None, 7)
    sub = zoo.embedding_model(model)
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype("float32")
    embedding = sub.predict(x, verbose=0)
    assert embedding.shape == (3, dim)
    # the sub-model shares weights: the head applied to the embedding gives the model output
    head = model.get_layer("logits")
    np.testing.assert_allclose(np.asarray(head(embedding)), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="unknown head"):
        zoo.create_model("lenet_embed", head="nope")
    with pytest.raises(ValueError, match="pooling must be"):
        zoo.create_model("lenet5", pooling="median")
    with pytest.raises(ValueError, match="has no layer 'embedding'"):
        zoo.embedding_model(zoo.create_model("lenet5"))
