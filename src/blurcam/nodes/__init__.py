"""The pipeline's nodes: each owns the state of one stage group and declares what goes in
and out, as MediaPipe's calculators do. :class:`blurcam.pipeline.Stream` wires them.

::

    frame -> MotionNode.run -> MotionPacket -> MaskNode.run -> MaskPacket
          -> CompositeNode.alpha -> alpha -> EffectNode.run -> (layer, alpha)
          -> CompositeNode.render -> out

The motion node needs the image only (working frame, still gate, optical
flow), the mask node the model and the mask history; so the first may run
while the model does, or frames ahead on another thread.
"""

from __future__ import annotations

from .composite_node import CompositeNode, FaceDetectorLike
from .effect_node import EffectNode
from .mask_node import MaskNode, MaskPacket, follow
from .motion_node import MotionNode, MotionPacket, working_frame
from .timing import StageTimes

__all__ = [
    "CompositeNode",
    "EffectNode",
    "FaceDetectorLike",
    "MaskNode",
    "MaskPacket",
    "MotionNode",
    "MotionPacket",
    "StageTimes",
    "follow",
    "working_frame",
]
