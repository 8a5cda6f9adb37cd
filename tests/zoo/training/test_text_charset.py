"""The text task's `charset` option: the synthetic lines and the model use the named set."""

import string

import pytest

from zoo.training import TrainConfig, resolve
from zoo.training.tasks import text as text_task


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name, characters", [
    ("upper", string.digits + string.ascii_uppercase),
    ("full", string.digits + string.ascii_uppercase + string.ascii_lowercase + "-.,:/'&()#+"),
])
def test_synthetic_lines_are_drawn_from_the_named_charset(name, characters):
    config, _ = resolve(TrainConfig(model="crnn_small", epochs=1, batch_size=8, train_limit=8,
                                    test_limit=16, validation_split=0.0,
                                    options={"charset": name}))
    data = text_task.synthetic_data(config)
    assert data.charset.characters == characters
    assert set("".join(data.test.texts)) <= set(characters)
    images, labels = data.train[0]
    assert labels.max() <= len(characters)  # ids 1..N, 0 is the blank


def test_an_unknown_charset_is_refused(capsys, tmp_path):
    from zoo import train

    with pytest.raises(SystemExit) as exit_:
        train.main(["--model", "crnn_small", "--charset", "greek", "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'greek'" in err[0]
