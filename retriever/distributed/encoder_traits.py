"""What the coordinator of a distributed job knows of the encoder, without loading it.

A model the cluster runs on GPUs should not have to fit in the coordinator too, so the
coordinator never builds the encoder: one Ray task builds it where the encoder actors
would (``describe``) and reports its ``EncoderTraits``: the identity a new collection's
manifest records (and an existing one's is checked against) and the page settings
(DPI, pixels or not, text needed). The same traits stand in for the encoder in the
coordinator's local pass over files that need no encoding (unchanged, copies).
"""

from __future__ import annotations

__all__ = ["EncoderTraits", "describe_encoder", "traits_on_cluster"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..errors import RetrieverError
from ..manifest import EncoderIdentity
from .ingest_stages import EncoderRecipe, run_setup


@dataclass(frozen=True)
class EncoderTraits:
    name: str
    identity: EncoderIdentity
    dpi: int
    needs_image: bool
    needs_regions: bool

    @classmethod
    def idle(cls, identity: EncoderIdentity) -> EncoderTraits:
        """For a local pass in which nothing needs encoding (so no page is produced)."""
        return cls(identity.name, identity, dpi=72, needs_image=False, needs_regions=False)

    def encode_pages(self, pages: Sequence[Any]) -> list[Any]:
        # only reached when a file changed between planning and the local pass
        raise RetrieverError("the file changed while the job ran; its new content was "
                             "not encoded", hint="run index again")


def describe_encoder(recipe: EncoderRecipe,
                     setup: Callable[[], None] | None) -> dict[str, Any]:
    """Build the encoder here (a Ray task) -> its traits, or the error it raised, as
    plain data (a Ray task's own exception would reach the coordinator as a traceback)."""
    run_setup(setup)
    try:
        encoder = recipe.build()
    except RetrieverError as exc:
        simple = type(exc) if type(exc).__init__ is RetrieverError.__init__ else RetrieverError
        return {"error": simple.__name__, "message": exc.message, "hint": exc.hint}
    return {"traits": EncoderTraits(encoder.name, encoder.identity, int(encoder.dpi),
                                    bool(encoder.needs_image),
                                    bool(getattr(encoder, "needs_regions", False)))}


def traits_on_cluster(ray: Any, recipe: EncoderRecipe, setup: Callable[[], None] | None,
                      gpus: float) -> EncoderTraits:
    """``describe_encoder`` run on the cluster with an encoder actor's resources; its
    error raised here as the same kind of error (so the exit code is the same)."""
    task = ray.remote(num_gpus=gpus, max_retries=0)(describe_encoder)
    found = ray.get(task.remote(recipe, setup))
    if "error" in found:
        kind = getattr(errors, found["error"], RetrieverError)
        if not (isinstance(kind, type) and issubclass(kind, RetrieverError)):
            kind = RetrieverError
        raise kind(found["message"], hint=found["hint"])
    return found["traits"]
