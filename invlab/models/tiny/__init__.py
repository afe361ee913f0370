"""``tiny-flow``: the smallest complete invertible codec, to prove the plumbing end to end (not a serious model).

The declaration (read by the registry without torch); the network is in :mod:`.model`.
"""

from invlab.models.registry import ModelSpec, lazy_attribute

LAMBDAS = (0.0035, 0.0130, 0.0483)

MODELS = (
    ModelSpec("tiny-flow", "tiny", "2-level invertible flow + factorised prior (plumbing demo)",
              "invlab.models.tiny.model:tiny_flow", True, LAMBDAS, 4, None, "factorised (no context)"),
)


def __getattr__(name: str):
    return lazy_attribute(__name__, name, ("model",))
