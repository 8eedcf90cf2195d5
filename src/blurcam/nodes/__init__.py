"""The pipeline's nodes: each owns the state of one stage group and declares what goes in
and out, as MediaPipe's calculators do. :class:`blurcam.pipeline.Stream` wires them.

::

    frame -> MaskNode.run -> MaskPacket -> CompositeNode.alpha -> alpha
          -> EffectNode.run -> (layer, alpha) -> CompositeNode.render -> out
"""

from __future__ import annotations

from .composite_node import CompositeNode
from .effect_node import EffectNode
from .mask_node import MaskNode, MaskPacket, follow, working_frame
from .timing import StageTimes

__all__ = [
    "CompositeNode",
    "EffectNode",
    "MaskNode",
    "MaskPacket",
    "StageTimes",
    "follow",
    "working_frame",
]
