"""Make docs/img/astronaut_before_after.jpg, the README picture: the shipped sample
(examples/astronaut.png, NASA, public domain) before and after `blurcam blur`, with
the mask blurcam computed.

    python docs/scripts/readme_picture.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from blurcam import BackgroundBlur

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    img = cv2.imread(str(ROOT / "examples" / "astronaut.png"))
    with BackgroundBlur(strength=0.8) as bb:
        out = bb.process_image(img)  # what `blurcam blur` does with a photo
        alpha = bb.last_alpha
    assert alpha is not None
    panel = np.hstack([img, out, cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR)])
    panel = cv2.resize(
        panel, (panel.shape[1] * 2 // 3, panel.shape[0] * 2 // 3), interpolation=cv2.INTER_AREA
    )
    for i, label in enumerate(["input", "blurcam blur -s 0.8", "mask"]):
        x = i * panel.shape[1] // 3 + 10
        cv2.putText(panel, label, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(
            panel, label, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA
        )
    dst = ROOT / "docs" / "img" / "astronaut_before_after.jpg"
    cv2.imwrite(str(dst), panel, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
