"""avjax: audio-visual event localization and video parsing in JAX."""

import setuptools

INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "tensorflow-cpu==2.21.0",
    "tensorboard==2.21.0",
    "tensorflow-datasets==4.9.10",
    "array-record==0.8.6",
    "protobuf==7.36.2",
    "ml-collections==1.1.0",
    "absl-py==2.5.1",
    "clu==0.0.12",
    "h5py==3.14.0",
    "importlib_resources==7.1.0",
    "matplotlib==3.11.2",
    "av==18.1.0",
]

setuptools.setup(
    name="avjax",
    version="0.1.0",
    description=("Audio-visual event localization and weakly-supervised "
                 "audio-visual video parsing in JAX"),
    packages=setuptools.find_packages(include=["avjax", "avjax.*", "configs"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest==9.2.0", "pytest-xdist==3.8.0",
                             "filelock==4.3.2"]},
)
