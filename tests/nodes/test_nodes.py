"""The nodes on their own: declared inputs and outputs, and the state each one owns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from blurcam.nodes import CompositeNode, EffectNode, MaskNode, MotionNode, follow
from blurcam.settings import EffectSettings, GuardSettings, MaskSettings, Settings
from blurcam.testing import FakeFaceDetector, FakeSegmenter, synthetic_frame


def test_motion_node_gates_a_still_image_and_measures_a_moving_one() -> None:
    from blurcam import mask

    node = MotionNode(Settings())
    first = node.run(synthetic_frame(cx=0.4))
    assert not first.still and first.motion is None  # no model run before it
    again = node.run(synthetic_frame(cx=0.4))
    assert again.still and again.motion is None  # the gate: the model may rest
    moved = node.run(synthetic_frame(cx=0.43))
    assert not moved.still and moved.motion is not None
    assert moved.motion.maps is not None and moved.motion.reliable.shape == moved.guide.shape
    # the flow explains the move: the old guide warped by it matches the new one better
    old = first.guide.astype(np.float32)
    new = moved.guide.astype(np.float32)
    warped = mask.warp(old, moved.motion.maps)
    assert np.abs(warped - new).mean() < 0.5 * np.abs(old - new).mean()
    gate_off = MotionNode(Settings(mask=MaskSettings(still_reuse=0)))
    gate_off.run(synthetic_frame())
    assert not gate_off.run(synthetic_frame()).still


def test_may_carry_is_false_exactly_when_the_gate_cannot_fire() -> None:
    """process() starts the model before the downscale when may_carry() is False: that must
    never happen on a frame the gate then carries."""
    node = MotionNode(Settings(mask=MaskSettings(still_reuse=2)))
    f = synthetic_frame(cx=0.4)
    seen = []
    for _ in range(7):
        may = node.may_carry()
        still = node.run(f).still
        assert may or not still
        seen.append((may, still))
    # first frame: no model run yet; then carried twice, then the model must run again
    assert seen[:4] == [(False, False), (True, True), (True, True), (False, False)]
    gate_off = MotionNode(Settings(mask=MaskSettings(still_reuse=0)))
    gate_off.run(f)
    assert not gate_off.may_carry()


def test_mask_packet_is_frozen_and_the_model_rests_when_the_gate_says_so() -> None:
    seg = FakeSegmenter()
    motion, node = MotionNode(Settings()), MaskNode(Settings(), seg)
    f = synthetic_frame()
    p1 = node.run(f, motion.run(f))
    p2 = node.run(f, motion.run(f))
    assert seg.calls == 1 and p1.inferred and not p2.inferred and p2.still
    assert p2.prob is p1.prob  # the carried mask
    with pytest.raises(dataclasses.FrozenInstanceError):
        p1.still = True  # type: ignore[misc]
    carried = follow(p1, synthetic_frame(cx=0.52), Settings())
    assert carried.prob is p1.prob and not carried.inferred


def test_effect_node_returns_its_own_alpha_and_never_edits_the_one_handed_in() -> None:
    f = synthetic_frame()
    packet = MaskNode(Settings(), FakeSegmenter()).run(f, MotionNode(Settings()).run(f))
    alpha = CompositeNode(Settings()).alpha(packet)
    before = alpha.copy()
    keep = Settings(effect=EffectSettings(keep_box=(10.0, 10.0, 60.0, 40.0)))
    _layer, out = EffectNode(keep).run(f, packet, alpha)
    assert np.array_equal(alpha, before)  # not edited
    assert out is not alpha and int(out[15:40, 15:60].min()) == 255  # the kept box
    blur_layer, same = EffectNode(Settings()).run(f, packet, alpha)
    assert same is alpha and blur_layer.shape[1] < f.shape[1]  # the blur's small layer


def test_composite_node_takes_in_a_face_at_once_then_detects_beside_the_next_frame() -> None:
    f = synthetic_frame(240, 240, r=0.35)
    box = (0.42, 0.3, 0.58, 0.6)
    detector = FakeFaceDetector(box)
    s = Settings(guards=GuardSettings(face_interval=3))
    motion, node = MotionNode(s), MaskNode(s, FakeSegmenter())
    comp = CompositeNode(s, detector)
    comp.alpha(node.run(f, motion.run(f)))
    assert len(comp.faces) == 1 and detector.calls == 1  # nothing tracked: taken in at once
    for _ in range(3):
        comp.alpha(node.run(f, motion.run(f)))
    assert detector.calls == 2 and comp._detected is not None  # due: for the next frame
    comp.alpha(node.run(f, motion.run(f)))
    assert comp._detected is None and len(comp.faces) == 1
