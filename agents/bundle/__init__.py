"""The controller bundle — ``policy.onnx`` + ``manifest.json`` — and everything that touches it.

Torch-free: the format (:mod:`.manifest`), the one gate every bundle passes (:mod:`.intake`),
loading for inference (:mod:`.policy`), writing (:mod:`.write`), the subject digests that
certificates and payments name (:mod:`.digests`) and what a manifest says about its cell
(:mod:`.describe`). A bundle directory holds::

    BUNDLE_DIR/policy.onnx     opset >= 17, ONNX default domain only, no external data;
                               inputs: ``obs`` (Box observation) or ``obs.<key>`` (one per
                               Dict key), raw env values with a leading batch dimension;
                               output: ``action`` in the env's action units, within bounds.
                               Normalisation, the deterministic action and the squashing or
                               clipping to the action bounds are all inside the graph.
    BUNDLE_DIR/manifest.json   see :class:`robocell.agents.bundle.manifest.BundleManifest`
"""

from robocell.agents.bundle.digests import SUBJECT_NAMES, check_subject_digests, subject_digests
from robocell.agents.bundle.intake import MAX_ONNX_BYTES, check_bundle
from robocell.agents.bundle.manifest import MANIFEST_FILE, ONNX_FILE
from robocell.agents.bundle.policy import BundlePolicy, inference_session, load_bundle
from robocell.agents.bundle.write import write_bundle

__all__ = [
    "MANIFEST_FILE",
    "MAX_ONNX_BYTES",
    "ONNX_FILE",
    "SUBJECT_NAMES",
    "BundlePolicy",
    "check_bundle",
    "check_subject_digests",
    "inference_session",
    "load_bundle",
    "subject_digests",
    "write_bundle",
]
