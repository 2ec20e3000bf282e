"""The device the trainer tests put their models on.

libnn's AUTO device is CUDA when there is a GPU; a backend plugin without optimizer state
(the CUDA plugin, until it gains one) trains plain SGD only and refuses the rest with
NN_ERR_UNSUPPORTED. So: AUTO when its backend trains Adam, else the CPU plugin, else the
built-in reference.
"""
import libnn


def _probe():
    x, t = libnn.spiral(2, 2, seed=1)
    with libnn.Model([2, 2]) as model:
        try:
            model.fit(x, t, epochs=1, batch_size=4, optimizer="adam", learning_rate=0.001)
            return "auto"
        except libnn.UnsupportedError:
            pass
    available = {d.kind for d in libnn.devices() if d.available}
    return "cpu" if "cpu" in available else "reference"


DEVICE = _probe()
