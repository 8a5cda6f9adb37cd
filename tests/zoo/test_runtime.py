"""zoo.runtime: the one-line description every notebook prints, checked against the backend."""

import keras

from zoo.runtime import describe_runtime, device_types


def test_the_line_names_the_backend_its_devices_and_the_gpu():
    devices = device_types()
    assert "CPU" in devices and devices == sorted(devices)
    line = describe_runtime()
    assert line.startswith(f"Keras {keras.__version__}, backend {keras.backend.backend()}, ")
    assert line.endswith(f"devices {', '.join(devices)}, GPU: "
                         f"{'yes' if 'GPU' in devices else 'no'}")
