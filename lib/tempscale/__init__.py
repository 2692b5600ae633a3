"""tempscale: softmax temperature and adversarial robustness, reproduced.

One shared library for the notebooks, the CLI and the tests. See README.md for the map of modules.
"""

__version__ = "0.1.0"
